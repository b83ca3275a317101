"""One attempt against an upstream: send, wait for the answer under a timer, classify failures.

Streaming attempts end at the **commit point**: the first meaningful upstream event. Until
then nothing has been sent to the client, so every failure (an HTTP error, a connection
reset, silence past the startup guard, an in-band error after a harmless first event, a
stream that ends early) becomes :class:`AttemptFailed` and can be retried or failed over.
"""

from __future__ import annotations

import asyncio
import enum
import time
from collections.abc import AsyncIterator, Callable
from typing import Any, Protocol

import httpx
import msgspec

from gateway.clock import REQUEST_TIMEOUT, STARTUP_GUARD, Clock, Watchdog
from gateway.errors import (
    AttemptFailed,
    ClassifiedError,
    classify_exception,
    classify_response,
    classify_stream_error,
    classify_text,
    startup_timeout_error,
)
from gateway.upstream.failover import Attempt
from gateway.upstream.http11_transport import Body
from gateway.upstream.sse import SSEDecoder, SSEEvent
from gateway.upstream.stream_errors import MalformedGuard, StreamFailure, malformed_event

__all__ = [
    "ERROR_BODY_LIMIT",
    "AnswerCheck",
    "EventRole",
    "EventRoles",
    "GuardedDecoder",
    "OpenedStream",
    "TimedSend",
    "call_json",
    "classified_answer",
    "closed_early",
    "decode_object",
    "empty_stream",
    "failure_of",
    "malformed_body",
    "malformed_event",
    "open_stream",
    "raw_chunks",
    "read_whole",
    "request_timed_out",
]

_DECODER = msgspec.json.Decoder()
ERROR_BODY_LIMIT = 64 * 1024


class EventRole(enum.Enum):
    HARMLESS = "harmless"  # does not commit the stream (keep-alive-like)
    MEANINGFUL = "meaningful"  # commits the stream
    ERROR = "error"  # an in-band failure
    DONE = "done"  # a clean terminal marker


class EventRoles(Protocol):
    """What each event of one upstream dialect's stream means for the commit point (the
    dialect adapters in :mod:`gateway.dialects` implement it)."""

    def role(self, event: SSEEvent) -> tuple[EventRole, dict[str, Any] | None]: ...


def decode_object(data: str) -> dict[str, Any] | None:
    """An event's data as a JSON object, or None (not JSON, or not an object)."""
    try:
        value = _DECODER.decode(data)
    except msgspec.DecodeError:
        return None
    return value if isinstance(value, dict) else None


def closed_early(provider: str) -> ClassifiedError:
    return classify_text("upstream stream closed before the response started (eof)", provider=provider)


def empty_stream(provider: str) -> ClassifiedError:
    """A streamed request answered 2xx with an empty body: the deployment's own answer to this
    request (a server that cannot stream it, a proxy that drops it), not a timeout. Not retried
    on the same deployment; another one may answer it."""
    classified = classify_text("upstream server error: empty response body", provider=provider)
    return msgspec.structs.replace(
        classified,
        retryable=False,
        detail="The upstream answered the streamed request with a success status and an empty body.",
    )


async def _already_read(content: bytes) -> AsyncIterator[bytes]:
    yield content


def raw_chunks(response: httpx.Response) -> AsyncIterator[bytes]:
    """The body as it arrives, without decoding. (Mock transports may hand over a read body.)

    The gateway's own transport's body is read straight from the connection: httpx's
    ``aiter_raw`` would add a generator, a chunker and a context per chunk and nothing else
    (the relay closes the response itself)."""
    if response.is_stream_consumed:
        return _already_read(response.content)
    stream = response.stream
    if isinstance(stream, Body):
        response.is_stream_consumed = True
        return stream.__aiter__()
    return response.aiter_raw().__aiter__()


_VALID = msgspec.json.Decoder(msgspec.Raw)


