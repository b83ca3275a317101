"""Policy over real sockets: admin keys, revocation across instances, limits, budgets, usage."""

from __future__ import annotations

import concurrent.futures
import math
import threading
from typing import Any

import httpx
import msgspec
import pytest
import redis

from gateway.pricing import PriceTable
from gateway.testing import redis_server
from tests.conftest import GATEWAY_KEY, GatewayFactory, base_config, poll_until

ADMIN = "admin-key-0123456789abcdef"
MSG = [{"role": "user", "content": "hello"}]


def config(fake: Any, redis_url: str, **policy: Any) -> dict[str, Any]:
    cfg = base_config(fake, redis_url)
    cfg["admin"] = {"keys": [{"name": "ops", "key": ADMIN}]}
    cfg["policy"] = {"time_source": "clock", **policy}
    return cfg


def admin(gw: Any, method: str, path: str, body: object = None) -> httpx.Response:
    return httpx.request(
        method,
        gw.root_url + "/admin/v1" + path,
        headers={"authorization": f"Bearer {ADMIN}"},
        content=None if body is None else msgspec.json.encode(body),
    )


def chat(gw: Any, key: str, model: str = "gpt-4o-mini", **extra: Any) -> httpx.Response:
    return httpx.post(
        gw.base_url + "/chat/completions",
        headers={"authorization": f"Bearer {key}"},
        json={"model": model, "messages": MSG, **extra},
        timeout=30,
    )


def poll(check: Any, timeout: float = 10.0) -> Any:
    """``check()``'s first truthy value, within ``timeout`` real seconds."""
    return poll_until(lambda: check() or None, deadline=timeout)


def test_admin_requires_admin_key(gateway_factory: GatewayFactory, fake: Any, redis_url: str) -> None:
    gw = gateway_factory(config(fake, redis_url))
    r = httpx.get(gw.root_url + "/admin/v1/keys", headers={"authorization": f"Bearer {GATEWAY_KEY}"})
    assert r.status_code == 401
    assert r.json() == {
        "error": {
            "message": "Incorrect admin API key provided.",
            "type": "invalid_request_error",
            "param": None,
            "code": "invalid_api_key",
        }
    }


def test_key_lifecycle_block_is_immediate_on_every_instance(
    gateway_factory: GatewayFactory, fake: Any, redis_url: str, redis_sync: redis.Redis
) -> None:
    cfg = config(fake, redis_url)
    a, b = gateway_factory(cfg), gateway_factory(cfg)
    created = admin(a, "POST", "/keys", {"alias": "svc", "models": ["gpt-4o*"]})
    assert created.status_code == 201
    body = created.json()
    secret, kid = body["key"], body["id"]
    assert secret.startswith(f"sk-gw_{kid}_")
    prefix = cfg["redis"]["key_prefix"]
    stored = redis_sync.hgetall(f"{prefix}key:{{k:{kid}}}")
    assert secret.encode() not in b"".join(stored.values())  # only a hash is stored
    assert "key" not in admin(a, "GET", f"/keys/{kid}").json()
    assert chat(a, secret).status_code == 200
    assert chat(b, secret).status_code == 200  # b caches the key now
    denied = chat(a, secret, model="llama")
    assert denied.status_code == 403
    assert denied.json()["error"] == {
        "message": "This API key is not allowed to use the model `llama`.",
        "type": "invalid_request_error",
        "param": "model",
        "code": "model_not_allowed",
    }
    assert admin(a, "POST", f"/keys/{kid}/block").status_code == 200
    for gw in (a, b):
        r = chat(gw, secret)
        assert r.status_code == 401
        assert r.json()["error"]["code"] == "invalid_api_key"
    assert admin(b, "POST", f"/keys/{kid}/unblock").status_code == 200
    assert chat(a, secret).status_code == 200
    assert admin(a, "DELETE", f"/keys/{kid}").status_code == 200
    assert chat(b, secret).status_code == 401
    actions = [e["action"] for e in admin(a, "GET", "/audit").json()["data"]]
    assert actions[:4] == ["key.delete", "key.unblock", "key.block", "key.create"]


