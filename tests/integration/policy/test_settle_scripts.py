"""A settlement batch whose scripts Redis no longer holds (a restart, a failover, SCRIPT FLUSH):
each call answered ``NOSCRIPT`` is made again on its own, nothing is lost or counted twice."""

from __future__ import annotations

import asyncio
from typing import Any

import redis

from gateway.clock import ManualClock
from gateway.config import Budget, Limits, settings_from_mapping
from gateway.policy.auth import KeyRing
from gateway.policy.engine import PolicyService
from gateway.policy.records import KeyRecord
from gateway.pricing import Usage
from gateway.redis.connection import redis_client
from gateway.telemetry.metrics import Metrics
from tests.conftest import base_config


def test_a_batch_after_script_flush_is_written_once(
    fake: Any, redis_url: str, redis_sync: redis.Redis
) -> None:
    cfg = base_config(fake, redis_url)
    cfg["policy"] = {"time_source": "clock"}
    settings = settings_from_mapping(cfg, source="<test>")
    p = settings.redis.key_prefix
    usage = Usage(input_tokens=1000, output_tokens=500)
    clock = ManualClock()

    async def run() -> int:
        client = redis_client(redis_url)
        policy = PolicyService(
            settings, client, clock, Metrics(["gpt-4o-mini"], ["fake-openai"]), keyring=KeyRing(())
        )
        record = KeyRecord(
            id="flushkid0001", limits=Limits(tpm=3000), budgets=(Budget(window="total", limit_usd=1.0),)
        )
        await policy.store.save_key(record, hashes={"hash": b"x"})
        await policy.start()  # loads the scripts
        redis_sync.script_flush()
        for step in (1, 2):
            await policy.charge(
                "flushkid0001",
                model="gpt-4o-mini",
                usage=usage,
                request_id=f"chat_9:step_{step}",
                endpoint="/v1/chats",
                provider="fake-openai",
                upstream_model="gpt-4o-mini",
            )
        await policy.stop()  # flushes the settler
        await client.aclose()
        return policy.prices.cost(usage, "gpt-4o-mini")

    cost = asyncio.run(run())
    root = f"{p}{{k:flushkid0001}}"
    assert int(redis_sync.get(f"{root}:spend:key:flushkid0001:total") or 0) == 2 * cost
    assert redis_sync.xlen(f"{p}usage") == 2
    org = list(redis_sync.scan_iter(f"{p}roll:d:*"))
    assert len(org) == 1, org
    fields = {k.decode(): int(v) for k, v in redis_sync.hgetall(org[0]).items()}
    assert fields["key:flushkid0001|req"] == 2
    assert fields["key:flushkid0001|in"] == 2000
    assert fields["key:flushkid0001|out"] == 1000
    assert fields["model:gpt-4o-mini|req"] == 2
    assert fields["key:flushkid0001|nusd"] == 2 * cost
    ttl = redis_sync.ttl(org[0])
    assert 399 * 86400 < ttl <= 400 * 86400
