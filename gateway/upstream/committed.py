"""The one guard every post-commit relay runs under.

Whatever a relay does with the bytes (pass them through, translate them, record the answer),
the same failures end it the same way: an in-band failure the relay classified
(:class:`StreamFailure`), an upstream that ended before its terminal event
(:class:`StreamTruncated`) or broke (an httpx error), and a silence longer than the idle timeout
(a named ``stream_idle`` timer on the injected clock). Each becomes the relay's own error frames;
the upstream response is always closed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Protocol

import httpx

from gateway.clock import STREAM_IDLE, Clock, Watchdog
from gateway.errors import ClassifiedError, stream_idle_timeout_error, stream_truncated_error
from gateway.pricing import Usage
from gateway.upstream.call import OpenedStream
from gateway.upstream.stream_errors import StreamFailure, StreamTruncated

__all__ = ["Relay", "SendChunk", "StreamFailure", "StreamTruncated", "run_committed"]

SendChunk = Callable[[bytes], Awaitable[None]]


class Relay(Protocol):
    """Moves one committed stream to the client in the client's dialect.

    After :meth:`run`, ``failure`` is the classified failure that ended the stream (None for a
    clean end), ``usage`` what the upstream reported (None when it reported nothing or nobody
    asked), ``model`` the upstream's own model name when the stream told it.
    """

    failure: ClassifiedError | None
    # Set before run(): a failure is kept in ``failure``, not sent, so that a rescue may be
    # tried first; ``release`` sends it (or a later failure put there) when none is.
    hold: bool

    @property
    def usage(self) -> Usage | None: ...

    @property
    def model(self) -> str | None: ...

    async def run(self, opened: OpenedStream, send: SendChunk) -> None: ...

    async def release(self, send: SendChunk) -> None:
        """Send the error frames of ``failure``: after a held failure found no rescue."""
        ...


async def run_committed(
    opened: OpenedStream,
    body: Callable[[Watchdog], Awaitable[None]],
    fail: Callable[[ClassifiedError], Awaitable[None]],
    *,
    provider: str,
    clock: Clock,
    idle_timeout: float,
) -> None:
    """Run ``body`` (the relay loop, given the idle watchdog to touch) under the guard."""
    idle = Watchdog(clock, idle_timeout, name=STREAM_IDLE)
    try:
        try:
            await body(idle)
        except StreamTruncated:
            await fail(stream_truncated_error(provider))
        except StreamFailure as failed:
            await fail(failed.classified)
    except asyncio.CancelledError:
        if idle.absorb():
            await fail(stream_idle_timeout_error(provider, idle_seconds=idle_timeout))
            return
        raise
    except httpx.HTTPError:
        # A committed stream that breaks is a truncated answer, whatever broke it.
        await fail(stream_truncated_error(provider))
    finally:
        idle.cancel()
        await opened.aclose()
