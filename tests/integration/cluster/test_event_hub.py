"""The shared chat event reader on a Redis Cluster: one blocking ``XREAD`` per slot followed (a
chat's keys are in one of 32 shard slots), each follower getting exactly its stream's entries in
order, and a stream followed while its slot's reader blocks read at once (its wake stream)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis
from redis.cluster import RedisCluster

from gateway.chats.events import EventHub
from gateway.chats.store import chat_key
from gateway.clock import ManualClock
from gateway.config.settings import RedisSettings
from gateway.redis.connection import blocking_client, connect
from gateway.redis.keys import CHAT_SHARDS, slot
from gateway.redis.local_cluster import LocalCluster
from tests.integration.chats.helpers import poll
from tests.integration.chats.test_event_hub import Following, take


@pytest.fixture
def name() -> str:
    return f"hub-test-{uuid.uuid4().hex[:8]}"


@pytest.fixture
async def clients(cluster: LocalCluster, name: str) -> AsyncIterator[tuple[aioredis.Redis, aioredis.Redis]]:
    commands = connect(RedisSettings(url=cluster.url, max_connections=8))
    blocking = blocking_client(commands, name=name, socket_timeout=None)
    yield commands, blocking
    await blocking.aclose()
    await commands.aclose()


def blocked_readers(cluster: LocalCluster, name: str) -> int:
    total = 0
    for node in cluster.primary_nodes():
        with node.client() as conn:
            total += sum(1 for c in conn.client_list() if c["name"] == name and "b" in c["flags"])
    return total


async def test_many_chats_are_read_with_one_blocking_read_per_slot(
    clients: tuple[aioredis.Redis, aioredis.Redis],
    cluster: LocalCluster,
    cluster_sync: RedisCluster,
    name: str,
) -> None:
    prefix = f"hubtest{uuid.uuid4().hex[:8]}:"
    commands, blocking = clients
    hub = EventHub(commands, blocking, ManualClock(), prefix, block_ms=600_000)
    await hub.start()
    keys = [chat_key(prefix, f"chat-{i}") + ":events" for i in range(60)]
    slots = {slot(k) for k in keys}
    assert 1 < len(slots) <= CHAT_SHARDS
    try:
        async with Following(hub, keys) as followers:
            await asyncio.to_thread(
                poll, lambda: blocked_readers(cluster, name) == len(slots), what="one blocked read per slot"
            )
            for round_ in range(3):
                for i, key in enumerate(keys):
                    await commands.xadd(key, {"e": f'{{"n":{i},"round":{round_}}}'})
            for i, (key, follower) in enumerate(zip(keys, followers, strict=True)):
                got = await take(follower, 3)
                stored: Any = cluster_sync.xrange(key)
                assert [entry_id for entry_id, _ in got] == [e[0].decode() for e in stored]
                assert [body for _, body in got] == [f'{{"n":{i},"round":{r}}}'.encode() for r in range(3)]
            # A new chat in a slot whose reader blocks (for ten minutes): its wake stream.
            await asyncio.to_thread(
                poll, lambda: blocked_readers(cluster, name) == len(slots), what="the readers to block again"
            )
            late = next(
                k
                for k in (chat_key(prefix, f"late-{i}") + ":events" for i in range(1000))
                if slot(k) in slots
            )
            async with hub.follow(late, "0-0") as follower:
                await commands.xadd(late, {"e": b'{"late":1}'})
                assert [body for _, body in await take(follower, 1)] == [b'{"late":1}']
            assert hub.followed == len(keys)
    finally:
        await hub.stop()
    assert blocked_readers(cluster, name) == 0
