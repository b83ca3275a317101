"""After the commit point: move upstream bytes to the client, and never fake a success.

The passthrough relay forwards upstream bytes unchanged, cut at event boundaries. It looks at
each event only as much as it must: the terminal marker (a substring check), to know the stream
ended cleanly; a ``finish_reason`` (a pattern search per chunk), since a stream whose answer
finished and whose connection then closed cleanly is complete even without its marker (the
marker is then added for the client, which expects it); the ``"error"`` key (a substring
check), to catch an in-band failure; and one validating JSON decode per event, so that a
malformed event is dropped under the stream's rule instead of reaching the client (see
:mod:`gateway.upstream.stream_errors`). A stream that stops before its answer finished, stalls
past the idle timeout, breaks, or sends too many malformed events in a row ends with a
classified in-band error and no terminal marker.
"""

from __future__ import annotations

import re
from typing import Protocol

import msgspec

from gateway.clock import Clock, Watchdog
from gateway.errors import classify_stream_error
from gateway.pricing import Usage
from gateway.upstream.call import EventRole, EventRoles, GuardedDecoder, OpenedStream
from gateway.upstream.committed import SendChunk, StreamFailure, StreamTruncated
from gateway.upstream.committed_relay import CommittedRelay, ErrorFrames
from gateway.upstream.sse import DONE_FRAME, SSEDecoder
from gateway.upstream.stream_errors import MalformedGuard, NoSink

# A choice that finished: `"finish_reason": "stop"` (a string, not null).
FINISHED = re.compile(rb'"finish_reason"\s*:\s*"')


class StreamTap(Protocol):
    """Sees the relayed bytes go by (whole events), may drop some, and keeps the usage it saw
    (the policy's ``StreamUsageTap``)."""

    usage: Usage | None
    model: str | None

    def feed(self, chunk: bytes) -> bytes: ...

    def flush(self) -> bytes: ...


class EventFramer:
    """Cuts a relayed SSE byte stream at event boundaries and checks each event's data is JSON.

    :meth:`feed` returns the whole events received so far (a partial event waits for its end,
    which the client could not have used anyway), without the malformed ones: each goes to the
    guard, which drops it or ends the stream (then the failure comes back with the events before
    it, and the rest is never read). The check is one ``find`` per line and
    one validating decode per event (into :class:`msgspec.Raw`, so nothing is built): about a
    microsecond a chunk.
    """

    __slots__ = ("_carry", "guard")

    def __init__(self, guard: MalformedGuard) -> None:
        self._carry = b""
        self.guard = guard

    def feed(self, chunk: bytes, *, check: bool = True) -> tuple[bytes, StreamFailure | None]:
        """The whole events so far; ``check=False``: bytes whose events were judged already
        (read before the commit point), only cut after their last whole event."""
        buf = self._carry + chunk if self._carry else chunk
        if not check:
            lf, crlf = buf.rfind(b"\n\n"), buf.rfind(b"\n\r\n")
            end = max(lf + 2 if lf >= 0 else 0, crlf + 3 if crlf >= 0 else 0)
            self._carry = buf[end:]
            return buf[:end], None
        start = 0  # of the current line
        event_start = 0  # of the current event
        data: list[bytes] = []
        kept: list[bytes] | None = None  # the whole events, once one had to be left out
        while True:
            nl = buf.find(b"\n", start)
            if nl < 0:
                break
            line = buf[start:nl]
            start = nl + 1
            if line[-1:] == b"\r":
                line = line[:-1]
            if line:
                if line[:5] == b"data:":
                    value = line[5:]
                    data.append(value[1:] if value[:1] == b" " else value)
                continue
            if data:
                payload = data[0] if len(data) == 1 else b"\n".join(data)
                if _valid(payload):
                    self.guard.good()
                    if kept is not None:
                        kept.append(buf[event_start:start])
                else:
                    if kept is None:
                        kept = [buf[:event_start]]
                    try:
                        self.guard.bad(payload)
                    except StreamFailure as failure:
                        self._carry = b""
                        return b"".join(kept), failure
            elif kept is not None:
                kept.append(buf[event_start:start])
            data = []
            event_start = start
        self._carry = buf[event_start:]
        return (buf[:event_start] if kept is None else b"".join(kept)), None

    def flush(self) -> tuple[bytes, StreamFailure | None]:
        """The stream ended: a last event without its blank line (ended for the client)."""
        if not self._carry.strip():
            rest, self._carry = self._carry, b""
            return rest, None
        return self.feed(b"\n\n")


