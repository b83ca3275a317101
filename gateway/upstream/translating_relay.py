"""After the commit point, for streams that change dialect on the way (e.g. Anthropic -> Chat).

Upstream events are decoded once, handed to an :class:`EventTranslator`, and the frames it
returns for one upstream chunk are sent together. The same guarantees as the passthrough
relay hold: an in-band failure, a stall past the idle timeout, a broken connection or a stream
that ends before its terminal event all end with the translator's classified error frames.
"""

from __future__ import annotations

from typing import Protocol

from gateway.clock import Clock, Watchdog
from gateway.errors import ClassifiedError
from gateway.pricing import Usage
from gateway.upstream.call import OpenedStream
from gateway.upstream.committed import SendChunk
from gateway.upstream.committed_relay import CommittedRelay
from gateway.upstream.sse import SSEEvent


class EventTranslator(Protocol):
    @property
    def usage(self) -> Usage | None:
        """What the upstream reported so far (None before any)."""
        ...

    def event(self, event: SSEEvent) -> bytes:
        """Frames for one upstream event (b"" for none). May raise :class:`StreamFailure`."""
        ...

    def end(self) -> bytes:
        """Frames after the upstream ended. Raises :class:`StreamTruncated` if it ended early."""
        ...

    def failure(self, classified: ClassifiedError) -> bytes:
        """The in-band error frames of the client's dialect."""
        ...


class TranslatingRelay(CommittedRelay):
    def __init__(
        self, *, translator: EventTranslator, provider: str, clock: Clock, idle_timeout: float
    ) -> None:
        super().__init__(
            error_frames=translator.failure, provider=provider, clock=clock, idle_timeout=idle_timeout
        )
        self._translator = translator

    @property
    def usage(self) -> Usage | None:
        return self._translator.usage

    @property
    def model(self) -> str | None:
        return None

    async def run(self, opened: OpenedStream, send: SendChunk) -> None:
        translator = self._translator

        async def body(idle: Watchdog) -> None:
            out = b"".join(translator.event(event) for event, _, _ in opened.events)
            if out:
                await send(out)
            async for chunk in opened.chunks:
                idle.touch()
                out = b"".join(translator.event(event) for event in opened.decoder.feed(chunk))
                if out:
                    await send(out)
            out = b"".join(translator.event(event) for event in opened.decoder.flush())
            await send(out + translator.end())

        await self._guarded(opened, body, send)
