"""The circuit breaker's state machine (the per-process mirror of its Lua script), the script
itself on a real Redis, and the per-process fallback when Redis is unreachable."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import redis.asyncio as aioredis

from gateway.clock import ManualClock
from gateway.config import BreakerSettings, settings_from_mapping
from gateway.errors import ErrorKind, build_error
from gateway.testing import free_port
from gateway.upstream.breaker import BREAKER_REFRESH, Breakers, Verdict, View, step

B = BreakerSettings(failures=3, window_seconds=60.0, cooldown_seconds=30.0)
OVERLOADED = build_error(ErrorKind.OVERLOADED, provider="openai", status_code=503, retryable=True)
REFUSED = build_error(ErrorKind.GENERIC, provider="openai", status_code=400, retryable=False)


def test_failures_in_a_row_within_the_window_open_it() -> None:
    view = View()
    assert [step(view, "fail", t, B, cooldown=30.0) for t in (0.0, 1.0)] == ["", ""]
    assert view.failures == 2
    assert step(view, "fail", 2.0, B, cooldown=30.0) == "opened"
    assert (view.state, view.open_until, view.failures) == ("open", 32.0, 0)


def test_a_success_or_the_window_resets_the_count() -> None:
    view = View()
    step(view, "fail", 0.0, B, cooldown=30.0)
    step(view, "ok", 1.0, B, cooldown=30.0)
    assert view.failures == 0
    step(view, "fail", 2.0, B, cooldown=30.0)
    step(view, "fail", 3.0, B, cooldown=30.0)
    assert step(view, "fail", 70.0, B, cooldown=30.0) == ""  # 68 s after the first: a new run
    assert (view.state, view.failures, view.first_at) == ("closed", 1, 70.0)


def test_one_probe_after_the_cooldown_closes_or_reopens() -> None:
    view = View()
    for t in (0.0, 1.0, 2.0):
        step(view, "fail", t, B, cooldown=45.0)  # a Retry-After of 45 s beats the cooldown
    assert view.open_until == 47.0
    assert step(view, "probe", 46.9, B, cooldown=30.0) == ""
    assert step(view, "probe", 47.0, B, cooldown=30.0) == "probe"
    assert step(view, "probe", 48.0, B, cooldown=30.0) == ""  # one at a time
    assert step(view, "fail", 49.0, B, cooldown=30.0) == "reopened"
    assert (view.state, view.open_until) == ("open", 79.0)
    assert step(view, "probe", 80.0, B, cooldown=30.0) == "probe"
    assert step(view, "ok", 81.0, B, cooldown=30.0) == "closed"
    assert (view.state, view.failures, view.probe_until) == ("closed", 0, 0.0)


def test_a_probe_that_never_reports_lets_another_through_after_a_cooldown() -> None:
    view = View(state="open", open_until=10.0)
    assert step(view, "probe", 10.0, B, cooldown=30.0) == "probe"
    assert step(view, "probe", 39.9, B, cooldown=30.0) == ""
    assert step(view, "probe", 40.0, B, cooldown=30.0) == "probe"


def test_a_health_check_ends_the_cooldown() -> None:
    view = View(state="open", open_until=30.0)
    assert step(view, "heal", 5.0, B, cooldown=30.0) == "healed"
    assert step(view, "probe", 5.0, B, cooldown=30.0) == "probe"


def _settings(redis_url: str = "redis://127.0.0.1:1/0") -> Any:
    return settings_from_mapping(
        {
            "redis": {"url": redis_url},
            "providers": [
                {
                    "name": "p",
                    "kind": "openai",
                    "base_url": "http://127.0.0.1:1",
                    "breaker": {"failures": 2, "cooldown_seconds": 30.0},
                }
            ],
            "models": [{"name": "m", "provider": "p", "upstream_model": "up"}],
        }
    )


async def test_without_redis_the_breaker_works_on_the_process_view() -> None:
    clock = ManualClock()
    breakers = Breakers(_settings(), clock)
    assert breakers.verdict("p", "up") is Verdict.ALLOW
    breakers.failed("p", "up", REFUSED)  # not retryable: does not count
    breakers.failed("p", "up", OVERLOADED)
    breakers.failed("p", "up", OVERLOADED)
    assert breakers.verdict("p", "up") is Verdict.SKIP
    assert breakers.retry_in([("p", "up")]) == 30.0
    clock.advance(30.0)
    assert breakers.verdict("p", "up") is Verdict.PROBE
    assert await breakers.claim("p", "up") is True
    assert await breakers.claim("p", "up") is False
    breakers.succeeded("p", "up")
    assert breakers.verdict("p", "up") is Verdict.ALLOW
    assert breakers.verdict("other", "model") is Verdict.ALLOW  # no breaker: always tried


async def test_redis_unreachable_degrades_to_the_process_view() -> None:
    clock = ManualClock()
    client = aioredis.Redis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=1)
    breakers = Breakers(_settings(), clock, redis=client)
    try:
        await breakers.start()
        await clock.wait_for_timer(BREAKER_REFRESH)  # the first refresh failed
        assert breakers.degraded
        breakers.failed("p", "up", OVERLOADED)
        breakers.failed("p", "up", OVERLOADED)
        assert breakers.verdict("p", "up") is Verdict.SKIP
        clock.advance(30.0)
        assert await breakers.claim("p", "up") is True  # decided here, without Redis
    finally:
        await breakers.stop()
        await client.aclose()


async def test_the_script_on_redis_is_the_state_machine(redis_url: str) -> None:
    clock = ManualClock()
    settings = _settings(redis_url)
    client = aioredis.Redis.from_url(redis_url)
    one = Breakers(settings, clock, redis=client)
    other = Breakers(settings, clock, redis=client)
    try:
        one.failed("p", "up", OVERLOADED)
        one.failed("p", "up", OVERLOADED)
        await one.flush()  # the writes are fire and forget
        assert await client.hget(f"{settings.redis.key_prefix}breaker:{{cb:p/up}}", "state") == b"open"
        assert other.verdict("p", "up") is Verdict.ALLOW  # not read yet
        await other.refresh()
        assert other.verdict("p", "up") is Verdict.SKIP
        clock.advance(30.0)
        claims = await asyncio.gather(one.claim("p", "up"), other.claim("p", "up"))
        assert sorted(claims) == [False, True]  # exactly one probe
        ttl = await client.pttl(f"{settings.redis.key_prefix}breaker:{{cb:p/up}}")
        assert 0 < ttl <= 120_000
    finally:
        await one.stop()
        await other.stop()
        await client.delete(f"{settings.redis.key_prefix}breaker:{{cb:p/up}}")
        await client.aclose()


class HeldReplies:
    """The real client, but a pipeline's replies, once read, wait for ``release`` before they
    are returned: a refresh that read Redis before a write and is answered after it."""

    def __init__(self, client: aioredis.Redis) -> None:
        self._client = client
        self.read = asyncio.Event()
        self.release = asyncio.Event()

    def pipeline(self, transaction: bool = False) -> Any:
        pipe = self._client.pipeline(transaction=transaction)
        execute = pipe.execute

        async def held(*args: Any, **kwargs: Any) -> Any:
            replies = await execute(*args, **kwargs)
            self.read.set()
            await self.release.wait()
            return replies

        pipe.execute = held  # type: ignore[method-assign]
        return pipe

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


async def test_a_refresh_read_before_a_write_does_not_undo_it(redis_url: str) -> None:
    clock = ManualClock()
    settings = _settings(redis_url)
    client = aioredis.Redis.from_url(redis_url)
    held = HeldReplies(client)
    breakers = Breakers(settings, clock, redis=held)
    try:
        refresh = asyncio.create_task(breakers.refresh())
        await held.read.wait()  # it read the breaker closed
        breakers.failed("p", "up", OVERLOADED)
        breakers.failed("p", "up", OVERLOADED)
        await breakers.flush()
        assert await client.hget(f"{settings.redis.key_prefix}breaker:{{cb:p/up}}", "state") == b"open"
        held.release.set()
        await refresh
        assert breakers.verdict("p", "up") is Verdict.SKIP  # still open, as Redis holds it
        await breakers.refresh()  # a read after the write agrees
        assert breakers.verdict("p", "up") is Verdict.SKIP
    finally:
        await client.delete(f"{settings.redis.key_prefix}breaker:{{cb:p/up}}")
        await client.aclose()


class SlowFirstAnswer:
    """The real client; the first script's answer comes a few loop turns late, and what is sent
    and answered is logged."""

    def __init__(self, client: aioredis.Redis) -> None:
        self._client = client
        self.log: list[str] = []

    async def evalsha(self, *args: Any) -> Any:
        n = sum(entry.startswith("sent") for entry in self.log)
        self.log.append(f"sent {n}")
        reply = await self._client.evalsha(*args)
        if n == 0:
            for _ in range(5):
                await asyncio.sleep(0)
        self.log.append(f"answered {n}")
        return reply

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


async def test_a_process_sends_its_changes_one_after_the_other(redis_url: str) -> None:
    """Two failures in quick succession: the second is sent once the first is answered, so the
    answers are applied in the order Redis applied the changes (the second's says open)."""
    settings = _settings(redis_url)
    client = aioredis.Redis.from_url(redis_url)
    slow = SlowFirstAnswer(client)
    breakers = Breakers(settings, ManualClock(), redis=slow)
    try:
        breakers.failed("p", "up", OVERLOADED)
        breakers.failed("p", "up", OVERLOADED)
        await breakers.flush()
        assert slow.log == ["sent 0", "answered 0", "sent 1", "answered 1"]
        assert breakers.verdict("p", "up") is Verdict.SKIP
        assert await client.hget(f"{settings.redis.key_prefix}breaker:{{cb:p/up}}", "state") == b"open"
    finally:
        await client.delete(f"{settings.redis.key_prefix}breaker:{{cb:p/up}}")
        await client.aclose()


@pytest.mark.parametrize("bad", [{"failures": 0}, {"cooldown_seconds": 0}, {"health_check_seconds": -1}])
def test_breaker_settings_are_checked_with_their_key_path(bad: dict[str, Any]) -> None:
    from gateway.config import ConfigError

    with pytest.raises(ConfigError) as info:
        settings_from_mapping(
            {
                "providers": [{"name": "p", "kind": "openai", "base_url": "http://x", "breaker": bad}],
                "models": [],
            }
        )
    assert f"providers[0].breaker.{next(iter(bad))}" in str(info.value)
