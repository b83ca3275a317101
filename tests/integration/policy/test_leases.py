"""Concurrency leases and budget holds: released on every exit, renewed while running, and
expired by themselves when nobody releases them. Every check reads what Redis holds."""

from __future__ import annotations

import concurrent.futures
from typing import Any

import httpx
import msgspec
import redis

from gateway.testing import redis_server
from tests.conftest import GatewayFactory, base_config
from tests.integration.policy.test_policy import MSG, admin, chat, config, poll

DAY_BUDGET = [{"window": "day", "limit_usd": 10.0}]
LIMITED = "sk-test-limited-key-0001"


class Names:
    """The Redis keys of one admin-created key (no team, so the key is its own root)."""

    def __init__(self, gw: Any, kid: str) -> None:
        p = gw.settings.redis.key_prefix
        self.leases = f"{p}{{k:{kid}}}:cc:key:{kid}"
        self.holds = f"{p}{{k:{kid}}}:holds:key:{kid}"
        self.usage = f"{p}usage"


def make_key(gw: Any, **body: Any) -> tuple[str, Names]:
    created = admin(gw, "POST", "/keys", body).json()
    return created["key"], Names(gw, created["id"])


def events(r: redis.Redis, names: Names) -> list[dict[str, Any]]:
    return [msgspec.json.decode(f[b"e"]) for _, f in r.xrange(names.usage)]


def now_ms(gw: Any) -> int:
    return int(gw.clock.now() * 1000)


def released(r: redis.Redis, names: Names) -> bool:
    """Nothing left: an empty sorted set is deleted by Redis, so the keys must be gone."""
    return r.exists(names.leases, names.holds) == 0


def test_client_disconnect_mid_stream_releases_lease_and_hold(
    gateway_factory: GatewayFactory, fake: Any, redis_url: str, redis_sync: redis.Redis
) -> None:
    gw = gateway_factory(config(fake, redis_url))
    secret, names = make_key(gw, limits={"max_concurrency": 1}, budgets=DAY_BUDGET)
    fake.script([{"fault": "stall-3", "times": 1}], model="gpt-4o-mini")
    body = {"model": "gpt-4o-mini", "messages": MSG, "stream": True, "max_tokens": 10}
    headers = {"authorization": f"Bearer {secret}"}
    with (
        httpx.Client(timeout=10) as http,
        http.stream("POST", gw.base_url + "/chat/completions", json=body, headers=headers) as response,
    ):
        assert response.status_code == 200
        request_id = response.headers["x-request-id"]
        chunks = response.iter_raw()  # kept: a dropped generator would close the response
        next(chunks)  # the stream is under way; the client leaves below
        leases = redis_sync.zrange(names.leases, 0, -1, withscores=True)
        assert leases == [(request_id.encode(), float(now_ms(gw) + 120_000))]
        holds = redis_sync.zrange(names.holds, 0, -1)
        assert len(holds) == 1 and holds[0].startswith(f"{request_id}:".encode())
        inflight = 'gw_inflight_requests{route="/v1/chat/completions"}'
        assert f"{inflight} 1.0" in httpx.get(gw.root_url + "/metrics").text
        # Only one request may run at a time: a second one is refused while this one streams.
        refused = chat(gw, secret)
        assert refused.status_code == 429
        assert refused.json()["error"]["code"] == "concurrency_limit_exceeded"
    poll(lambda: released(redis_sync, names))
    poll(lambda: f"{inflight} 0.0" in httpx.get(gw.root_url + "/metrics").text)
    ev = poll(lambda: [e for e in events(redis_sync, names) if e["request_id"] == request_id])
    assert (ev[0]["status"], ev[0]["error_type"], ev[0]["stream"]) == (499, "client_disconnect", True)
    assert chat(gw, secret).status_code == 200  # the key is not locked


def test_silent_upstream_releases_lease_and_hold_after_the_startup_guard(
    gateway_factory: GatewayFactory, fake: Any, redis_url: str, redis_sync: redis.Redis
) -> None:
    cfg = config(fake, redis_url)
    cfg["providers"][0]["retry"] = {"max_attempts": 1, "initial_delay": 0.0, "max_delay": 0.0}
    gw = gateway_factory(cfg)
    secret, names = make_key(gw, limits={"max_concurrency": 1}, budgets=DAY_BUDGET)
    fake.script([{"fault": "silence", "times": 1}], model="gpt-4o-mini")
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        future = pool.submit(chat, gw, secret, stream=True, max_tokens=10)
        gw.clock.wait_for_timer_blocking("startup_guard")
        assert redis_sync.zcard(names.leases) == 1 and redis_sync.zcard(names.holds) == 1
        gw.clock.fire("startup_guard")
        response = future.result(timeout=10)
    assert response.status_code == 504
    assert response.json()["error"]["code"] == "upstream_startup_timeout"
    poll(lambda: released(redis_sync, names))
    ev = poll(lambda: events(redis_sync, names))
    assert (ev[0]["status"], ev[0]["error_type"]) == (504, "upstream")
    assert "cost_nusd" not in ev[0] and "input_tokens" not in ev[0]  # nothing reported, nothing billed
    assert chat(gw, secret).status_code == 200


