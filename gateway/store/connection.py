"""The Redis connection: one pool per process, created in the app lifespan."""

from __future__ import annotations

import redis.asyncio as aioredis


def redis_client(url: str, *, max_connections: int = 64) -> aioredis.Redis:
    """A pooled client. ``decode_responses`` stays off: the gateway stores msgspec bytes."""
    return aioredis.Redis.from_url(
        url,
        max_connections=max_connections,
        socket_connect_timeout=2.0,
        socket_timeout=5.0,
        health_check_interval=30,
    )


async def ping(client: aioredis.Redis) -> bool:
    try:
        return bool(await client.ping())
    except Exception:
        return False
