"""``PolicyService.charge``: usage that ran outside an admitted request (a chat worker's step)."""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
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


def test_charge_commits_cost_tokens_and_one_event(fake: Any, redis_url: str, redis_sync: redis.Redis) -> None:
    cfg = base_config(fake, redis_url)
    cfg["policy"] = {"time_source": "clock"}
    settings = settings_from_mapping(cfg, source="<test>")
    p = settings.redis.key_prefix
    usage = Usage(input_tokens=1000, output_tokens=500)

    async def run() -> int:
        client = redis_client(redis_url)
        clock = ManualClock()
        policy = PolicyService(
            settings, client, clock, Metrics(["gpt-4o-mini"], ["fake-openai"]), keyring=KeyRing(())
        )
        record = KeyRecord(
            id="chargekid001",
            limits=Limits(tpm=3000),
            budgets=(Budget(window="total", limit_usd=1.0),),
        )
        await policy.store.save_key(record, hashes={"hash": b"x"})
        await policy.start()
        await policy.charge(
            "chargekid001",
            model="gpt-4o-mini",
            usage=usage,
            request_id="chat_1:step_1",
            endpoint="/v1/chats",
            provider="fake-openai",
            upstream_model="gpt-4o-mini",
        )
        # Queued together with the first one: one settle call for both (they share every key).
        await policy.charge(
            "chargekid001", model="gpt-4o-mini", usage=usage, request_id="chat_1:step_2", endpoint="/v1/chats"
        )
        await policy.charge(
            "nosuchkey000", model="gpt-4o-mini", usage=usage, request_id="x", endpoint="/v1/chats"
        )
        await policy.stop()  # flushes the settler
        await client.aclose()
        batches = policy.metrics.settle_batch.collect()[0].samples
        assert [x.value for x in batches if x.name.endswith("_sum")] == [2.0]
        return policy.prices.cost(usage, "gpt-4o-mini")

    cost = asyncio.run(run())
    assert cost > 0
    root = f"{p}{{k:chargekid001}}"
    assert int(redis_sync.get(f"{root}:spend:key:chargekid001:total") or 0) == 2 * cost
    # 2 x 1,500 tokens at 3,000 per minute: the limiter's clock moved 60 s ahead of now.
    tat = float(redis_sync.get(f"{root}:rl:key:chargekid001:tpm") or 0)
    assert tat == 1_800_000_000_000 + 60_000
    [(_, fields), (_, second)] = redis_sync.xrange(f"{p}usage")
    assert msgspec.json.decode(second[b"e"])["request_id"] == "chat_1:step_2"
    event = msgspec.json.decode(fields[b"e"])
    assert (event["kid"], event["endpoint"], event["request_id"], event["cost_nusd"]) == (
        "chargekid001",
        "/v1/chats",
        "chat_1:step_1",
        cost,
    )
    assert (event["input_tokens"], event["output_tokens"], event["usage_source"]) == (1000, 500, "reported")