def test_orphaned_lease_and_hold_expire_after_their_ttl(
    gateway_factory: GatewayFactory, fake: Any, redis_url: str, redis_sync: redis.Redis
) -> None:
    """A replica that dies mid-request never settles: its lease and hold count until the TTL."""
    gw = gateway_factory(config(fake, redis_url, lease_ttl_seconds=30))
    secret, names = make_key(gw, limits={"max_concurrency": 1}, budgets=DAY_BUDGET)
    expiry = now_ms(gw) + 30_000
    redis_sync.zadd(names.leases, {"crashed": expiry})
    redis_sync.zadd(names.holds, {"crashed:9000000000": expiry})  # $9 of the $10 held
    refused = chat(gw, secret)
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "concurrency_limit_exceeded"
    gw.clock.advance(30.001)
    assert chat(gw, secret, max_tokens=10).status_code == 200
    poll(lambda: released(redis_sync, names))


def test_orphaned_hold_counts_against_the_budget_until_it_expires(
    gateway_factory: GatewayFactory, fake: Any, redis_url: str, redis_sync: redis.Redis
) -> None:
    gw = gateway_factory(config(fake, redis_url, lease_ttl_seconds=30))
    secret, names = make_key(gw, budgets=DAY_BUDGET)
    redis_sync.zadd(names.holds, {"crashed:10000000000": now_ms(gw) + 30_000})  # all $10 held
    refused = chat(gw, secret, max_tokens=10)
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "insufficient_quota"
    gw.clock.advance(30.001)
    assert chat(gw, secret, max_tokens=10).status_code == 200
    poll(lambda: released(redis_sync, names))


def test_a_long_stream_renews_its_lease_and_hold(
    gateway_factory: GatewayFactory, fake: Any, redis_url: str, redis_sync: redis.Redis
) -> None:
    gw = gateway_factory(config(fake, redis_url, lease_ttl_seconds=40))
    secret, names = make_key(gw, limits={"max_concurrency": 1}, budgets=DAY_BUDGET)
    fake.script([{"fault": "stall-3", "times": 1}], model="gpt-4o-mini")
    body = {"model": "gpt-4o-mini", "messages": MSG, "stream": True, "max_tokens": 10}
    headers = {"authorization": f"Bearer {secret}"}
    start = now_ms(gw)
    with (
        httpx.Client(timeout=10) as http,
        http.stream("POST", gw.base_url + "/chat/completions", json=body, headers=headers) as response,
    ):
        request_id = response.headers["x-request-id"].encode()
        chunks = response.iter_raw()
        next(chunks)
        timer = gw.clock.wait_for_timer_blocking("policy_lease_renew")
        assert timer.deadline - timer.armed_at == 10.0  # a quarter of the TTL
        assert redis_sync.zscore(names.leases, request_id) == start + 40_000
        gw.clock.advance(10.0)
        poll(lambda: redis_sync.zscore(names.leases, request_id) == start + 50_000)
        hold = redis_sync.zrange(names.holds, 0, -1, withscores=True)
        assert [score for _, score in hold] == [start + 50_000]
        # The renewal re-arms itself once its round trip is done: wait for that before moving on.
        gw.clock.wait_for_timer_blocking("policy_lease_renew")
        # Past the first expiry (start + 40 s) the lease still counts.
        gw.clock.advance(35.0)
        poll(lambda: redis_sync.zscore(names.leases, request_id) == start + 85_000)
        refused = chat(gw, secret)
        assert refused.status_code == 429
        assert refused.json()["error"]["code"] == "concurrency_limit_exceeded"
    poll(lambda: released(redis_sync, names))
    assert chat(gw, secret).status_code == 200


def test_store_down_fails_open_when_configured(gateway_factory: GatewayFactory, fake: Any) -> None:
    with redis_server() as server:
        cfg = base_config(fake, server.url)
        cfg["auth"]["keys"].append({"name": "limited", "key": LIMITED, "limits": {"rpm": 100}})
        cfg["policy"] = {"time_source": "clock", "on_store_error": "open"}
        gw = gateway_factory(cfg)
        ok = chat(gw, LIMITED)
        assert ok.status_code == 200
        assert ok.headers["x-ratelimit-remaining-requests"] == "99"
        usage = f"{gw.settings.redis.key_prefix}usage"
        with redis.Redis.from_url(server.url) as r:
            poll(lambda: r.xlen(usage) == 1)
        server.stop()
        admitted = chat(gw, LIMITED)
        assert admitted.status_code == 200
        assert "x-ratelimit-limit-requests" not in admitted.headers  # admitted without limits
        metrics = httpx.get(gw.root_url + "/metrics").text
        assert 'gw_policy_store_errors_total{decision="open"} 1.0' in metrics
        assert 'gw_policy_store_errors_total{decision="closed"} 0.0' in metrics
        # Its usage could not be written either; that is counted, not retried forever.
        poll(lambda: "gw_usage_write_failures_total 1.0" in httpx.get(gw.root_url + "/metrics").text)