def test_rotation_grace(gateway_factory: GatewayFactory, fake: Any, redis_url: str) -> None:
    cfg = config(fake, redis_url)
    gw, other = gateway_factory(cfg), gateway_factory(cfg)
    created = admin(gw, "POST", "/keys", {"limits": {"rpm": 100}}).json()
    old, kid = created["key"], created["id"]
    assert chat(other, old).status_code == 200  # `other` caches the key as it was
    rotated = admin(gw, "POST", f"/keys/{kid}/rotate", {"grace_seconds": 30}).json()
    new = rotated["key"]
    assert new != old and rotated["id"] == kid
    for replica in (gw, other):
        assert chat(replica, old).status_code == 200
        last = chat(replica, new)
        assert last.status_code == 200
    # Same id, settings and counters: one RPM limit counted the five requests of both secrets.
    assert last.headers["x-ratelimit-remaining-requests"] == "95"
    for replica in (gw, other):
        replica.clock.advance(31)
        refused = chat(replica, old)
        assert refused.status_code == 401
        assert refused.json()["error"]["code"] == "invalid_api_key"
        assert chat(replica, new).status_code == 200
    # Without a grace period the old secret stops at once, on every replica.
    newest = admin(other, "POST", f"/keys/{kid}/rotate", {"grace_seconds": 0}).json()["key"]
    for replica in (gw, other):
        assert chat(replica, new).status_code == 401
        assert chat(replica, newest).status_code == 200


def test_a_block_applies_on_every_replica_with_the_policy_disabled(
    gateway_factory: GatewayFactory, fake: Any, redis_url: str
) -> None:
    cfg = config(fake, redis_url, enabled=False)
    a, b = gateway_factory(cfg), gateway_factory(cfg)
    created = admin(a, "POST", "/keys", {"models": ["gpt-4o-mini"]}).json()
    secret, kid = created["key"], created["id"]
    assert chat(b, secret).status_code == 200  # b caches the key
    assert chat(b, secret, model="llama").status_code == 403  # allow-lists still apply
    assert admin(a, "POST", f"/keys/{kid}/block").status_code == 200
    r = chat(b, secret)
    assert r.status_code == 401
    assert r.json()["error"]["message"] == "This API key has been blocked."
    assert admin(a, "DELETE", f"/keys/{kid}").status_code == 200
    assert chat(b, secret).json()["error"]["code"] == "invalid_api_key"


def test_rpm_is_shared_exactly_across_instances(
    gateway_factory: GatewayFactory, fake: Any, redis_url: str
) -> None:
    cfg = config(fake, redis_url)
    a, b = gateway_factory(cfg), gateway_factory(cfg)
    secret = admin(a, "POST", "/keys", {"limits": {"rpm": 60}}).json()["key"]
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(lambda i: chat(a if i % 3 else b, secret).status_code, range(90)))
    assert codes.count(200) == 60 and codes.count(429) == 30
    refused = chat(b, secret)
    assert refused.json()["error"]["type"] == "requests"
    assert refused.json()["error"]["code"] == "rate_limit_exceeded"
    assert refused.headers["retry-after"] == "1"
    assert refused.headers["x-ratelimit-limit-requests"] == "60"
    for gw in (a, b):
        gw.clock.advance(60)
    ok = chat(a, secret)
    assert ok.status_code == 200
    assert ok.headers["x-ratelimit-limit-requests"] == "60"
    assert ok.headers["x-ratelimit-remaining-requests"] == "59"


