"""The policy on ``POST /v1/responses``: admin-created keys, limits, usage events."""

from __future__ import annotations

from typing import Any

import httpx
import msgspec
import redis

from tests.conftest import GatewayFactory
from tests.integration.policy.test_policy import admin, config, poll


def respond(gw: Any, key: str, **extra: Any) -> httpx.Response:
    return httpx.post(
        gw.base_url + "/responses",
        headers={"authorization": f"Bearer {key}"},
        json={"model": "gpt-4o-mini", "input": "hello", **extra},
        timeout=30,
    )


def test_responses_are_admitted_limited_and_billed(
    gateway_factory: GatewayFactory, fake: Any, redis_url: str, redis_sync: redis.Redis
) -> None:
    gw = gateway_factory(config(fake, redis_url))
    created = admin(gw, "POST", "/keys", {"limits": {"rpm": 2}, "models": ["gpt-4o*"]}).json()
    secret, kid = created["key"], created["id"]
    first = respond(gw, secret)
    assert first.status_code == 200
    assert first.headers["x-ratelimit-remaining-requests"] == "1"
    stream = respond(gw, secret, stream=True)
    assert stream.status_code == 200
    refused = respond(gw, secret)
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "rate_limit_exceeded"
    assert respond(gw, secret, model="llama").json()["error"]["code"] == "model_not_allowed"
    # The stored response belongs to the admin-created key: it can read it back.
    rid = first.json()["id"]
    read = httpx.get(gw.base_url + f"/responses/{rid}", headers={"authorization": f"Bearer {secret}"})
    assert read.status_code == 200
    usage = first.json()["usage"]
    name = f"{gw.settings.redis.key_prefix}usage"

    def events() -> list[dict[str, Any]]:
        decoded = [msgspec.json.decode(f[b"e"]) for _, f in redis_sync.xrange(name)]
        return [e for e in decoded if e["kid"] == kid]

    evs = poll(lambda: (e := events()) and len(e) == 2 and e)
    assert [(e["endpoint"], e.get("stream", False), e["status"]) for e in evs] == [
        ("/v1/responses", False, 200),
        ("/v1/responses", True, 200),
    ]
    assert all(e["usage_source"] == "reported" for e in evs)
    assert (evs[0]["input_tokens"], evs[0]["output_tokens"]) == (
        usage["input_tokens"],
        usage["output_tokens"],
    )
    assert evs[1]["output_tokens"] > 0
    metrics = httpx.get(gw.root_url + "/metrics").text
    assert 'gw_inflight_requests{route="/v1/responses"} 0.0' in metrics
    answered = 'gw_requests_total{error_type="",model="gpt-4o-mini",route="/v1/responses",status_class="2xx"}'
    assert f"{answered} 2.0" in metrics
