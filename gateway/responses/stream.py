"""Responses streams after the commit point: events to the client, the record before the end.

The deployment's dialect gives a converter (:class:`gateway.dialects.Converter`) that turns
upstream events into Responses events for the client. It holds back the terminal event
(``response.completed`` / ``response.incomplete`` / ``response.failed``) and hands it to the
relay, which writes the record first and only then sends it: a follow-up sent the moment the
client sees the end always finds its parent.

After commit, failures (an in-band error, ``response.failed``, a cut or stalled stream, a broken
connection) end the stream with ``error`` (nested and flat fields) then ``response.failed``;
never a ``response.completed`` after a failure — unless a rescue continues the answer first
(``hold``, :meth:`ResponsesRelay.emit`; see :mod:`gateway.responses.continuation`).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from gateway.clock import Clock, Watchdog
from gateway.dialects import Converter, Emit, failure_events
from gateway.errors import ClassifiedError, error_object
from gateway.policy.usage import usage_from_responses
from gateway.pricing import Usage
from gateway.translate import encode_carrier, encode_event
from gateway.upstream.call import OpenedStream
from gateway.upstream.committed import SendChunk, run_committed

log = logging.getLogger("gateway.responses")

# Records the final Response; the Response's JSON as the client gets it when that came of it.
Record = Callable[[dict[str, Any]], Awaitable[bytes | None]]

STORE_FAILED: dict[str, Any] = {
    "message": "The response could not be stored, so it can be neither retrieved nor continued. "
    "Please try again.",
    "type": "server_error",
    "param": None,
    "code": "response_store_unavailable",
}


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
        self.hold = False  # keep a failure for a rescue to try first (see ``release``)
        self._usage: Usage | None = None

    @property
    def usage(self) -> Usage | None:
        """The final response's usage (None until it arrived)."""
        return self._usage

    @property
    def model(self) -> str | None:
        return None

    async def run(self, opened: OpenedStream, send: SendChunk) -> None:
        converter = self._converter
        pending = self._pending

        async def body(idle: Watchdog) -> None:
            self._idle = idle
            for event, _, payload in opened.events:
                emit = converter.event(event, payload)
                if emit.final is not None:
                    await self._step(emit, send)
                    return
                if emit.frames:
                    pending.append(emit.frames)
            await self._flush(send)
            decoder = opened.decoder
            async for chunk in opened.chunks:
                idle.touch()
                for event in decoder.feed(chunk):
                    emit = converter.event(event, None)
                    if emit.final is not None:
                        await self._step(emit, send)
                        return
                    if emit.frames:
                        pending.append(emit.frames)
                if pending:
                    await self._flush(send)
            for event in decoder.flush():
                if await self._step(converter.event(event, None), send):
                    return
            await self._step(converter.end(), send)

        async def fail(failure: ClassifiedError) -> None:
            await self._fail(failure, send)

        await run_committed(
            opened, body, fail, provider=self._provider, clock=self._clock, idle_timeout=self._idle_timeout
        )

    @property
    def converter(self) -> Converter:
        return self._converter

    async def emit(self, emit: Emit, send: SendChunk) -> None:
        """Events a rescue produced for this stream's answer (the terminal one recorded first)."""
        await self._step(emit, send)
        await self._flush(send)

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
        self._usage = usage_from_responses(response.get("usage"))
        try:
            response_json = await self._record(response)
        except Exception:
            log.exception("could not store response %s", response.get("id"))
            if final["type"] != "response.failed":
                first, failed = failure_events(
                    response, list(response.get("output") or ()), int(final["sequence_number"]), STORE_FAILED
                )
                await send(encode_event(first) + encode_event(failed))
                return True
        await send(encode_carrier(final, response_json))
        return True

    async def _fail(self, failure: ClassifiedError, send: SendChunk) -> None:
        self.failure = failure
        if not self.hold:
            await self._step(self._converter.fail(error_object(failure, api="responses")), send)

    async def release(self, send: SendChunk) -> None:
        """Send the held failure (``error`` then ``response.failed``, recorded first)."""
        if self.failure is not None:
            await self._step(self._converter.fail(error_object(self.failure, api="responses")), send)