_RAW = msgspec.json.Decoder(msgspec.Raw)


def _valid(payload: bytes) -> bool:
    if payload == b"[DONE]":
        return True
    try:
        _RAW.decode(payload)
    except msgspec.DecodeError:
        return False
    return True


def stream_guard(opened: OpenedStream, provider: str) -> MalformedGuard:
    """The opened stream's rule for malformed events (one ends a stream opened without one)."""
    decoder = opened.decoder
    if isinstance(decoder, GuardedDecoder) and decoder.guard is not None:
        return decoder.guard
    return MalformedGuard(provider=provider, name=provider, limit=1, sink=NoSink())


class PassthroughRelay(CommittedRelay):
    """Relays one dialect's stream as-is, whole events at a time. ``done_marker`` ends a clean
    stream (and is added after a finished answer whose upstream closed without it)."""

    def __init__(
        self,
        *,
        roles: EventRoles,
        done_marker: bytes,
        error_frames: ErrorFrames,
        provider: str,
        clock: Clock,
        idle_timeout: float,
        tap: StreamTap | None = None,
    ) -> None:
        super().__init__(error_frames=error_frames, provider=provider, clock=clock, idle_timeout=idle_timeout)
        self._tap = tap
        self._roles = roles
        self._done = done_marker

    @property
    def usage(self) -> Usage | None:
        return self._tap.usage if self._tap is not None else None

    @property
    def model(self) -> str | None:
        return self._tap.model if self._tap is not None else None

    async def run(self, opened: OpenedStream, send: SendChunk) -> None:
        done = self._done
        guard = stream_guard(opened, self._provider)
        # The bytes read up to the commit point were judged event by event already.
        framer = EventFramer(MalformedGuard(provider=self._provider, name="", limit=1 << 30, sink=NoSink()))
        tap = self._tap
        clean = False
        finished = False

        async def forward(framed: tuple[bytes, StreamFailure | None]) -> bool:
            """Send whole events; True when the stream is over (an in-band error)."""
            nonlocal clean, finished
            whole, broken = framed
            if tap is not None and whole:
                whole = tap.feed(whole)
            if whole:
                if b'"error"' in whole and await self._inband(whole, send):
                    return True
                # Events arrive whole, so the marker is never split across two sends.
                clean = clean or done in whole
                finished = finished or FINISHED.search(whole) is not None
                await send(whole)
            if broken is not None:
                raise broken
            return False

        async def body(idle: Watchdog) -> None:
            nonlocal clean
            check = not opened.clean
            for chunk in opened.buffered:
                if await forward(framer.feed(chunk, check=check)):
                    return
            framer.guard = guard
            async for chunk in opened.chunks:
                idle.touch()
                if await forward(framer.feed(chunk)):
                    return
            if await forward(framer.flush()):
                return
            rest = tap.flush() if tap is not None else b""
            if rest:
                clean = clean or done in rest
                await send(rest)
            if clean:
                return
            if not finished or done != DONE_FRAME[:-2]:
                raise StreamTruncated
            # The answer finished and the upstream closed cleanly without its marker: complete.
            await send(DONE_FRAME)

        await self._guarded(opened, body, send)

    async def _inband(self, chunk: bytes, send: SendChunk) -> bool:
        """Forward what precedes an in-band error, then our classified error. True if one was found."""
        decoder = SSEDecoder()
        line_start = 0
        event_start = 0
        while line_start < len(chunk):
            nl = chunk.find(b"\n", line_start)
            end = len(chunk) if nl < 0 else nl + 1
            line = chunk[line_start:end]
            for event in decoder.feed(line if nl >= 0 else line + b"\n\n"):
                role, payload = self._roles.role(event)
                if role is EventRole.ERROR and payload is not None:
                    if event_start > 0:
                        await send(chunk[:event_start])
                    await self._fail(classify_stream_error(payload, provider=self._provider), send)
                    return True
            if line.strip() == b"":
                event_start = end
            line_start = end
        return False
