"""A committed stream from a non-Anthropic upstream, sent to the client as Anthropic events.

The deployment's dialect relays its stream as Chat Completions chunks under the usual guard
(commit point, idle timeout, truncation, in-band failures, usage tap); this relay wraps it and
turns those chunks into Messages events on the way out
(:class:`~gateway.translate.messages_stream.ChatToMessagesStream`), the outermost step.

* A clean end (``[DONE]``, or the inner relay ending without a failure) closes the message:
  the open block, ``message_delta``, ``message_stop``.
* A failure the inner relay classified is sent as ``event: error`` in Anthropic's shape, from
  the same classification, and the stream ends without ``message_stop``.
* While the upstream is silent, a ``ping`` event goes out every :data:`PING_SECONDS` (a timer
  named ``messages_ping`` on the injected clock), so clients and proxies keep the connection.
"""

from __future__ import annotations

import asyncio
import contextlib

import msgspec

from gateway.clock import Clock, QuietTimer
from gateway.errors import ClassifiedError
from gateway.errors.anthropic import anthropic_stream_error_frame
from gateway.pricing import Usage
from gateway.translate.messages_stream import ChatToMessagesStream, encode_events
from gateway.upstream.call import OpenedStream
from gateway.upstream.committed import Relay, SendChunk
from gateway.upstream.sse import SSEDecoder

PING_SECONDS = 10.0
PING_TIMER = "messages_ping"
PING_FRAME = b'event: ping\ndata: {"type":"ping"}\n\n'
_DECODER = msgspec.json.Decoder()


class Pinger(QuietTimer):
    """Sends a ping after each :data:`PING_SECONDS` without output (re-armed lazily, like the
    idle watchdog: a send only stores the time)."""

    __slots__ = ("_send", "_sending")

    def __init__(self, clock: Clock, send: SendChunk, interval: float = PING_SECONDS) -> None:
        self._send = send
        self._sending: asyncio.Task[None] | None = None
        super().__init__(clock, interval, name=PING_TIMER)

    def _quiet(self, quiet: float) -> float:
        if self._sending is not None and not self._sending.done():
            return quiet  # the last ping is still being sent: look again at once
        self.touch()
        self._sending = asyncio.get_running_loop().create_task(self._ping())
        return 0.0

    async def _ping(self) -> None:
        with contextlib.suppress(Exception):
            await self._send(PING_FRAME)

    async def stop(self) -> None:
        self._disarm()
        if self._sending is not None and not self._sending.done():
            await asyncio.wait([self._sending])


class MessagesRelay:
    """Wraps the dialect's Chat-chunk relay; sends Anthropic events."""

    def __init__(self, inner: Relay, stream: ChatToMessagesStream, clock: Clock) -> None:
        self._inner = inner
        self._stream = stream
        self._clock = clock
        self._decoder = SSEDecoder()
        self._failed = False

    @property
    def failure(self) -> ClassifiedError | None:
        return self._inner.failure

    @failure.setter
    def failure(self, value: ClassifiedError | None) -> None:
        self._inner.failure = value

    @property
    def hold(self) -> bool:
        return self._inner.hold

    @hold.setter
    def hold(self, value: bool) -> None:
        self._inner.hold = value

    @property
    def usage(self) -> Usage | None:
        return self._inner.usage

    @property
    def model(self) -> str | None:
        return self._inner.model

    def _translate(self, chunk: bytes) -> bytes:
        stream = self._stream
        out: list[bytes] = []
        for event in self._decoder.feed(chunk):
            if self._failed or stream.finished:
                continue
            if event.data == "[DONE]":
                out.append(encode_events(stream.finish()))
                continue
            try:
                payload = _DECODER.decode(event.data)
            except msgspec.DecodeError:
                continue  # the inner relay ends a stream with a broken event itself
            if not isinstance(payload, dict):
                continue
            if "error" in payload and self._inner.failure is not None:
                # The inner relay's classified failure, in Anthropic's shape.
                self._failed = True
                out.append(anthropic_stream_error_frame(self._inner.failure))
                continue
            out.append(encode_events(stream.feed(payload)))
        return b"".join(out)

    async def run(self, opened: OpenedStream, send: SendChunk) -> None:
        pinger: Pinger | None = None

        async def translated(chunk: bytes) -> None:
            nonlocal pinger
            out = self._translate(chunk)
            if out:
                await send(out)
                if pinger is None:
                    pinger = Pinger(self._clock, send)
                else:
                    pinger.touch()

        try:
            await self._inner.run(opened, translated)
            if not self._failed and self._inner.failure is None and not self._stream.finished:
                await send(encode_events(self._stream.finish()))
        finally:
            if pinger is not None:
                await pinger.stop()

    async def release(self, send: SendChunk) -> None:
        """Send the held failure as Anthropic's ``event: error``."""

        async def translated(chunk: bytes) -> None:
            out = self._translate(chunk)
            if out:
                await send(out)

        await self._inner.release(translated)
