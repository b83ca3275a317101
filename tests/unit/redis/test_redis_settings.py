"""``[redis]``: the three modes, their checks (each mistake named by its key path), and the client
each one builds, without a server (clients connect on first use)."""

from __future__ import annotations

from typing import Any

import pytest
import redis.asyncio as aioredis
from redis.asyncio.sentinel import SentinelConnectionPool
from redis.exceptions import ConnectionError as RedisConnectionError

from gateway.config import ConfigError, Settings, settings_from_mapping
from gateway.config.settings import RedisSettings
from gateway.redis.connection import (
    ClusterClient,
    SentinelBlockingPool,
    blocking_client,
    cluster_seeds,
    connect,
)
from gateway.redis.keys import CHAT_SHARDS, chat_shard, hash_tag, slot

KEY = {"name": "k", "key": "sk-test-key-123456"}


def settings(**redis: Any) -> Settings:
    return settings_from_mapping({"redis": redis, "auth": {"keys": [KEY]}}, source="t.toml", env={})


def refused(**redis: Any) -> tuple[str, str]:
    with pytest.raises(ConfigError) as info:
        settings(**redis)
    return info.value.key, info.value.reason


def test_the_mode_comes_from_the_url_unless_given() -> None:
    assert settings().redis.effective_mode == "single"
    assert settings().redis.embedded
    assert settings(url="redis://h:6379/0").redis.effective_mode == "single"
    assert not settings(url="redis://h:6379/0").redis.embedded
    assert settings(url="redis+cluster://a:1,b:2").redis.effective_mode == "cluster"
    assert settings(url="rediss+cluster://a:1").redis.effective_mode == "cluster"
    assert settings(url="redis://a:7000", mode="cluster").redis.effective_mode == "cluster"
    sentinel = settings(mode="sentinel", sentinels=["s1:26379"], service_name="gw").redis
    assert sentinel.effective_mode == "sentinel"
    assert not sentinel.embedded  # no url, and still no embedded server


@pytest.mark.parametrize(
    ("redis", "key", "reason"),
    [
        ({"url": "http://h"}, "redis.url", "must start with redis://, rediss://, unix://"),
        ({"url": "redis+cluster://a:1,b"}, "redis.url", "seed 'b' must be host:port"),
        ({"url": "redis+cluster://a:1", "mode": "single"}, "redis.url", 'needs mode "cluster"'),
        ({"url": "unix:///tmp/r.sock", "mode": "cluster"}, "redis.url", "cannot be used in cluster mode"),
        ({"mode": "cluster"}, "redis.url", 'mode "cluster" needs seed nodes'),
        ({"mode": "sentinel", "service_name": "gw"}, "redis.sentinels", "needs at least one sentinel"),
        ({"mode": "sentinel", "sentinels": ["s:1"]}, "redis.service_name", "needs the monitored service"),
        (
            {"mode": "sentinel", "sentinels": ["s:1", "s2"], "service_name": "gw"},
            "redis.sentinels[1]",
            "host:port",
        ),
        ({"url": "redis://h", "sentinels": ["s:1"]}, "redis.sentinels", 'is for mode "sentinel"'),
        ({"url": "redis://h", "service_name": "gw"}, "redis.service_name", 'is for mode "sentinel"'),
        ({"url": "redis://h", "command_timeout_seconds": 0}, "redis.command_timeout_seconds", "positive"),
        ({"mode": "clustered"}, "redis.mode", "Invalid enum value 'clustered'"),
    ],
)
def test_mistakes_are_named_by_their_key_path(redis: dict[str, Any], key: str, reason: str) -> None:
    got_key, got_reason = refused(**redis)
    assert got_key == key
    assert reason in got_reason


def test_cluster_seeds_credentials_and_tls_come_from_the_url() -> None:
    r = RedisSettings(url="rediss+cluster://user:p%40ss@a:7000,b:7001/0")
    seeds, options = cluster_seeds(r, r.url)
    assert seeds == [("a", 7000), ("b", 7001)]
    assert options == {"username": "user", "password": "p@ss", "ssl": True}
    plain = RedisSettings(url="redis://c:7002", mode="cluster")
    assert cluster_seeds(plain, plain.url) == ([("c", 7002)], {"ssl": False})


async def test_each_mode_builds_its_client() -> None:
    single = connect(RedisSettings(url="redis://h:6379/0", max_connections=7, pool_timeout_seconds=1.5))
    assert isinstance(single.connection_pool, aioredis.BlockingConnectionPool)
    assert single.connection_pool.max_connections == 7

    cluster = connect(RedisSettings(url="redis+cluster://a:7000,b:7001", command_timeout_seconds=3.0))
    assert isinstance(cluster, ClusterClient)
    assert cluster.deadline == 3.0
    twin = blocking_client(cluster)
    assert isinstance(twin, ClusterClient)
    assert twin.deadline > cluster.deadline  # a blocking read's block time on top

    sentinel = connect(
        RedisSettings(
            url="rediss://:secret@/2", mode="sentinel", sentinels=("s1:26379", "s2:26379"), service_name="gw"
        )
    )
    pool = sentinel.connection_pool
    assert isinstance(pool, SentinelBlockingPool) and isinstance(pool, SentinelConnectionPool)
    assert pool.service_name == "gw"
    assert pool.connection_kwargs["password"] == "secret"
    assert pool.connection_kwargs["db"] == 2
    assert [s.connection_pool.connection_kwargs["port"] for s in pool.sentinel_manager.sentinels] == [
        26379,
        26379,
    ]
    blocking = blocking_client(sentinel)
    assert isinstance(blocking.connection_pool, SentinelBlockingPool)
    assert blocking.connection_pool.service_name == "gw"
    for client in (single, sentinel, blocking):
        await client.aclose()


def test_hash_tags_and_chat_shards() -> None:
    assert hash_tag("gw:{t:research}:rl:key:k1:rpm") == "t:research"
    assert hash_tag("gw:idx:keys") == "gw:idx:keys"
    assert hash_tag("gw:{}:x") == "gw:{}:x"  # an empty tag is no tag
    assert slot("gw:{t:research}:state") == slot("other:{t:research}:spend")
    shards = {chat_shard(f"chat-{i}") for i in range(2000)}
    assert len(shards) == CHAT_SHARDS
    assert chat_shard("abc") == chat_shard("abc")


async def test_an_unreachable_cluster_fails_as_redis_being_unavailable() -> None:
    """Every caller handles ``RedisError`` as the store being down (503 or on_store_error); the
    cluster client's own "cannot be connected" is one, not a bug."""
    client = connect(RedisSettings(url="redis+cluster://127.0.0.1:1", command_timeout_seconds=1.0))
    with pytest.raises(RedisConnectionError, match="cluster unreachable"):
        await client.get("x")
    await client.aclose()
