"""Time, injected.

Everything in the gateway that waits on time takes a :class:`Clock`. Production uses
:class:`RealClock`; tests use :class:`ManualClock`, whose named timers can be awaited
("trapped") and fired by advancing time, so no test sleeps for real.

The manual clock is thread-safe: a test may drive it from its own thread or event loop
while the gateway under test runs on another loop in a background thread. Callbacks and
wake-ups are always delivered on the loop that armed them.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol


class TimerHandle(Protocol):
    def cancel(self) -> None: ...

    @property
    def name(self) -> str: ...


class Clock(Protocol):
    """What the gateway needs from time."""

    def now(self) -> float:
        """Wall-clock time, seconds since the epoch."""
        ...

    def monotonic(self) -> float:
        """A monotonic reading in seconds, for durations."""
        ...

    async def sleep(self, seconds: float, *, name: str = "sleep") -> None:
        """Wait ``seconds``; ``name`` lets tests find the wait."""
        ...

    def call_later(self, seconds: float, callback: Callable[[], None], *, name: str) -> TimerHandle:
        """Run ``callback`` on the current event loop after ``seconds`` (a named timer)."""
        ...


class _RealTimer:
    __slots__ = ("_handle", "_name")

    def __init__(self, handle: asyncio.TimerHandle, name: str) -> None:
        self._handle = handle
        self._name = name

    @property
    def name(self) -> str:
        return self._name

    def cancel(self) -> None:
        self._handle.cancel()


class RealClock:
    """The system clock and the running event loop's timers."""

    def now(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float, *, name: str = "sleep") -> None:
        await asyncio.sleep(max(0.0, seconds))

    def call_later(self, seconds: float, callback: Callable[[], None], *, name: str) -> TimerHandle:
        loop = asyncio.get_running_loop()
        return _RealTimer(loop.call_later(max(0.0, seconds), callback), name)


@dataclass(eq=False)
class ManualTimer:
    """A timer armed on a :class:`ManualClock`."""

    clock: ManualClock
    name: str
    deadline: float
    callback: Callable[[], None]
    loop: asyncio.AbstractEventLoop
    seq: int
    cancelled: bool = False
    fired: bool = False
    armed_at: float = field(default=0.0)

    def cancel(self) -> None:
        self.clock._cancel(self)


