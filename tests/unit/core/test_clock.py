"""The manual clock: named timers, advancing time, traps, and thread safety."""

from __future__ import annotations

import asyncio
import threading

import pytest

from gateway.clock import ManualClock, Watchdog


async def test_sleep_wakes_only_when_time_reaches_it() -> None:
    clock = ManualClock(start=1000.0)
    task = asyncio.ensure_future(clock.sleep(5.0, name="nap"))
    timer = await clock.wait_for_timer("nap")
    assert timer.deadline == 5.0
    assert clock.advance(4.9) == []
    await asyncio.sleep(0)
    assert not task.done()
    assert clock.advance(0.1) == ["nap"]
    await asyncio.wait_for(task, 1)
    assert clock.now() == pytest.approx(1005.0)
    assert clock.monotonic() == pytest.approx(5.0)
    assert clock.history("nap") == ["armed", "fired"]


async def test_timers_fire_in_deadline_order_and_cancelled_ones_never() -> None:
    clock = ManualClock()
    fired: list[str] = []
    clock.call_later(3, lambda: fired.append("c"), name="c")
    clock.call_later(1, lambda: fired.append("a"), name="a")
    b = clock.call_later(2, lambda: fired.append("b"), name="b")
    b.cancel()
    assert clock.advance(10) == ["a", "c"]
    await asyncio.sleep(0)
    assert fired == ["a", "c"]
    assert clock.history("b") == ["armed", "cancelled"]


async def test_advance_from_another_thread_delivers_on_the_arming_loop() -> None:
    clock = ManualClock()
    loop = asyncio.get_running_loop()
    seen: list[bool] = []
    done = asyncio.Event()

    def callback() -> None:
        seen.append(asyncio.get_running_loop() is loop)
        done.set()

    clock.call_later(1, callback, name="t")
    thread = threading.Thread(target=clock.fire, args=("t",))
    thread.start()
    await asyncio.wait_for(done.wait(), 2)
    thread.join()
    assert seen == [True]


def test_wait_for_timer_blocking_times_out() -> None:
    with pytest.raises(TimeoutError, match="no timer named 'x'"):
        ManualClock().wait_for_timer_blocking("x", timeout=0.05)


async def test_fire_until_fires_a_watchdog_again_when_activity_came_after_the_clock_moved() -> None:
    clock = ManualClock()
    victim = asyncio.ensure_future(asyncio.sleep(3600))
    watchdog = Watchdog(clock, 30.0, name="idle", task=victim)  # type: ignore[arg-type]
    first = await clock.wait_for_timer("idle")
    clock.advance(first.deadline - clock.monotonic())
    watchdog.touch()  # a chunk that was on its way when the clock moved
    await asyncio.sleep(0)
    assert not victim.done() and clock.pending("idle")  # re-armed for a new window
    fired = await asyncio.to_thread(clock.fire_until, "idle", victim.done, timeout=5)
    assert fired == 1 and victim.cancelled() and watchdog.fired
    assert clock.history("idle") == ["armed", "fired", "armed", "fired"]


def test_fire_until_times_out_when_nothing_ends() -> None:
    with pytest.raises(TimeoutError, match="still not done after firing 'x' 0 times"):
        ManualClock().fire_until("x", lambda: False, timeout=0.1)
