"""Responses streams after the commit point: events to the client, the record before the end.

A converter turns upstream events into Responses events for the client. It holds back the
terminal event (``response.completed`` / ``response.incomplete`` / ``response.failed``) and
hands it to the relay, which writes the record first and only then sends it: a follow-up sent
the moment the client sees the end always finds its parent.

* :class:`NativeConverter`: an upstream that speaks Responses. Events are re-framed as they
  came, without JSON re-encoding, except the few that carry the Response object (created,
  in_progress, completed...), whose ``id``, ``previous_response_id`` and ``store`` are the
  gateway's. ``output_item.done`` items are kept, so the record has every output item even if
  the upstream's final object leaves some out.
* :class:`ChatConverter` and :class:`AnthropicConverter`: the translators of
  :mod:`gateway.translate`, fed decoded chunks.

After commit, failures (an in-band error, ``response.failed``, a cut or stalled stream, a broken
connection) end the stream with ``error`` (nested and flat fields) then ``response.failed``;
never a ``response.completed`` after a failure.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, NamedTuple, Protocol

import msgspec

from gateway.clock import Clock, Watchdog
from gateway.errors import (
    ClassifiedError,
    classify_stream_error,
    error_object,
)
from gateway.translate import AnthropicToResponsesStream, ChatToResponsesStream, InbandError, encode_event
from gateway.translate.responses_chat import response_error
from gateway.upstream.call import OpenedStream
from gateway.upstream.committed import StreamFailure, StreamTruncated, run_committed
from gateway.upstream.sse import SSEEvent

log = logging.getLogger("gateway.responses")

_DECODER = msgspec.json.Decoder()
_SEQUENCE = re.compile(r'"sequence_number"\s*:\s*(\d+)')

Event = dict[str, Any]
SendChunk = Callable[[bytes], Awaitable[None]]
Record = Callable[[dict[str, Any]], Awaitable[None]]

TERMINAL = frozenset({"response.completed", "response.incomplete", "response.failed"})
_LIFECYCLE = frozenset({"response.created", "response.in_progress", "response.queued"})
_FINISHED = frozenset({"response.completed", "response.incomplete"})

STORE_FAILED: dict[str, Any] = {
    "message": "The response could not be stored, so it can be neither retrieved nor continued. "
    "Please try again.",
    "type": "server_error",
    "param": None,
    "code": "response_store_unavailable",
}


class Emit(NamedTuple):
    frames: bytes = b""  # send now
    final: Event | None = None  # the terminal event: record its response, then send it


class Converter(Protocol):
    def event(self, event: SSEEvent, payload: dict[str, Any] | None) -> Emit: ...

    def end(self) -> Emit: ...

    def fail(self, error: Mapping[str, Any]) -> Emit: ...


def decode_payload(data: str) -> dict[str, Any] | None:
    try:
        value = _DECODER.decode(data)
    except msgspec.DecodeError:
        return None
    return value if isinstance(value, dict) else None


def failure_events(
    response: Mapping[str, Any], output: list[dict[str, Any]], sequence_number: int, error: Mapping[str, Any]
) -> tuple[Event, Event]:
    """``error`` (nested and flat) then ``response.failed``, numbered from ``sequence_number``."""
    failed = dict(response)
    failed["status"] = "failed"
    failed["completed_at"] = None
    failed["error"] = response_error(error)
    failed["output"] = output
    failed["usage"] = None
    first: Event = {
        "type": "error",
        "code": error.get("code"),
        "message": str(error.get("message") or ""),
        "param": error.get("param"),
        "error": dict(error),
        "sequence_number": sequence_number,
    }
    return first, {"type": "response.failed", "response": failed, "sequence_number": sequence_number + 1}


def _reframe(event: SSEEvent) -> bytes:
    return b"event: " + event.event.encode() + b"\ndata: " + event.data.encode() + b"\n\n"


class NativeConverter:
    """A Responses upstream's events, with the Response object made the gateway's."""

    def __init__(
        self, *, response_id: str, previous_response_id: str | None, store: bool, provider: str
    ) -> None:
        self._id = response_id
        self._previous = previous_response_id
        self._store = store
        self._provider = provider
        self._shell: dict[str, Any] | None = None
        self._items: dict[int, dict[str, Any]] = {}
        self._last_data = ""
        self.upstream_id: str | None = None

    def _own(self, response: dict[str, Any]) -> dict[str, Any]:
        upstream_id = response.get("id")
        if isinstance(upstream_id, str):
            self.upstream_id = upstream_id
        response["id"] = self._id
        response["previous_response_id"] = self._previous
        response["store"] = self._store
        return response

    def event(self, event: SSEEvent, payload: dict[str, Any] | None) -> Emit:
        kind = event.event
        if kind == "message":  # no `event:` line: the type is in the data
            if event.data == "[DONE]":
                return Emit()
            payload = payload if payload is not None else decode_payload(event.data)
            kind = str(payload.get("type")) if payload is not None else ""
        if kind in _LIFECYCLE or kind in _FINISHED or kind == "response.output_item.done":
            if payload is None:
                payload = decode_payload(event.data)
            if payload is None:
                raise StreamFailure(classify_stream_error({}, provider=self._provider))
            self._last_data = event.data
            if kind == "response.output_item.done":
                index, item = payload.get("output_index"), payload.get("item")
                if isinstance(index, int) and isinstance(item, dict):
                    self._items[index] = item
                return Emit(_reframe(event))
            response = payload.get("response")
            if not isinstance(response, dict):
                raise StreamFailure(classify_stream_error({}, provider=self._provider))
            self._shell = self._own(response)
            if kind in _FINISHED:
                if not response.get("output") and self._items:
                    response["output"] = self.output()
                return Emit(final=payload)
            return Emit(encode_event(payload))
        if kind in ("error", "response.failed"):
            if payload is None:
                payload = decode_payload(event.data) or {}
            raise StreamFailure(classify_stream_error(payload, provider=self._provider))
        self._last_data = event.data
        return Emit(_reframe(event))

    def output(self) -> list[dict[str, Any]]:
        return [self._items[index] for index in sorted(self._items)]

    def end(self) -> Emit:
        raise StreamTruncated

    def fail(self, error: Mapping[str, Any]) -> Emit:
        found = _SEQUENCE.search(self._last_data)
        sequence = int(found.group(1)) + 1 if found else 0
        shell = self._shell or {"id": self._id, "object": "response", "previous_response_id": self._previous}
        first, failed = failure_events(shell, self.output(), sequence, error)
        self.upstream_id = None  # never chain natively from a failed response
        return Emit(encode_event(first), failed)


def _split_terminal(events: list[Event]) -> Emit:
    if events and events[-1]["type"] in TERMINAL:
        return Emit(b"".join(encode_event(e) for e in events[:-1]), events[-1])
    return Emit(b"".join(encode_event(e) for e in events))


class ChatConverter:
    """Chat Completions chunks -> Responses events (``ChatToResponsesStream``)."""

    def __init__(
        self, stream: ChatToResponsesStream, *, provider: str, completed_at: Callable[[], int]
    ) -> None:
        self._stream = stream
        self._provider = provider
        self._completed_at = completed_at

    def event(self, event: SSEEvent, payload: dict[str, Any] | None) -> Emit:
        if event.data == "[DONE]":
            return _split_terminal(self._stream.finish(completed_at=self._completed_at()))
        chunk = payload if payload is not None else decode_payload(event.data)
        if chunk is None:
            raise StreamFailure(classify_stream_error({}, provider=self._provider))
        if "error" in chunk:
            raise StreamFailure(classify_stream_error(chunk, provider=self._provider))
        return _split_terminal(self._stream.feed(chunk))

    def end(self) -> Emit:
        # Without [DONE], the answer is whole only if its finish_reason arrived.
        if self._stream.finish_reason is None:
            raise StreamTruncated
        return _split_terminal(self._stream.finish(completed_at=self._completed_at()))

    def fail(self, error: Mapping[str, Any]) -> Emit:
        return _split_terminal(self._stream.fail(error))


class AnthropicConverter:
    """Anthropic Messages events -> Responses events (through Chat chunks)."""

    def __init__(
        self, stream: AnthropicToResponsesStream, *, provider: str, completed_at: Callable[[], int]
    ) -> None:
        self._stream = stream
        self._provider = provider
        self._completed_at = completed_at

    def event(self, event: SSEEvent, payload: dict[str, Any] | None) -> Emit:
        data = payload if payload is not None else decode_payload(event.data)
        if data is None:
            raise StreamFailure(classify_stream_error({}, provider=self._provider))
        kind = event.event if event.event != "message" else str(data.get("type", ""))
        try:
            events = self._stream.feed(kind, data)
        except InbandError as failed:
            raise StreamFailure(classify_stream_error(failed.payload, provider=self._provider)) from None
        if self._stream.finished:
            events.extend(self._stream.finish(completed_at=self._completed_at()))
        return _split_terminal(events)

    def end(self) -> Emit:
        raise StreamTruncated

    def fail(self, error: Mapping[str, Any]) -> Emit:
        return _split_terminal(self._stream.fail(error))


class ResponsesRelay:
    """Runs a converter over an opened upstream stream and writes the record before the end."""

    def __init__(
        self,
        *,
        converter: Converter,
        record: Record,
        provider: str,
        clock: Clock,
        idle_timeout: float,
    ) -> None:
        self._converter = converter
        self._record = record
        self._provider = provider
        self._clock = clock
        self._idle_timeout = idle_timeout
        self._pending: list[bytes] = []
        self._idle: Watchdog | None = None
        self.failure: ClassifiedError | None = None

    async def run(self, opened: OpenedStream, send: SendChunk) -> None:
        converter = self._converter

        async def body(idle: Watchdog) -> None:
            self._idle = idle
            for event, _, payload in opened.events:
                if await self._step(converter.event(event, payload), send):
                    return
            await self._flush(send)
            async for chunk in opened.chunks:
                idle.touch()
                for event in opened.decoder.feed(chunk):
                    if await self._step(converter.event(event, None), send):
                        return
                await self._flush(send)
            for event in opened.decoder.flush():
                if await self._step(converter.event(event, None), send):
                    return
            await self._step(converter.end(), send)

        async def fail(failure: ClassifiedError) -> None:
            await self._fail(failure, send)

        await run_committed(
            opened, body, fail, provider=self._provider, clock=self._clock, idle_timeout=self._idle_timeout
        )

    async def _flush(self, send: SendChunk) -> None:
        if self._pending:
            out = b"".join(self._pending)
            self._pending.clear()
            await send(out)

    async def _step(self, emit: Emit, send: SendChunk) -> bool:
        """Queue ``emit``; at the terminal event, record then send. True when the stream is over."""
        if emit.frames:
            self._pending.append(emit.frames)
        final = emit.final
        if final is None:
            return False
        if self._idle is not None:  # the upstream is done; only the record is left to write
            self._idle.cancel()
        await self._flush(send)
        response = final["response"]
        try:
            await self._record(response)
        except Exception:
            log.exception("could not store response %s", response.get("id"))
            if final["type"] != "response.failed":
                first, failed = failure_events(
                    response, list(response.get("output") or ()), int(final["sequence_number"]), STORE_FAILED
                )
                await send(encode_event(first) + encode_event(failed))
                return True
        await send(encode_event(final))
        return True

    async def _fail(self, failure: ClassifiedError, send: SendChunk) -> None:
        self.failure = failure
        await self._step(self._converter.fail(error_object(failure, api="responses")), send)
