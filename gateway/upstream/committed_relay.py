"""What every dialect's post-commit relay keeps the same: the failure that ended its stream.

A relay's failure (classified by :func:`gateway.upstream.committed.run_committed` or by the
relay itself) is kept in ``failure`` and sent as the client's error frames, unless ``hold`` asks
to keep it back for a rescue; :meth:`CommittedRelay.release` then sends it. The relays differ
only in what they do with the bytes (:class:`~gateway.upstream.relay.PassthroughRelay`,
:class:`~gateway.upstream.translating_relay.TranslatingRelay`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from gateway.clock import Clock, Watchdog
from gateway.errors import ClassifiedError
from gateway.upstream.call import OpenedStream
from gateway.upstream.committed import SendChunk, run_committed

ErrorFrames = Callable[[ClassifiedError], bytes]


class CommittedRelay:
    """The failure, ``hold`` and :meth:`release` of a :class:`~gateway.upstream.committed.Relay`,
    and its loop run under the post-commit guard (:meth:`_guarded`)."""

    def __init__(
        self, *, error_frames: ErrorFrames, provider: str, clock: Clock, idle_timeout: float
    ) -> None:
        self._error_frames = error_frames
        self._provider = provider
        self._clock = clock
        self._idle_timeout = idle_timeout
        self.failure: ClassifiedError | None = None
        self.hold = False

    async def _guarded(
        self, opened: OpenedStream, body: Callable[[Watchdog], Awaitable[None]], send: SendChunk
    ) -> None:
        """Run the relay loop ``body`` under the guard; what ends it is :meth:`_fail`."""

        async def fail(failure: ClassifiedError) -> None:
            await self._fail(failure, send)

        await run_committed(
            opened, body, fail, provider=self._provider, clock=self._clock, idle_timeout=self._idle_timeout
        )

    async def _fail(self, failure: ClassifiedError, send: SendChunk) -> None:
        self.failure = failure
        if not self.hold:
            await send(self._error_frames(failure))

    async def release(self, send: SendChunk) -> None:
        if self.failure is not None:
            await send(self._error_frames(self.failure))
