"""The admin operations called directly (no HTTP) over the session's real Redis: what they
return, what they refuse, and what Redis holds afterwards."""

from __future__ import annotations

import asyncio
import hashlib
import socket
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
import pytest
import redis

from gateway.clock import ManualClock
from gateway.config import Budget, Limits, Settings, settings_from_mapping
from gateway.errors.client import AuthenticationFailed, Conflict, GatewayError, InvalidRequest, NotFound
from gateway.policy.admin import KeyAdmin, KeyCreate, KeyQuery, Reports, Rotate, TeamAdmin, TeamCreate
from gateway.policy.auth import KeyRing
from gateway.policy.engine import PolicyService
from gateway.pricing import Usage
from gateway.redis.connection import redis_client
from gateway.telemetry.metrics import Metrics

CONFIG_KEY = "sk-config-key-0123456789"


def settings(redis_url: str) -> Settings:
    return settings_from_mapping(
        {
            "redis": {"url": redis_url, "key_prefix": f"gwtest-{uuid.uuid4().hex[:12]}:"},
            "auth": {"keys": [{"name": "cfg", "key": CONFIG_KEY, "team": "cfgteam"}]},
            "teams": [{"id": "cfgteam", "name": "From the file"}],
            # Never called: the operations only touch Redis.
            "providers": [
                {"name": "p", "kind": "openai", "base_url": "http://127.0.0.1:9/v1", "api_key": "x"}
            ],
            "models": [{"name": "gpt-4o-mini", "provider": "p"}],
            "policy": {"time_source": "clock"},
        },
        source="<test>",
    )


def run(
    redis_url: str, body: Callable[[PolicyService], Awaitable[None]], *, cfg: Settings | None = None
) -> None:
    async def main() -> None:
        client = redis_client(redis_url)
        cfg_ = cfg or settings(redis_url)
        policy = PolicyService(
            cfg_, client, ManualClock(), Metrics(["gpt-4o-mini"], ["p"]), keyring=KeyRing(cfg_.auth.keys)
        )
        await policy.start()
        try:
            await body(policy)
        finally:
            await policy.stop()
            await client.aclose()

    asyncio.run(main())


