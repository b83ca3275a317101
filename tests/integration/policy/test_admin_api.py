"""The admin API over real sockets: teams shared by several keys, bad input answered in OpenAI's
shape, viewers, `/v1/models` for admin-created keys, and unknown models refused before any
limit is spent. Every check reads the answer and what Redis holds."""

from __future__ import annotations

from typing import Any

import httpx
import msgspec
import redis

from tests.conftest import GatewayFactory
from tests.integration.policy.test_policy import ADMIN, admin, chat, config, poll

VIEWER = "viewer-key-0123456789abcdef"


def models(gw: Any, key: str, path: str = "") -> httpx.Response:
    return httpx.get(gw.base_url + "/models" + path, headers={"authorization": f"Bearer {key}"})


def usage_events(r: redis.Redis, gw: Any, kid: str) -> list[dict[str, Any]]:
    raw = r.xrange(f"{gw.settings.redis.key_prefix}usage")
    events = [msgspec.json.decode(f[b"e"]) for _, f in raw]
    return [e for e in events if e["kid"] == kid]


def test_a_team_shares_its_limit_report_and_block_between_its_keys(
    gateway_factory: GatewayFactory, fake: Any, redis_url: str, redis_sync: redis.Redis
) -> None:
    cfg = config(fake, redis_url)
    a, b = gateway_factory(cfg), gateway_factory(cfg)
    team = admin(a, "POST", "/teams", {"id": "research", "name": "Research", "limits": {"rpm": 3}})
    assert team.status_code == 201, team.text
    k1 = admin(a, "POST", "/keys", {"alias": "r1", "team_id": "research"}).json()
    k2 = admin(b, "POST", "/keys", {"alias": "r2", "team_id": "research"}).json()
    codes = [chat(a, k1["key"]).status_code, chat(b, k2["key"]).status_code, chat(a, k2["key"]).status_code]
    assert codes == [200, 200, 200]
    refused = chat(b, k1["key"])
    assert refused.status_code == 429
    error = refused.json()["error"]
    assert (error["type"], error["code"]) == ("requests", "rate_limit_exceeded")
    assert "on team 'Research': Limit 3, Used 3" in error["message"]
    assert refused.headers["x-ratelimit-limit-requests"] == "3"

    # The team's report is the sum of its keys', and equals the team's spend counter.
    prefix = a.settings.redis.key_prefix
    poll(lambda: len(usage_events(redis_sync, a, k1["id"]) + usage_events(redis_sync, a, k2["id"])) == 3)
    events = usage_events(redis_sync, a, k1["id"]) + usage_events(redis_sync, a, k2["id"])
    spent = sum(e["cost_nusd"] for e in events)
    report = admin(a, "GET", "/teams/research/usage").json()["total"]
    counter = int(redis_sync.get(f"{prefix}{{t:research}}:spend:team:research:total") or 0)
    assert (report["requests"], report["cost_nusd"]) == (3, spent)
    assert counter == spent > 0
    assert all(e["team_id"] == "research" for e in events)

    # Blocking the team refuses every key of it on every instance; unblocking restores them.
    assert admin(b, "PATCH", "/teams/research", {"status": "blocked"}).status_code == 200
    for gw in (a, b):
        for key in (k1, k2):
            r = chat(gw, key["key"])
            assert r.status_code == 401, r.text
            assert r.json()["error"]["message"] == "This API key has been blocked."
    assert admin(a, "PATCH", "/teams/research", {"status": "active", "limits": None}).status_code == 200
    assert chat(b, k1["key"]).status_code == 200

    # A team with keys cannot be deleted; a key cannot change teams (its counters live there).
    gone = admin(a, "DELETE", "/teams/research")
    assert (gone.status_code, gone.json()["error"]["code"]) == (409, "team_not_empty")
    moved = admin(a, "PATCH", f"/keys/{k1['id']}", {"team_id": None})
    assert moved.status_code == 409
    assert (moved.json()["error"]["param"], moved.json()["error"]["code"]) == (
        "team_id",
        "team_change_not_supported",
    )
    assert admin(a, "GET", f"/keys/{k1['id']}").json()["team_id"] == "research"


