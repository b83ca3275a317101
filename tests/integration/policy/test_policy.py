"""Policy over real sockets: admin keys, revocation across instances, limits, budgets, usage."""

from __future__ import annotations

import concurrent.futures
import tempfile
import time
from typing import Any

import httpx
import msgspec
import pytest
import redis

from gateway.store.embedded import EmbeddedRedis
from tests.conftest import GATEWAY_KEY, GatewayFactory, base_config, free_port

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
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.01)


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
    gw = gateway_factory(config(fake, redis_url))
    created = admin(gw, "POST", "/keys", {}).json()
    old, kid = created["key"], created["id"]
    rotated = admin(gw, "POST", f"/keys/{kid}/rotate", {"grace_seconds": 30}).json()
    new = rotated["key"]
    assert new != old and rotated["id"] == kid
    assert chat(gw, old).status_code == 200
    assert chat(gw, new).status_code == 200
    gw.clock.advance(31)
    assert chat(gw, old).status_code == 401
    assert chat(gw, new).status_code == 200


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
    gw = gateway_factory(config(fake, redis_url))
    created = admin(gw, "POST", "/keys", {"budgets": [{"window": "total", "limit_usd": 0.0002}]}).json()
    secret, kid = created["key"], created["id"]
    with concurrent.futures.ThreadPoolExecutor(20) as pool:
        responses = list(pool.map(lambda _: chat(gw, secret, max_tokens=50), range(20)))
    codes = [r.status_code for r in responses]
    assert 200 in codes
    refused = next(r for r in responses if r.status_code == 429)
    assert refused.json()["error"]["type"] == "insufficient_quota"
    assert refused.headers["x-should-retry"] == "false"
    ok = codes.count(200)
    prefix = gw.settings.redis.key_prefix
    usage_key = f"{prefix}usage"

    def events() -> list[dict[str, Any]]:
        raw = redis_sync.xrange(usage_key)
        return [msgspec.json.decode(f[b"e"]) for _, f in raw if msgspec.json.decode(f[b"e"])["kid"] == kid]

    # One usage event per admitted request (refusals are counted in gw_policy_decisions_total).
    evs = poll(lambda: (e := events()) and len(e) == ok and e)
    spent = sum(e["cost_nusd"] for e in evs)
    counter = int(redis_sync.get(f"{prefix}{{k:{kid}}}:spend:key:{kid}:total") or 0)
    report = admin(gw, "GET", f"/keys/{kid}/usage").json()["total"]
    assert spent == counter == report["cost_nusd"] > 0
    assert report["requests"] == ok and all(e["status"] == 200 for e in evs)
    # The org-wide rollup (summed per settlement batch) agrees with the per-key one.
    [org] = [row for row in admin(gw, "GET", "/usage?group_by=key").json()["data"] if row["key"] == kid]
    assert (org["requests"], org["cost_nusd"]) == (ok, spent)
    assert all(e["usage_source"] == "reported" for e in evs)
    # Holds cover max_tokens, so the overshoot bound is zero: never above the limit.
    assert counter <= 200_000
    assert poll(lambda: redis_sync.zcard(f"{prefix}{{k:{kid}}}:holds:key:{kid}") == 0 or None)


def test_store_unavailable_fails_closed_and_counts(gateway_factory: GatewayFactory, fake: Any) -> None:
    with tempfile.TemporaryDirectory() as d:
        server = EmbeddedRedis(d, port=free_port())
        server.start()
        gw = gateway_factory(config(fake, server.url))
        secret = admin(gw, "POST", "/keys", {}).json()["key"]
        assert chat(gw, secret).status_code == 200
        server.stop()
        r = chat(gw, secret)
        assert r.status_code == 503
        assert r.headers["retry-after"] == "1"
        metrics = httpx.get(gw.root_url + "/metrics").text
        assert 'gw_policy_store_errors_total{decision="closed"} 1.0' in metrics


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