def test_a_key_from_creation_to_deletion(redis_url: str, redis_sync: redis.Redis) -> None:
    seen: dict[str, Any] = {}

    async def body(policy: PolicyService) -> None:
        keys, teams, reports = KeyAdmin(policy), TeamAdmin(policy), Reports(policy)
        team = await teams.create(TeamCreate(id="research", limits=Limits(rpm=10)), actor="ops")
        assert (team.id, team.version, team.created_at) == ("research", 1, policy.clock.now())
        created = await keys.create(
            KeyCreate(alias="svc", team_id="research", budgets=(Budget(window="day", limit_usd=1.0),)),
            actor="ops",
        )
        secret = created.key
        assert isinstance(secret, str) and secret.startswith(f"sk-gw_{created.id}_")
        # The view encodes as the admin API answers: the record, then spend and what is left.
        view = msgspec.json.decode(msgspec.json.encode(created))
        assert list(view)[-5:] == ["object", "spend_usd", "spend_nusd", "budgets_remaining_usd", "key"]
        assert view["budgets_remaining_usd"] == [{"window": "day", "limit_usd": 1.0, "remaining_usd": 1.0}]
        assert "key" not in msgspec.json.decode(msgspec.json.encode(await keys.read(created.id)))

        caller = await policy.authenticate(secret)
        assert (caller.key.id, caller.team is not None and caller.team.id) == (created.id, "research")
        page = await keys.listing(KeyQuery(alias="svc"))
        assert [r.id for r in page.data] == [created.id] and page.next_cursor is None

        # A usage charge shows in the key's report once settled.
        await policy.charge(
            created.id,
            model="gpt-4o-mini",
            usage=Usage(input_tokens=100, output_tokens=50),
            request_id="r1",
            endpoint="/v1/chat/completions",
        )
        await policy.settler.stop()
        report = await keys.usage(created.id)
        assert (report.total.requests, report.total.input_tokens, report.total.output_tokens) == (1, 100, 50)
        assert report.total.cost_nusd == policy.prices.cost(
            Usage(input_tokens=100, output_tokens=50), "gpt-4o-mini"
        )

        with pytest.raises(Conflict) as taken:
            await keys.create(KeyCreate(alias="svc"), actor="ops")
        assert taken.value.code == "alias_taken"
        with pytest.raises(InvalidRequest) as fields:
            await keys.update(created.id, {"status": "blocked"}, actor="ops")
        assert fields.value.code == "invalid_body"

        blocked = await keys.set_status(created.id, "blocked", actor="ops")
        assert (blocked.status, blocked.version) == ("blocked", 2)
        with pytest.raises(AuthenticationFailed) as refused:
            await policy.authenticate(secret)
        assert refused.value.message == "This API key has been blocked."

        rotated = await keys.rotate(created.id, Rotate(grace_seconds=0), actor="ops")
        assert rotated.key != secret and rotated.version == 3
        with pytest.raises(Conflict) as not_empty:
            await teams.delete("research", actor="ops")
        assert not_empty.value.code == "team_not_empty"

        deleted = await keys.delete(created.id, actor="ops")
        assert msgspec.json.encode(deleted) == (
            b'{"id":"' + created.id.encode() + b'","object":"gateway.key.deleted","deleted":true}'
        )
        with pytest.raises(NotFound):
            await keys.read(created.id)
        await teams.delete("research", actor="ops")

        audit = await reports.audit_log(10)
        actions = [(e.action, e.actor) for e in audit.data]
        assert actions == [
            ("team.delete", "ops"),
            ("key.delete", "ops"),
            ("key.rotate", "ops"),
            ("key.block", "ops"),
            ("key.create", "ops"),
            ("team.create", "ops"),
        ]
        seen["prefix"] = policy.settings.redis.key_prefix
        seen["kid"] = created.id

    run(redis_url, body)
    prefix, kid = seen["prefix"], seen["kid"]
    assert not redis_sync.exists(f"{prefix}key:{{k:{kid}}}")
    assert not redis_sync.exists(f"{prefix}alias:svc")
    assert redis_sync.zcard(f"{prefix}idx:keys") == 0 == redis_sync.zcard(f"{prefix}idx:teams")


def test_config_file_keys_and_teams_are_changed_in_the_file(redis_url: str) -> None:
    async def body(policy: PolicyService) -> None:
        kid = hashlib.sha256(CONFIG_KEY.encode()).hexdigest()[:12]
        for call in (
            KeyAdmin(policy).read(kid),
            TeamAdmin(policy).update("cfgteam", {"name": "x"}, actor="ops"),
            TeamAdmin(policy).delete("cfgteam", actor="ops"),
        ):
            with pytest.raises(Conflict) as refused:
                await call
            assert refused.value.code == "config_managed"
        with pytest.raises(Conflict) as exists:
            await TeamAdmin(policy).create(TeamCreate(id="cfgteam"), actor="ops")
        assert exists.value.code == "team_exists"
        # The config's team is listed first and read with its spend.
        listed = await TeamAdmin(policy).listing()
        assert [t.id for t in listed.data] == ["cfgteam"]
        team = await TeamAdmin(policy).read("cfgteam")
        assert (team.source, team.spend_nusd["total"]) == ("config", 0)
        me = await Reports(policy).self_view(await policy.authenticate(CONFIG_KEY))
        assert me.team is not msgspec.UNSET and me.team.id == "cfgteam"
        assert "metadata" not in msgspec.json.decode(msgspec.json.encode(me))

    run(redis_url, body)


def test_a_store_failure_is_a_503(redis_url: str) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    down = settings(f"redis://127.0.0.1:{port}/0")  # nothing listens there

    async def body(policy: PolicyService) -> None:
        for call in (
            KeyAdmin(policy).read("nosuchkey000"),
            TeamAdmin(policy).create(TeamCreate(id="t"), actor="ops"),
            Reports(policy).audit_log(),
        ):
            with pytest.raises(GatewayError) as failed:
                await call
            assert (failed.value.status_code, failed.value.code) == (503, "policy_store_unavailable")
            assert failed.value.headers == {"retry-after": "1", "x-should-retry": "true"}

    run(down.redis.url or "", body, cfg=down)