def is_json(data: str | bytes) -> bool:
    """Whether an event's data is JSON (validated without building anything), or ``[DONE]``."""
    if data == "[DONE]" or data == b"[DONE]":
        return True
    try:
        _VALID.decode(data)
    except msgspec.DecodeError:
        return False
    return True


class GuardedDecoder(SSEDecoder):
    """The SSE decoder of an opened stream. Once :attr:`guard` is set (at the commit point), an
    event whose data is not JSON is dropped under the guard's rule (see
    :mod:`gateway.upstream.stream_errors`) instead of reaching the relay."""

    __slots__ = ("guard",)

    def __init__(self) -> None:
        super().__init__()
        self.guard: MalformedGuard | None = None

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        return self._checked(super().feed(chunk))

    def flush(self) -> list[SSEEvent]:
        return self._checked(super().flush())

    def _checked(self, events: list[SSEEvent]) -> list[SSEEvent]:
        guard = self.guard
        if guard is None or not events:
            return events
        kept: list[SSEEvent] = []
        for event in events:
            if is_json(event.data):
                guard.good()
                kept.append(event)
            else:
                guard.bad(event.data)
        return kept


class OpenedStream:
    """A stream at its commit point: what was read so far, and the rest to come.

    ``events`` are the whole events of ``buffered``, each with its role and its decoded payload
    (None for an event past the commit point that was only checked, not decoded: a consumer that
    needs it decodes it). ``clean``: every whole event in ``buffered`` was judged and none was
    malformed, so a relay may forward those bytes without checking them again."""

    __slots__ = ("buffered", "chunks", "clean", "decoder", "events", "response")

    def __init__(
        self,
        response: httpx.Response,
        chunks: AsyncIterator[bytes],
        buffered: list[bytes],
        events: list[tuple[SSEEvent, EventRole, dict[str, Any] | None]],
        decoder: SSEDecoder,
        *,
        clean: bool = False,
    ) -> None:
        self.response = response
        self.chunks = chunks
        self.buffered = buffered
        self.events = events
        self.decoder = decoder
        self.clean = clean

    async def aclose(self) -> None:
        await self.response.aclose()


# Event names, and strings in an event's data, that may mark an in-band failure in any dialect:
# Chat's and the simple routes' ``"error"`` key, Anthropic's ``event: error`` and its
# ``"type": "error"``, Responses' ``error`` and ``response.failed``.
_FAILURE_EVENTS = frozenset({"error", "response.failed"})


def plainly_not_failure(event: SSEEvent) -> bool:
    """An event that no dialect's roles could call an in-band failure, unless its data is not
    JSON: past the commit point it is checked, not decoded (a substring test is enough to
    tell it from a failure; anything that might be one gets the dialect's full reading)."""
    data = event.data
    return '"error"' not in data and 'failed"' not in data and event.event not in _FAILURE_EVENTS


def malformed_guard(attempt: Attempt) -> MalformedGuard:
    """The rule for malformed events after the commit point of this attempt's stream."""
    upstream = attempt.upstream
    return MalformedGuard(
        provider=upstream.classifier_key,
        name=upstream.name,
        limit=upstream.settings.max_malformed_events,
        sink=attempt.health,
    )


def classified_answer(
    status: int, response: httpx.Response, body: bytes, attempt: Attempt, clock: Clock
) -> AttemptFailed:
    """The failure an error answer (``status``, the response's headers, ``body`` up to 64 KiB)
    is classified as."""
    return AttemptFailed(
        classify_response(
            status,
            response.headers,
            body[:ERROR_BODY_LIMIT],
            provider=attempt.upstream.classifier_key,
            now=clock.now(),
        )
    )


async def failure_of(response: httpx.Response, attempt: Attempt, clock: Clock) -> AttemptFailed:
    """The classified failure of an error status (its body read up to 64 KiB, then closed)."""
    body = b""
    try:
        async for chunk in response.aiter_raw():
            body += chunk
            if len(body) >= ERROR_BODY_LIMIT:
                break
    except httpx.HTTPError:
        pass
    finally:
        await response.aclose()
    return classified_answer(response.status_code, response, body, attempt, clock)


