"""Timers that cancel a task when an upstream goes quiet: the startup guard and the idle timer.

Both are named timers on the injected clock, so tests trap them (``wait_for_timer``) and fire
them (``advance``) without waiting. The idle watchdog is re-armed lazily: a chunk only stores a
timestamp, and the timer, when it fires early, re-arms itself for the remainder. That keeps
the per-chunk cost of the relay to one clock read.
"""

from __future__ import annotations

import asyncio

from gateway.clock import Clock, TimerHandle

STARTUP_GUARD = "startup_guard"
STREAM_IDLE = "stream_idle"
REQUEST_TIMEOUT = "request_timeout"


class Watchdog:
    """Cancels ``task`` once ``timeout`` seconds pass without :meth:`touch`."""

    __slots__ = ("_clock", "_handle", "_last", "_name", "_task", "_timeout", "fired")

    def __init__(
        self, clock: Clock, timeout: float, *, name: str, task: asyncio.Task[object] | None = None
    ) -> None:
        self._clock = clock
        self._timeout = timeout
        self._name = name
        current = task or asyncio.current_task()
        assert current is not None
        self._task: asyncio.Task[object] = current
        self._last = clock.monotonic()
        self.fired = False
        self._handle: TimerHandle | None = clock.call_later(timeout, self._check, name=name)

    def touch(self) -> None:
        self._last = self._clock.monotonic()

    def _check(self) -> None:
        if self._handle is None:
            return
        quiet = self._clock.monotonic() - self._last
        if quiet < self._timeout:
            self._handle = self._clock.call_later(self._timeout - quiet, self._check, name=self._name)
            return
        self._handle = None
        self.fired = True
        self._task.cancel()

    def cancel(self) -> None:
        """Disarm. Returns nothing; check :attr:`fired` to learn whether it went off."""
        handle, self._handle = self._handle, None
        if handle is not None:
            handle.cancel()

    def absorb(self) -> bool:
        """After a CancelledError: True (and the cancellation undone) if this watchdog caused it."""
        if self.fired:
            self._task.uncancel()
            return True
        return False
