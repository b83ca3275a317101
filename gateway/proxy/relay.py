"""After the commit point: move upstream bytes to the client, and never fake a success.

The passthrough relay forwards raw upstream bytes without decoding them. It looks at each
chunk only with two substring checks (C speed): the terminal marker, to know the stream ended
cleanly, and the ``"error"`` key, to catch an in-band failure. A stream that stops without its
terminal marker, stalls past the idle timeout, or breaks, ends with a classified in-band error
and no terminal marker.
"""

from __future__ import annotations

from collections.abc import Callable

from gateway.clock import Clock
from gateway.errors import (
    ClassifiedError,
    classify_stream_error,
)
from gateway.policy.usage import StreamUsageTap
from gateway.proxy.committed import SendChunk, StreamTruncated, run_committed
from gateway.proxy.sse import SSEDecoder
from gateway.proxy.upstream_call import EventRole, OpenedStream, StreamDialect
from gateway.proxy.watchdog import Watchdog

ErrorFrames = Callable[[ClassifiedError], bytes]


class PassthroughRelay:
    """Relays one dialect's stream as-is. ``done_marker`` ends a clean stream."""

    def __init__(
        self,
        *,
        dialect: StreamDialect,
        done_marker: bytes,
        error_frames: ErrorFrames,
        provider: str,
        clock: Clock,
        idle_timeout: float,
        tap: StreamUsageTap | None = None,
    ) -> None:
        self._tap = tap
        self._dialect = dialect
        self._done = done_marker
        self._error_frames = error_frames
        self._provider = provider
        self._clock = clock
        self._idle_timeout = idle_timeout
        self.failure: ClassifiedError | None = None

    async def run(self, opened: OpenedStream, send: SendChunk) -> None:
        done = self._done
        keep = len(done)

        async def body(idle: Watchdog) -> None:
            tail = b""
            clean = False
            tap = self._tap
            for chunk in opened.buffered:
                if tap is not None and not (chunk := tap.feed(chunk)):
                    continue
                if b'"error"' in chunk and await self._inband(chunk, send):
                    return
                clean = clean or done in tail + chunk
                await send(chunk)
                tail = chunk[-keep:]
            async for chunk in opened.chunks:
                idle.touch()
                if tap is not None and not (chunk := tap.feed(chunk)):
                    continue
                if b'"error"' in chunk and await self._inband(chunk, send):
                    return
                clean = clean or done in tail + chunk
                await send(chunk)
                tail = chunk[-keep:]
            rest = tap.flush() if tap is not None else b""
            if rest:
                clean = clean or done in tail + rest
                await send(rest)
            if not clean:
                raise StreamTruncated

        async def fail(failure: ClassifiedError) -> None:
            await self._fail(failure, send)

        await run_committed(
            opened, body, fail, provider=self._provider, clock=self._clock, idle_timeout=self._idle_timeout
        )

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
                role, payload = self._dialect.role(event)
                if role is EventRole.ERROR and payload is not None:
                    if event_start > 0:
                        await send(chunk[:event_start])
                    await self._fail(classify_stream_error(payload, provider=self._provider), send)
                    return True
            if line.strip() == b"":
                event_start = end
            line_start = end
        return False

    async def _fail(self, failure: ClassifiedError, send: SendChunk) -> None:
        self.failure = failure
        await send(self._error_frames(failure))