class TimedSend:
    """One attempt's request on its way, under a named timer: :meth:`send` returns the answer
    of a success status (an error status is raised as its classified failure) and keeps it in
    :attr:`response`; :meth:`end` stops the timer and records how long the upstream took."""

    __slots__ = ("attempt", "clock", "guard", "response", "started")

    def __init__(self, attempt: Attempt, clock: Clock, seconds: float, name: str) -> None:
        self.attempt = attempt
        self.clock = clock
        self.guard = Watchdog(clock, seconds, name=name)
        self.started = time.perf_counter()
        self.response: httpx.Response | None = None

    async def send(self, request: httpx.Request) -> httpx.Response:
        response = self.response = await self.attempt.upstream.send(request, stream=True)
        if response.status_code >= 400:
            raise await failure_of(response, self.attempt, self.clock)
        return response

    def end(self) -> None:
        self.guard.cancel()
        self.attempt.record.upstream_ms = (time.perf_counter() - self.started) * 1000


def _json_instead_of_stream(body: bytes, provider: str) -> AttemptFailed:
    """A 200 JSON answer to a streaming request: an error in disguise, or a broken upstream."""
    payload = decode_object(body[:ERROR_BODY_LIMIT].decode("utf-8", "replace"))
    if payload is not None and "error" in payload:
        return AttemptFailed(classify_stream_error(payload, provider=provider, status_code=200))
    return AttemptFailed(malformed_event(provider))


class _Envelope(msgspec.Struct):
    """The top level of a JSON answer, as far as telling an answer from an error goes."""

    error: msgspec.Raw = msgspec.Raw()
    choices: msgspec.Raw = msgspec.Raw()  # Chat Completions
    output: msgspec.Raw = msgspec.Raw()  # Responses (a failed response has both)
    content: msgspec.Raw = msgspec.Raw()  # Anthropic Messages


_ENVELOPE = msgspec.json.Decoder(_Envelope)


def _absent(raw: msgspec.Raw) -> bool:
    return len(raw) == 0 or bytes(raw) == b"null"


def malformed_body(provider: str) -> ClassifiedError:
    """A 2xx answer whose body is not a JSON object (cut short or corrupted; generic, retryable)."""
    classified = classify_text("upstream server error: malformed JSON answer", provider=provider)
    return msgspec.structs.replace(classified, detail="The upstream answer was not a valid JSON object.")


def _json_answer_failure(body: bytes, provider: str) -> AttemptFailed | None:
    """Why a 2xx JSON answer is not an answer: not a JSON object (cut short, corrupted), or an
    error object under a 2xx status (OpenAI's ``{"error": ...}``, Anthropic's
    ``{"type": "error", "error": ...}``). ``None`` for an answer."""
    try:
        envelope = _ENVELOPE.decode(body)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return AttemptFailed(malformed_body(provider))
    if _absent(envelope.error) or not (
        _absent(envelope.choices) and _absent(envelope.output) and _absent(envelope.content)
    ):
        return None
    payload = decode_object(body.decode("utf-8", "replace"))
    return AttemptFailed(classify_stream_error(payload or {}, provider=provider, status_code=200))


def request_timed_out(provider: str) -> ClassifiedError:
    return classify_text("request timed out", provider=provider)


AnswerCheck = Callable[[httpx.Response], AttemptFailed | None]


async def read_whole(
    attempt: Attempt,
    request: httpx.Request,
    clock: Clock,
    check: AnswerCheck,
    *,
    headless: Callable[[str], ClassifiedError],
) -> httpx.Response:
    """A non-streaming attempt under the request timer; returns the upstream response with its
    body read. ``check`` finds a 2xx answer that is a failure (None for an answer);
    ``headless`` is the failure when the timer runs out before the response's headers."""
    provider = attempt.upstream.classifier_key
    timed = TimedSend(attempt, clock, attempt.upstream.settings.timeouts.request, REQUEST_TIMEOUT)
    try:
        response = await timed.send(request)
        await response.aread()
        failure = check(response)
        if failure is not None:
            raise failure
        return response
    except asyncio.CancelledError:
        if not timed.guard.absorb():
            raise
        if timed.response is None:
            raise AttemptFailed(headless(provider)) from None
        await timed.response.aclose()
        raise AttemptFailed(request_timed_out(provider)) from None
    except httpx.HTTPError as exc:
        raise AttemptFailed(classify_exception(exc, provider=provider)) from None
    finally:
        timed.end()


