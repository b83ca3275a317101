"""The policy on the chats routes: admin-created keys, model access and limits at admission, and
each turn step's usage charged to the chat owner's key."""

from __future__ import annotations

from typing import Any

import msgspec
import redis

from fake_providers.testing import FakeProviders
from tests.conftest import GatewayFactory
from tests.integration.chats.helpers import client, poll, wait_status
from tests.integration.policy.test_policy import admin, config


def _key(gw: Any, **settings: Any) -> tuple[str, str]:
    created = admin(gw, "POST", "/keys", settings)
    assert created.status_code == 201, created.text
    body = created.json()
    return body["key"], body["id"]


def test_admin_created_key_creates_and_runs_a_chat(
    gateway_factory: GatewayFactory, fake: FakeProviders, redis_url: str
) -> None:
    gw = gateway_factory(config(fake, redis_url))
    secret, _ = _key(gw, limits={"rpm": 100})
    with client(gw, secret) as c:
        created = c.post("", json={"model": "gpt-4o-mini", "message": "hello"})
        assert created.status_code == 201, created.text
        assert created.headers["x-ratelimit-limit-requests"] == "100"
        assert created.headers["x-ratelimit-remaining-requests"] == "99"
        chat_id = created.json()["id"]
        wait_status(c, chat_id, "waiting")
        sent = c.post(f"/{chat_id}/messages", json={"message": "again"})
        assert sent.status_code == 200, sent.text
        assert sent.headers["x-ratelimit-remaining-requests"] == "98"
        wait_status(c, chat_id, "waiting")
        messages = c.get(f"/{chat_id}/messages").json()["messages"]
        assert [m["role"] for m in messages] == ["user", "assistant", "user", "assistant"]
        assert [chat["id"] for chat in c.get("").json()["chats"]] == [chat_id]
    with client(gw) as other:  # the config key does not see the admin-created key's chat
        assert other.get(f"/{chat_id}").status_code == 404
    with client(gw, "sk-gw_nope") as bad:
        refused = bad.get("")
        assert refused.status_code == 401
        assert set(refused.json()) == {"message"}


def test_model_access_and_limits_refuse_before_anything_is_queued(
    gateway_factory: GatewayFactory, fake: FakeProviders, redis_url: str
) -> None:
    gw = gateway_factory(config(fake, redis_url))
    secret, kid = _key(gw, models=["llama"])
    with client(gw, secret) as c:
        refused = c.post("", json={"model": "gpt-4o-mini", "message": "hello"})
        assert refused.status_code == 403
        assert refused.json() == {
            "message": "This API key is not allowed to use the model `gpt-4o-mini`.",
            "detail": "model_not_allowed",
        }
        assert c.get("").json()["chats"] == []
        # Allowed when created; no longer when the message is sent.
        created = c.post("", json={"model": "llama", "message": "hello"})
        assert created.status_code == 201, created.text
        chat_id = created.json()["id"]
        wait_status(c, chat_id, "waiting")
        assert admin(gw, "PATCH", f"/keys/{kid}", {"models": ["gpt-4o*"]}).status_code == 200
        denied = c.post(f"/{chat_id}/messages", json={"message": "again"})
        assert (denied.status_code, denied.json()["detail"]) == (403, "model_not_allowed")
        page = c.get(f"/{chat_id}/messages").json()
        assert [m["role"] for m in page["messages"]] == ["user", "assistant"]
        assert page["queued_messages"] == []
    limited, _ = _key(gw, limits={"rpm": 1})
    with client(gw, limited) as c:
        assert c.post("", json={"model": "gpt-4o-mini", "message": "one"}).status_code == 201
        too_many = c.post("", json={"model": "gpt-4o-mini", "message": "two"})
        assert too_many.status_code == 429
        assert too_many.json()["detail"] == "rate_limit_exceeded"
        assert too_many.headers["retry-after"]
        assert len(c.get("").json()["chats"]) == 1


def test_turn_usage_is_charged_to_the_key(
    gateway_factory: GatewayFactory, fake: FakeProviders, redis_url: str, redis_sync: redis.Redis
) -> None:
    gw = gateway_factory(config(fake, redis_url))
    secret, kid = _key(gw)
    fake.script([{"reply": {"text": "counted", "usage": {"input_tokens": 321, "output_tokens": 45}}}])
    with client(gw, secret) as c:
        created = c.post("", json={"model": "gpt-4o-mini", "message": "hello"})
        assert created.status_code == 201, created.text
        chat_id = created.json()["id"]
        wait_status(c, chat_id, "waiting")
    prefix = gw.settings.redis.key_prefix

    def step_events() -> list[dict[str, Any]]:
        raw = redis_sync.xrange(f"{prefix}usage")
        events = [msgspec.json.decode(fields[b"e"]) for _, fields in raw]
        return [e for e in events if e["kid"] == kid and e["request_id"].startswith(f"{chat_id}:")]

    [event] = poll(step_events, what="the step's usage event")
    assert (event["endpoint"], event["model"], event["provider"], event["upstream_model"]) == (
        "/v1/chats",
        "gpt-4o-mini",
        "fake-openai",
        "gpt-4o-mini",
    )
    assert (event["input_tokens"], event["output_tokens"], event["usage_source"]) == (321, 45, "reported")
    assert event["cost_nusd"] > 0

    def report() -> dict[str, Any] | None:
        total: dict[str, Any] = admin(gw, "GET", f"/keys/{kid}/usage").json()["total"]
        return total if total["input_tokens"] == 321 else None

    total = poll(report, what="the key's usage report")
    # The admission (settled when the turn is queued) and the step.
    assert (total["requests"], total["output_tokens"], total["cost_nusd"]) == (2, 45, event["cost_nusd"])
    spent = int(redis_sync.get(f"{prefix}{{k:{kid}}}:spend:key:{kid}:total") or 0)
    assert spent == event["cost_nusd"]
