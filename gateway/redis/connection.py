"""The Redis connections of a process, created in the app lifespan.

Two clients, so that waiting for events can never starve the request path:

- the command client (``redis_client``): every ordinary command (policy admission, the
  Responses store, chat operations) on a bounded pool of ``[redis] max_connections``. When all
  are in use a command waits up to ``[redis] pool_timeout_seconds`` for one to be released (a
  ``BlockingConnectionPool``), then fails with ``ConnectionError("No connection available.")``,
  which every caller already handles as Redis being unavailable;
- the blocking client (``blocking_client``): its own small pool for the commands that block on
  the server (``XREAD BLOCK``, ``XREADGROUP BLOCK``). Only per-process readers use it (the chat
  event reader, gateway/chats/events.py, which multiplexes every open chat stream and running
  turn's watcher; the chat job reader), so its size does not grow with the number of streams.

Connections are named (``CLIENT SETNAME``) so an operator sees in ``CLIENT LIST`` which pool a
connection belongs to.
"""

from __future__ import annotations

import redis.asyncio as aioredis

COMMANDS_NAME = "gateway"
BLOCKING_NAME = "gateway-blocking"
# The blocking client's pool: the chat event reader and the chat job reader.
BLOCKING_CONNECTIONS = 2


def redis_client(url: str, *, max_connections: int = 64, pool_timeout: float = 2.0) -> aioredis.Redis:
    """The command client. ``decode_responses`` stays off: the gateway stores msgspec bytes."""
    pool = aioredis.BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=pool_timeout,
        socket_connect_timeout=2.0,
        socket_timeout=5.0,
        health_check_interval=30,
        client_name=COMMANDS_NAME,
    )
    return aioredis.Redis.from_pool(pool)


def blocking_client(
    commands: aioredis.Redis,
    *,
    max_connections: int = BLOCKING_CONNECTIONS,
    name: str = BLOCKING_NAME,
    socket_timeout: float | None = 5.0,
) -> aioredis.Redis:
    """A client for blocking reads on the same server as ``commands``, with its own pool.

    ``socket_timeout`` must stay above the block time of its readers (1 s): a read that gets no
    reply for that long finds a dead connection. A reader that finds the pool in use waits for
    it as long as the command pool lets commands wait."""
    source = commands.connection_pool
    kwargs = {**source.connection_kwargs, "client_name": name, "socket_timeout": socket_timeout}
    timeout = source.timeout if isinstance(source, aioredis.BlockingConnectionPool) else 2.0
    pool = aioredis.BlockingConnectionPool(
        connection_class=source.connection_class,
        max_connections=max_connections,
        timeout=timeout,
        **kwargs,
    )
    return aioredis.Redis.from_pool(pool)


async def ping(client: aioredis.Redis) -> bool:
    try:
        return bool(await client.ping())
    except Exception:
        return False