def test_bad_admin_input_is_a_400_in_openai_shape_and_changes_nothing(
    gateway_factory: GatewayFactory, fake: Any, redis_url: str
) -> None:
    cfg = config(fake, redis_url)
    cfg["admin"]["keys"].append({"name": "auditor", "key": VIEWER, "role": "viewer"})
    gw = gateway_factory(cfg)
    for path in ("/keys?limit=abc", "/keys?limit=0", "/audit?limit=5000", "/teams?limit=-1"):
        r = admin(gw, "GET", path)
        assert r.status_code == 400, path
        assert r.json()["error"] == {
            "message": "limit must be an integer from 1 to 1000.",
            "type": "invalid_request_error",
            "param": "limit",
            "code": "invalid_limit",
        }
    zero = admin(gw, "POST", "/keys", {"limits": {"rpm": 0}})
    assert zero.status_code == 400
    assert (zero.json()["error"]["param"], zero.json()["error"]["code"]) == ("limits.rpm", "invalid_body")
    negative = admin(gw, "POST", "/keys", {"budgets": [{"window": "day", "limit_usd": -5}]})
    assert negative.status_code == 400
    assert negative.json()["error"]["param"] == "budgets[0].limit_usd"
    not_json = httpx.post(
        gw.root_url + "/admin/v1/keys", headers={"authorization": f"Bearer {ADMIN}"}, content=b"{"
    )
    assert (not_json.status_code, not_json.json()["error"]["code"]) == (400, "invalid_json")

    kid = admin(gw, "POST", "/keys", {"alias": "first"}).json()["id"]
    # An invalid change is refused before the alias is claimed: "second" stays free.
    bad = admin(gw, "PATCH", f"/keys/{kid}", {"alias": "second", "models": "gpt-4o-mini"})
    assert bad.status_code == 400
    assert admin(gw, "GET", f"/keys/{kid}").json()["alias"] == "first"
    assert admin(gw, "POST", "/keys", {"alias": "second"}).status_code == 201
    taken = admin(gw, "PATCH", f"/keys/{kid}", {"alias": "second"})
    assert (taken.status_code, taken.json()["error"]["code"]) == (409, "alias_taken")

    # A viewer reads, and may not write.
    read = httpx.get(gw.root_url + "/admin/v1/keys", headers={"authorization": f"Bearer {VIEWER}"})
    assert read.status_code == 200 and len(read.json()["data"]) == 2
    write = httpx.post(gw.root_url + "/admin/v1/keys", headers={"authorization": f"Bearer {VIEWER}"}, json={})
    assert write.status_code == 403
    assert write.json()["error"]["code"] == "insufficient_permissions"
    missing = admin(gw, "GET", "/keys/nosuchkey000")
    assert (missing.status_code, missing.json()["error"]["code"]) == (404, "key_not_found")


def test_models_endpoint_takes_admin_created_keys_and_shows_only_allowed_models(
    gateway_factory: GatewayFactory, fake: Any, redis_url: str
) -> None:
    cfg = config(fake, redis_url)
    a, b = gateway_factory(cfg), gateway_factory(cfg)
    created = admin(a, "POST", "/keys", {"models": ["gpt-4o*"]}).json()
    secret, kid = created["key"], created["id"]
    listed = models(a, secret)
    assert listed.status_code == 200, listed.text
    assert [m["id"] for m in listed.json()["data"]] == ["gpt-4o-mini"]
    assert models(a, secret, "/gpt-4o-mini").json()["id"] == "gpt-4o-mini"
    hidden = models(a, secret, "/llama")
    assert hidden.status_code == 404
    assert hidden.json()["error"] == {
        "message": "The model `llama` does not exist or you do not have access to it.",
        "type": "invalid_request_error",
        "param": None,
        "code": "model_not_found",
    }
    assert models(b, secret).status_code == 200  # b caches the key now
    assert admin(a, "POST", f"/keys/{kid}/block").status_code == 200
    for gw in (a, b):
        blocked = models(gw, secret)
        assert blocked.status_code == 401
        assert blocked.json()["error"]["code"] == "invalid_api_key"


def test_an_unknown_model_is_refused_before_any_limit_is_spent(
    gateway_factory: GatewayFactory, fake: Any, redis_url: str, redis_sync: redis.Redis
) -> None:
    gw = gateway_factory(config(fake, redis_url))
    created = admin(
        gw, "POST", "/keys", {"limits": {"rpm": 2}, "budgets": [{"window": "day", "limit_usd": 1}]}
    ).json()
    secret, kid = created["key"], created["id"]
    for i in range(5):
        r = chat(gw, secret, model=f"typo-{i}")
        assert r.status_code == 404
        assert r.json()["error"]["code"] == "model_not_found"
        assert "x-ratelimit-limit-requests" not in r.headers
    ok = chat(gw, secret)
    assert ok.status_code == 200
    assert ok.headers["x-ratelimit-remaining-requests"] == "1"  # the typos spent nothing
    poll(lambda: len(usage_events(redis_sync, gw, kid)) == 1)
    prefix = gw.settings.redis.key_prefix
    fields = b"".join(k for name in redis_sync.scan_iter(f"{prefix}*roll*") for k in redis_sync.hkeys(name))
    assert b"typo" not in fields
    # A key with an allow-list: a model that does not exist is still a 404, one that exists but
    # is not on the list a 403.
    narrow = admin(gw, "POST", "/keys", {"models": ["gpt-4o*"]}).json()["key"]
    unknown = chat(gw, narrow, model="typo-x")
    assert (unknown.status_code, unknown.json()["error"]["code"]) == (404, "model_not_found")
    denied = chat(gw, narrow, model="llama")
    assert (denied.status_code, denied.json()["error"]["code"]) == (403, "model_not_allowed")