def test_budget_usage_and_reports_agree(
    gateway_factory: GatewayFactory, fake: Any, redis_url: str, redis_sync: redis.Redis
) -> None:
    """A budget near its limit, 20 parallel requests: refusals with `insufficient_quota`, spend
    above the limit by at most the documented bound, and usage events = counter = report."""
    # Output reserve of one token: the real answers cost more than their holds, so the bound
    # (the sum of actual cost - hold over the admitted requests) is not trivially zero.
    gw = gateway_factory(config(fake, redis_url, output_reserve_tokens=1))
    limit = 10_000_000  # nano-USD ($0.01)
    created = admin(gw, "POST", "/keys", {"budgets": [{"window": "total", "limit_usd": limit / 1e9}]}).json()
    secret, kid = created["key"], created["id"]
    # A long prompt that the fake echoes: the answer's output tokens exceed the one reserved.
    prompt = [{"role": "user", "content": "hello " * 60}]
    body = msgspec.json.encode({"model": "gpt-4o-mini", "messages": prompt})
    hold = PriceTable().hold(math.ceil(len(body) / 4), 1, "gpt-4o-mini")
    prefix = gw.settings.redis.key_prefix
    counter_key = f"{prefix}{{k:{kid}}}:spend:key:{kid}:total"
    preset = limit - 3 * hold  # room for three holds
    redis_sync.set(counter_key, preset)
    barrier = threading.Barrier(20)

    def send(_: int) -> httpx.Response:
        barrier.wait(10)
        return httpx.post(
            gw.base_url + "/chat/completions",
            headers={"authorization": f"Bearer {secret}", "content-type": "application/json"},
            content=body,
            timeout=30,
        )

    with concurrent.futures.ThreadPoolExecutor(20) as pool:
        responses = list(pool.map(send, range(20)))
    codes = [r.status_code for r in responses]
    ok = codes.count(200)
    assert 1 <= ok < 20 and ok + codes.count(429) == 20, codes
    refused = next(r for r in responses if r.status_code == 429)
    assert refused.json()["error"]["type"] == "insufficient_quota"
    assert refused.json()["error"]["code"] == "insufficient_quota"
    assert refused.headers["x-should-retry"] == "false"
    assert len(fake.requests(path="/openai/v1/chat/completions")) == ok  # refusals never went upstream

    def events() -> list[dict[str, Any]]:
        raw = redis_sync.xrange(f"{prefix}usage")
        return [msgspec.json.decode(f[b"e"]) for _, f in raw if msgspec.json.decode(f[b"e"])["kid"] == kid]

    # One usage event per admitted request (refusals are counted in gw_policy_decisions_total).
    evs = poll(lambda: (e := events()) and len(e) == ok and e)
    assert poll(lambda: redis_sync.zcard(f"{prefix}{{k:{kid}}}:holds:key:{kid}") == 0 or None)
    spent = sum(e["cost_nusd"] for e in evs)
    counter = int(redis_sync.get(counter_key) or 0)
    report = admin(gw, "GET", f"/keys/{kid}/usage").json()["total"]
    assert spent == counter - preset == report["cost_nusd"] > 0
    assert report["requests"] == ok and all(e["status"] == 200 for e in evs)
    assert all(e["usage_source"] == "reported" for e in evs)
    # The org-wide rollup (summed per settlement batch) agrees with the per-key one.
    [org] = [row for row in admin(gw, "GET", "/usage?group_by=key").json()["data"] if row["key"] == kid]
    assert (org["requests"], org["cost_nusd"]) == (ok, spent)
    # The documented bound: overshoot <= sum over admitted requests of (actual cost - hold).
    bound = sum(max(0, e["cost_nusd"] - hold) for e in evs)
    assert all(e["cost_nusd"] > hold for e in evs)  # the case the bound is about
    assert counter - limit <= bound, (counter - limit, bound)
    # And the key's own view agrees with the counter.
    spend = admin(gw, "GET", f"/keys/{kid}").json()["spend_nusd"]["total"]
    assert spend == counter


def test_store_unavailable_fails_closed_and_counts(gateway_factory: GatewayFactory, fake: Any) -> None:
    with redis_server() as server:
        gw = gateway_factory(config(fake, server.url))
        secret = admin(gw, "POST", "/keys", {}).json()["key"]
        assert chat(gw, secret).status_code == 200
        server.stop()
        r = chat(gw, secret)
        assert r.status_code == 503
        assert r.headers["retry-after"] == "1"
        assert r.headers["x-should-retry"] == "true"
        assert r.json()["error"]["code"] == "policy_store_unavailable"
        assert r.json()["error"]["type"] == "service_unavailable_error"
        metrics = httpx.get(gw.root_url + "/metrics").text
        assert 'gw_policy_store_errors_total{decision="closed"} 1.0' in metrics
        # The refused request never went upstream.
        assert len(fake.requests(path="/openai/v1/chat/completions")) == 1
        # /readyz says the process cannot serve; /healthz that it lives.
        ready = httpx.get(gw.root_url + "/readyz")
        assert ready.status_code == 503
        assert ready.json()["checks"]["redis"] == "unreachable"
        assert httpx.get(gw.root_url + "/healthz").status_code == 200
        # Redis back (same data): served again, without a restart.
        server.start()
        assert poll(lambda: chat(gw, secret).status_code == 200)
        assert httpx.get(gw.root_url + "/readyz").status_code == 200
        server.stop()


def test_metrics_series_do_not_grow_with_junk_models(
    gateway_factory: GatewayFactory, fake: Any, redis_url: str
) -> None:
    gw = gateway_factory(config(fake, redis_url))
    for i in range(5):
        chat(gw, GATEWAY_KEY, model=f"junk-{i}")
    before = httpx.get(gw.root_url + "/metrics").text.count("\n")
    for i in range(30):
        chat(gw, GATEWAY_KEY, model=f"junk-x{i}")
    after = httpx.get(gw.root_url + "/metrics").text
    assert after.count("\n") == before
    assert "junk" not in after


@pytest.mark.parametrize("asked", [False, True])
def test_stream_usage_hidden_unless_asked(
    gateway_factory: GatewayFactory, fake: Any, redis_url: str, asked: bool
) -> None:
    gw = gateway_factory(config(fake, redis_url))
    extra: dict[str, Any] = {"stream": True}
    if asked:
        extra["stream_options"] = {"include_usage": True}
    r = chat(gw, GATEWAY_KEY, **extra)
    assert r.status_code == 200
    assert (r.text.count('"usage":{') == 1) is asked
    sent = fake.requests(path="/openai/v1/chat/completions")[-1].body
    assert sent["stream_options"] == {"include_usage": True}