class ManualClock:
    """A clock that moves only when told to.

    ``advance(seconds)`` moves time forward and fires every timer that became due, in
    deadline order. ``wait_for_timer(name)`` waits (with a real-time deadline) until a
    timer of that name is armed: the "trap" that lets a test know the code under test
    reached the point where it waits.
    """

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self._now = start
        self._mono = 0.0
        self._lock = threading.Lock()
        self._timers: list[ManualTimer] = []
        self._seq = itertools.count()
        self._history: list[tuple[str, str]] = []  # (name, "armed"|"fired"|"cancelled")
        self._changed = threading.Condition(self._lock)

    # -- Clock protocol --------------------------------------------------------------
    def now(self) -> float:
        with self._lock:
            return self._now

    def monotonic(self) -> float:
        with self._lock:
            return self._mono

    async def sleep(self, seconds: float, *, name: str = "sleep") -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()

        def wake() -> None:
            if not done.done():
                done.set_result(None)

        timer = self.call_later(seconds, wake, name=name)
        try:
            await done
        finally:
            timer.cancel()

    def call_later(self, seconds: float, callback: Callable[[], None], *, name: str) -> ManualTimer:
        loop = asyncio.get_running_loop()
        with self._lock:
            timer = ManualTimer(
                clock=self,
                name=name,
                deadline=self._mono + max(0.0, seconds),
                callback=callback,
                loop=loop,
                seq=next(self._seq),
                armed_at=self._mono,
            )
            self._timers.append(timer)
            self._history.append((name, "armed"))
            self._changed.notify_all()
        return timer

    # -- test controls ---------------------------------------------------------------
    def advance(self, seconds: float) -> list[str]:
        """Move time forward; fire due timers. Returns the names of the timers fired."""
        with self._lock:
            target = self._mono + seconds
            fired: list[ManualTimer] = []
            while True:
                due = [t for t in self._timers if t.deadline <= target]
                if not due:
                    break
                due.sort(key=lambda t: (t.deadline, t.seq))
                timer = due[0]
                self._timers.remove(timer)
                self._now += timer.deadline - self._mono
                self._mono = timer.deadline
                timer.fired = True
                self._history.append((timer.name, "fired"))
                fired.append(timer)
            self._now += target - self._mono
            self._mono = target
            self._changed.notify_all()
        for timer in fired:
            if timer.loop.is_closed():
                continue
            timer.loop.call_soon_threadsafe(timer.callback)
        return [t.name for t in fired]

    def pending(self, name: str | None = None) -> list[ManualTimer]:
        with self._lock:
            return [t for t in self._timers if name is None or t.name == name]

    def history(self, name: str | None = None) -> list[str]:
        """Events seen for timers (of ``name``): "armed", "fired", "cancelled"."""
        with self._lock:
            return [event for n, event in self._history if name is None or n == name]

    async def wait_for_timer(self, name: str, *, timeout: float = 10.0) -> ManualTimer:
        """Wait until a timer called ``name`` is pending (polls with a real deadline)."""
        deadline = time.monotonic() + timeout
        while True:
            timers = self.pending(name)
            if timers:
                return timers[0]
            if time.monotonic() > deadline:
                raise TimeoutError(f"no timer named {name!r} was armed within {timeout}s")
            await asyncio.sleep(0.005)

    def wait_for_timer_blocking(self, name: str, *, timeout: float = 10.0) -> ManualTimer:
        """:meth:`wait_for_timer` for a test thread that has no event loop of its own."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                for timer in self._timers:
                    if timer.name == name:
                        return timer
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"no timer named {name!r} was armed within {timeout}s")
                self._changed.wait(left)

    def fire(self, name: str, *, timeout: float = 10.0) -> ManualTimer:
        """Wait until a timer called ``name`` is armed, then advance exactly to its deadline."""
        timer = self.wait_for_timer_blocking(name, timeout=timeout)
        self.advance(max(0.0, timer.deadline - self.monotonic()))
        return timer

    def fire_until(self, name: str, done: Callable[[], bool], *, timeout: float = 10.0) -> int:
        """Fire the timer called ``name`` each time it is armed, until ``done()``: for a timer that
        re-arms itself when activity comes after the clock moved (an idle watchdog whose stream
        still had a chunk on the way). Returns how many times it fired; raises TimeoutError when
        ``done()`` is still false after ``timeout`` seconds of real time."""
        deadline = time.monotonic() + timeout
        fired = 0
        while not done():
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"still not done after firing {name!r} {fired} times in {timeout}s")
            try:
                self.fire(name, timeout=min(left, 0.05))
            except TimeoutError:
                continue
            fired += 1
        return fired

    def _cancel(self, timer: ManualTimer) -> None:
        with self._lock:
            if timer in self._timers:
                self._timers.remove(timer)
                timer.cancelled = True
                self._history.append((timer.name, "cancelled"))
                self._changed.notify_all()


# -- watchdogs --------------------------------------------------------------------------------
# Timers that cancel a task when an upstream goes quiet: the startup guard and the idle timer.
#
# Both are named timers on the injected clock, so tests trap them (``wait_for_timer``) and fire
# them (``advance``) without waiting. The idle watchdog is re-armed lazily: a chunk only stores a
# timestamp, and the timer, when it fires early, re-arms itself for the remainder. That keeps
# the per-chunk cost of the relay to one clock read.

STARTUP_GUARD = "startup_guard"
STREAM_IDLE = "stream_idle"
REQUEST_TIMEOUT = "request_timeout"


class QuietTimer:
    """Calls :meth:`_quiet` once :attr:`interval` seconds pass without :meth:`touch`. A touch only
    stores the time; the timer, when it fires early, re-arms itself for the remainder."""

    __slots__ = ("_clock", "_handle", "_last", "_name", "interval")

    def __init__(self, clock: Clock, interval: float, *, name: str) -> None:
        self._clock = clock
        self.interval = interval
        self._name = name
        self._last = clock.monotonic()
        self._handle: TimerHandle | None = clock.call_later(interval, self._check, name=name)

    def touch(self) -> None:
        self._last = self._clock.monotonic()

    def _check(self) -> None:
        if self._handle is None:
            return
        quiet = self._clock.monotonic() - self._last
        still = self._quiet(quiet) if quiet >= self.interval else quiet
        if still is None:
            self._handle = None
            return
        self._handle = self._clock.call_later(self.interval - still, self._check, name=self._name)

    def _quiet(self, quiet: float) -> float | None:
        """The time went by quietly (``quiet`` seconds): how long it has been quiet now, from
        which the timer re-arms, or None to stop."""
        raise NotImplementedError

    def _disarm(self) -> None:
        handle, self._handle = self._handle, None
        if handle is not None:
            handle.cancel()


class Watchdog(QuietTimer):
    """Cancels ``task`` once ``timeout`` seconds pass without :meth:`touch`."""

    __slots__ = ("_task", "fired")

    def __init__(
        self, clock: Clock, timeout: float, *, name: str, task: asyncio.Task[object] | None = None
    ) -> None:
        current = task or asyncio.current_task()
        assert current is not None
        self._task: asyncio.Task[object] = current
        self.fired = False
        super().__init__(clock, timeout, name=name)

    def _quiet(self, quiet: float) -> None:
        self.fired = True
        self._task.cancel()
        return None

    def cancel(self) -> None:
        """Disarm. Returns nothing; check :attr:`fired` to learn whether it went off."""
        self._disarm()

    def absorb(self) -> bool:
        """After a CancelledError: True (and the cancellation undone) if this watchdog caused it."""
        if self.fired:
            self._task.uncancel()
            return True
        return False