async def call_json(attempt: Attempt, request: httpx.Request, clock: Clock) -> httpx.Response:
    """A non-streaming JSON attempt; returns the upstream response with its body read. A
    deployment silent until the timer runs out (not even the headers) is a startup timeout."""
    provider = attempt.upstream.classifier_key

    def check(response: httpx.Response) -> AttemptFailed | None:
        return _json_answer_failure(response.content, provider)

    return await read_whole(attempt, request, clock, check, headless=startup_timeout_error)


async def open_stream(
    attempt: Attempt, request: httpx.Request, roles: EventRoles, clock: Clock
) -> OpenedStream:
    """A streaming attempt up to its commit point, under the startup guard."""
    provider = attempt.upstream.classifier_key
    timed = TimedSend(attempt, clock, attempt.upstream.settings.timeouts.startup, STARTUP_GUARD)
    handed_over = False
    try:
        response = await timed.send(request)
        if "json" in response.headers.get("content-type", ""):
            raise _json_instead_of_stream(await response.aread(), provider)
        chunks = raw_chunks(response)
        decoder = GuardedDecoder()
        malformed = malformed_guard(attempt)
        buffered: list[bytes] = []
        seen: list[tuple[SSEEvent, EventRole, dict[str, Any] | None]] = []
        clean = True
        while True:
            try:
                chunk = await chunks.__anext__()
            except StopAsyncIteration:
                events = decoder.flush()
                if not events:
                    failure = closed_early(provider) if any(buffered) else empty_stream(provider)
                    raise AttemptFailed(failure) from None
                chunk = b""
            else:
                buffered.append(chunk)
                events = decoder.feed(chunk)
            committed = False
            for event in events:
                if committed and plainly_not_failure(event):
                    # Past the commit point in the same read: only whether it is JSON matters.
                    if is_json(event.data):
                        malformed.good()
                        seen.append((event, EventRole.MEANINGFUL, None))
                        continue
                    clean = False
                    try:
                        malformed.bad(event.data)
                    except StreamFailure as failure:
                        raise AttemptFailed(failure.classified) from None
                    continue
                role, payload = roles.role(event)
                if role is EventRole.ERROR:
                    if payload is not None:
                        # An in-band error in the same read as the first meaningful event is
                        # still pre-commit: nothing has been sent, the attempt fails.
                        raise AttemptFailed(classify_stream_error(payload, provider=provider))
                    if not committed:
                        raise AttemptFailed(malformed_event(provider))
                    clean = False
                    try:  # after the first meaningful event: the post-commit rule
                        malformed.bad(event.data)
                    except StreamFailure as failure:
                        raise AttemptFailed(failure.classified) from None
                    continue
                if committed:
                    malformed.good()
                seen.append((event, role, payload))
                committed = committed or role is not EventRole.HARMLESS
            if committed:
                timed.guard.cancel()
                handed_over = True
                decoder.guard = malformed
                return OpenedStream(response, chunks, buffered, seen, decoder, clean=clean)
            if not chunk:
                raise AttemptFailed(closed_early(provider) if any(buffered) else empty_stream(provider))
    except asyncio.CancelledError:
        if timed.guard.absorb():
            raise AttemptFailed(startup_timeout_error(provider)) from None
        raise
    except httpx.HTTPError as exc:
        raise AttemptFailed(classify_exception(exc, provider=provider)) from None
    finally:
        timed.end()
        if timed.response is not None and not handed_over:
            await timed.response.aclose()
