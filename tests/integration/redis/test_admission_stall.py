"""Admission while Redis stalls: two replicas on a private redis-server that is paused (SIGSTOP)
for longer than the command timeout, then resumed (SIGCONT).

Admissions go over the shared connection (gateway/redis/multiplexed.py), whose command timeout
is a timer on the gateway's manual clock: while Redis is paused, each replica's admission timer
is fired as soon as it is armed (the settlement connection's is not: its batches wait for Redis
to resume).

An admission sent just before the pause times out on the gateway, but its script is still in
Redis's socket buffer and runs when Redis resumes: without a release it would write a
concurrency lease nobody settles. Every admission that timed out is followed by a release of
its request id (``release.lua``, which also leaves a marker that turns a later admission of
that id into a no-op), so the key's concurrency counters go back to 0.

With ``on_store_error = "open"`` only the first request of a replica waits for the timeout:
the others are let through at once until the retry interval (on the gateway's manual clock)
has passed. Counted, not timed: every admission that reached Redis and timed out leaves one
release marker, so the markers count the attempts.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import redis
import redis.asyncio as aioredis

from fake_providers.testing import FakeProviders
from gateway.clock import ManualClock
from gateway.policy.admission import RELEASE_RETRY, STORE_RETRY_SECONDS
from gateway.policy.store import PolicyStore
from gateway.redis.connection import ADMISSION_NAME
from gateway.redis.embedded import EmbeddedRedis
from gateway.redis.multiplexed import COMMAND_TIMER, CONNECT_TIMER, timer_name
from gateway.testing import AutoAdvance, RunningGateway, base_config, poll_until, redis_server, serve_gateway
from tests.integration.policy.test_policy import ADMIN, MSG

TIMEOUT = 0.5  # [redis] command_timeout_seconds
# The admission connection's timers: its command timeout, and its connect's.
ADMISSION_TIMERS = (timer_name(COMMAND_TIMER, ADMISSION_NAME), timer_name(CONNECT_TIMER, ADMISSION_NAME))
PER_REPLICA = 6  # requests each replica answers while Redis is paused
SLOTS = 24


@pytest.fixture
def stalled_redis() -> Iterator[EmbeddedRedis]:
    with redis_server() as server:
        yield server
        assert server._proc is not None
        os.kill(server._proc.pid, signal.SIGCONT)  # never leave it stopped


def _pid(server: EmbeddedRedis) -> int:
    assert server._proc is not None
    return server._proc.pid


def _chat(gw: RunningGateway[ManualClock], key: str) -> httpx.Response:
    return httpx.post(
        gw.base_url + "/chat/completions",
        headers={"authorization": f"Bearer {key}"},
        json={"model": "gpt-4o-mini", "messages": MSG},
        timeout=30,
    )


def _held(r: redis.Redis, prefix: str) -> int:
    """Concurrency slots held under the prefix (every lease set's size, summed)."""
    return sum(int(r.zcard(k)) for k in r.scan_iter(match=f"{prefix}*:cc:*"))


def _markers(r: redis.Redis, prefix: str) -> int:
    return sum(1 for _ in r.scan_iter(match=f"{prefix}*:gone:*"))


@pytest.mark.parametrize("on_store_error", ["open", "closed"])
def test_a_stall_leaks_no_slot_and_fail_open_waits_once(
    fake: FakeProviders, stalled_redis: EmbeddedRedis, on_store_error: str
) -> None:
    config: dict[str, Any] = base_config(fake, stalled_redis.url)
    config["redis"]["command_timeout_seconds"] = TIMEOUT
    config["admin"] = {"keys": [{"name": "ops", "key": ADMIN}]}
    config["policy"] = {"time_source": "clock", "on_store_error": on_store_error}
    prefix = config["redis"]["key_prefix"]
    with (
        serve_gateway(config, clock=ManualClock()) as a,
        serve_gateway(config, clock=ManualClock()) as b,
        redis.Redis.from_url(stalled_redis.url) as r,
    ):
        created = httpx.post(
            a.root_url + "/admin/v1/keys",
            headers={"authorization": f"Bearer {ADMIN}"},
            json={"alias": "stall", "limits": {"max_concurrency": SLOTS}},
        )
        assert created.status_code == 201, created.text
        key = created.json()["key"]
        for gw in (a, b):  # each replica caches the key and has admitted once
            assert _chat(gw, key).status_code == 200
        poll_until(lambda: _held(r, prefix) == 0, what="the warm-up settled")

        os.kill(_pid(stalled_redis), signal.SIGSTOP)
        try:
            per_request = PER_REPLICA if on_store_error == "open" else 2
            with AutoAdvance(a.clock, *ADMISSION_TIMERS), AutoAdvance(b.clock, *ADMISSION_TIMERS):
                answers = [_chat(gw, key).status_code for gw in (a, b) for _ in range(per_request)]
        finally:
            os.kill(_pid(stalled_redis), signal.SIGCONT)

        if on_store_error == "open":
            assert answers == [200] * (2 * PER_REPLICA)
        else:
            assert answers == [503] * 4
        # Redis ran the buffered admissions on resuming; the releases go once the retry
        # interval has passed on each replica's clock (one release per interval per replica).
        attempts = 2 if on_store_error == "open" else 4

        def released() -> bool:
            for gw in (a, b):
                gw.clock.advance(STORE_RETRY_SECONDS)
            return _markers(r, prefix) == attempts and not any(
                gw.clock.pending(RELEASE_RETRY) for gw in (a, b)
            )

        poll_until(released, what="one release per timed-out admission")
        # Open: one admission per replica reached Redis; the other requests did not wait on it.
        assert _markers(r, prefix) == attempts
        poll_until(lambda: _held(r, prefix) == 0, what="no concurrency slot held")
        # Redis is back: admitted normally again (the first request after the interval tries it).
        for gw in (a, b):
            assert _chat(gw, key).status_code == 200
        poll_until(lambda: _held(r, prefix) == 0, what="settled after the stall")


async def test_a_release_that_runs_first_makes_the_late_admission_a_no_op(redis_url: str) -> None:
    """The release and the buffered admission travel on different connections: whichever runs
    first, no slot stays held."""
    client = aioredis.Redis.from_url(redis_url)
    store = PolicyStore(client, "stall-order:", usage_maxlen=10, audit_maxlen=10)
    root, kid = "k:kid000000001", "kid000000001"
    leases = [store.leases(root, "key", kid), store.leases(root, "team", "-")]
    holds = [store.holds(root, "key", kid), store.holds(root, "team", "-")]

    def admit_call(request_id: str) -> tuple[list[str], list[Any]]:
        keys = [
            store.state(root),
            *(store.rl(root, "key", kid, k) for k in ("rpm", "tpm")),
            *(store.rl(root, "team", "-", k) for k in ("rpm", "tpm")),
            *leases,
            *holds,
            store.gone(root, request_id),
        ]
        # no state check for the key ("-"), concurrency 5, lease 60 s, no budgets
        args: list[Any] = ["1000000", request_id, kid, "", "-", 0, 0, 0, 0, 5, 0, 60000, 10, 0, 0]
        return keys, args

    try:
        # Released first: the admission that runs afterwards writes nothing.
        await store.release([store.gone(root, "req-a"), *leases, *holds], ["req-a", "", 60000])
        assert await store.admit(*admit_call("req-a")) == [-2]
        assert await client.zcard(leases[0]) == 0
        # Admitted first: the release removes its lease.
        assert (await store.admit(*admit_call("req-b")))[0] == 1
        assert await client.zcard(leases[0]) == 1
        await store.release([store.gone(root, "req-b"), *leases, *holds], ["req-b", "", 60000])
        assert await client.zcard(leases[0]) == 0
    finally:
        for name in await client.keys("stall-order:*"):
            await client.delete(name)
        await client.aclose()
