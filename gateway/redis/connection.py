"""The Redis connections of a process, created in the app lifespan.

Two clients, so that waiting for events can never starve the request path:

- the command client (:func:`connect`): every ordinary command (policy admission, the
  Responses store, chat operations) on a bounded pool of ``[redis] max_connections``. When all
  are in use a command waits up to ``[redis] pool_timeout_seconds`` for one to be released, then
  fails with ``ConnectionError("No connection available.")``, which every caller already handles
  as Redis being unavailable;
- the blocking client (:func:`blocking_client`): its own small pool for the commands that block
  on the server (``XREAD BLOCK``, ``XREADGROUP BLOCK``). Only per-process readers use it (the
  chat event reader, gateway/chats/events.py, which multiplexes every open chat stream and
  running turn's watcher; the chat job reader), so its size does not grow with the number of
  streams.

Three deployments, one client interface (``[redis] mode``):

- ``single``: one server (``redis://``, ``rediss://`` for TLS, ``unix://``), or the embedded one;
- ``cluster``: a Redis Cluster (or Valkey cluster) from seed nodes, through redis-py's cluster
  client, which follows ``MOVED``/``ASK`` and retries ``TRYAGAIN``, ``CLUSTERDOWN`` and
  connection errors (a failed primary, until its replica is promoted) with a short backoff.
  Here every command, retries included, ends within ``command_timeout_seconds``; what is still
  failing then is raised as a ``RedisError`` (a ``ConnectionError`` or ``TimeoutError``), which
  callers handle as Redis being unavailable (``policy.on_store_error``, a 503), never as a bug.
  Each node gets ``max_connections``; at most ``max_connections`` commands (or pipelines) are
  in flight per process, the others wait up to ``pool_timeout_seconds``. The blocking client
  holds at most one read per chat shard (gateway/redis/keys.py) plus the job reader's;
- ``sentinel``: a primary with replicas; the sentinels name the primary, and connections follow
  a failover to the promoted replica: a command that finds no primary is sent again with a
  short backoff for about ``command_timeout_seconds``.

On one server the policy's calls for each request go instead over two shared connections
(:func:`multiplexed`, gateway/redis/multiplexed.py), on which concurrent callers are pipelined
by themselves: one for admissions (``gateway-admission``), one for what follows them in the
background (``gateway-settlement``: settlement batches, lease renewals), so that each has its
own command timer. A cluster or sentinel deployment keeps redis-py's client, which routes by
slot and follows a failover.

Connections are named (``CLIENT SETNAME``) so an operator sees in ``CLIENT LIST`` which pool a
connection belongs to.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
from collections.abc import AsyncIterator, Mapping
from typing import Any, cast
from urllib.parse import unquote, urlsplit

import redis.asyncio as aioredis
from redis.asyncio.cluster import ClusterNode, ClusterPipeline, RedisCluster
from redis.asyncio.connection import RedisSSLContext, SSLConnection, UnixDomainSocketConnection, parse_url
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool
from redis.backoff import EqualJitterBackoff, ExponentialWithJitterBackoff
from redis.exceptions import (
    ClusterError,
    RedisClusterException,
    SlotNotCoveredError,
    TryAgainError,
)
from redis.exceptions import (
    ConnectionError as RedisConnectionError,
)
from redis.exceptions import (
    TimeoutError as RedisTimeoutError,
)

from gateway.clock import Clock
from gateway.config.settings import RedisSettings
from gateway.redis.keys import CHAT_SHARDS
from gateway.redis.multiplexed import MultiplexedRedis, Target

COMMANDS_NAME = "gateway"
BLOCKING_NAME = "gateway-blocking"
ADMISSION_NAME = "gateway-admission"
SETTLEMENT_NAME = "gateway-settlement"
# What a url may say for the shared connection to take it (anything else: redis-py's client).
_TARGET_FIELDS = frozenset({"host", "port", "path", "db", "username", "password", "connection_class"})
# The blocking client's pool: the chat event reader and the chat job reader.
BLOCKING_CONNECTIONS = 2
# The longest server-side block of a blocking read (the chat readers block 1 s).
BLOCK_SECONDS = 1.0
# A cluster command refused for now (TRYAGAIN, CLUSTERDOWN) is sent again after this long.
AGAIN_SECONDS = 0.05


def redis_client(
    url: str,
    *,
    max_connections: int = 64,
    pool_timeout: float = 2.0,
    command_timeout: float = 5.0,
    connect_timeout: float = 2.0,
    tls: Mapping[str, Any] | None = None,
) -> aioredis.Redis:
    """The command client of one server. ``decode_responses`` stays off: the gateway stores
    msgspec bytes. ``tls``: the options of a ``rediss://`` url's connections (:func:`tls_options`)."""
    pool = aioredis.BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=pool_timeout,
        socket_connect_timeout=min(connect_timeout, command_timeout),
        socket_timeout=command_timeout,
        health_check_interval=30,
        client_name=COMMANDS_NAME,
        **(tls or {}),
    )
    return aioredis.Redis.from_pool(pool)


def tls_options(settings: RedisSettings) -> dict[str, Any]:
    """redis-py's connection options for ``[redis] tls_*`` (none without a ``rediss`` url): the
    server's certificate is always verified, against ``tls_ca_file`` or the system's CAs."""
    if not settings.tls:
        return {}
    options: dict[str, Any] = {
        "ssl_cert_reqs": "required",
        "ssl_check_hostname": settings.tls_check_hostname,
    }
    if settings.tls_ca_file is not None:
        options["ssl_ca_certs"] = settings.tls_ca_file
    if settings.tls_cert_file is not None:
        options["ssl_certfile"] = settings.tls_cert_file
        options["ssl_keyfile"] = settings.tls_key_file
    return options


def connect(settings: RedisSettings, url: str | None = None) -> aioredis.Redis:
    """The command client for ``settings`` (``url`` replaces ``settings.url``: the embedded
    server's). A cluster client offers the same command methods as ``Redis``; it is typed as
    one so that the stores take either."""
    url = url if url is not None else settings.url
    mode = settings.effective_mode
    if mode == "cluster":
        return cast(aioredis.Redis, cluster_client(settings, url))
    if mode == "sentinel":
        return sentinel_client(settings, url)
    assert url is not None, "one server needs a url (the embedded server's, or redis.url)"
    return redis_client(
        url,
        max_connections=settings.max_connections,
        pool_timeout=settings.pool_timeout_seconds,
        command_timeout=settings.command_timeout_seconds,
        connect_timeout=settings.connect_timeout_seconds,
        tls=tls_options(settings),
    )


def multiplexed(
    settings: RedisSettings, clock: Clock, url: str | None = None, *, name: str = ADMISSION_NAME
) -> MultiplexedRedis | None:
    """A shared connection to one server, named ``name`` (``url`` replaces ``settings.url``:
    the embedded server's), or None where redis-py's client must carry its calls: a cluster,
    a sentinel, a url with options the shared connection does not know."""
    url = url if url is not None else settings.url
    if url is None or settings.effective_mode != "single":
        return None
    parts = parse_url(url)
    if not parts.keys() <= _TARGET_FIELDS:
        return None
    kind = parts.get("connection_class")
    tls: Any = None
    if kind is SSLConnection:
        options = {name.removeprefix("ssl_"): value for name, value in tls_options(settings).items()}
        tls = RedisSSLContext(**options).get
    elif kind not in (None, UnixDomainSocketConnection):
        return None
    target = Target(
        host=parts.get("host", "localhost"),
        port=int(parts.get("port", 6379)),
        path=parts.get("path"),
        tls=tls,
        username=parts.get("username"),
        password=parts.get("password"),
        db=int(parts.get("db", 0)),
        name=name,
    )
    return MultiplexedRedis(
        target,
        clock,
        command_timeout=settings.command_timeout_seconds,
        connect_timeout=settings.connect_timeout_seconds,
    )


def blocking_client(
    commands: aioredis.Redis,
    *,
    max_connections: int = BLOCKING_CONNECTIONS,
    name: str = BLOCKING_NAME,
    socket_timeout: float | None = 5.0,
) -> aioredis.Redis:
    """A client for blocking reads on the same deployment as ``commands``, with its own pool.

    ``socket_timeout`` must stay above the block time of its readers (1 s): a read that gets no
    reply for that long finds a dead connection. A reader that finds the pool in use waits for
    it as long as the command pool lets commands wait. On a cluster the pool holds one read per
    chat shard besides ``max_connections``."""
    if isinstance(commands, ClusterClient):
        return cast(
            aioredis.Redis, commands.blocking_twin(max_connections + CHAT_SHARDS, name, socket_timeout)
        )
    source = commands.connection_pool
    timeout = source.timeout if isinstance(source, aioredis.BlockingConnectionPool) else 2.0
    if isinstance(source, SentinelConnectionPool):
        return cast(
            aioredis.Redis,
            source.sentinel_manager.master_for(
                source.service_name,
                connection_pool_class=SentinelBlockingPool,
                max_connections=max_connections,
                timeout=timeout,
                client_name=name,
                socket_timeout=socket_timeout,
            ),
        )
    kwargs = {**source.connection_kwargs, "client_name": name, "socket_timeout": socket_timeout}
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


def _host_port(value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    return host.strip("[]"), int(port)


# -- sentinel ------------------------------------------------------------------------------------
class SentinelBlockingPool(SentinelConnectionPool, aioredis.BlockingConnectionPool):
    """The primary's connections found through the sentinels, in a pool where a command waits
    ``timeout`` seconds for a free connection (as on one server) instead of failing at once."""


def sentinel_client(settings: RedisSettings, url: str | None) -> aioredis.Redis:
    deadline = settings.command_timeout_seconds
    kwargs: dict[str, Any] = {
        "socket_connect_timeout": min(settings.connect_timeout_seconds, deadline),
        "socket_timeout": deadline,
        "health_check_interval": 30,
        # Through a failover (the primary gone, the sentinels electing its replica): again,
        # each time asking the sentinels for the primary, for about the command timeout.
        "retry": Retry(EqualJitterBackoff(cap=0.5, base=0.05), retries=max(3, int(deadline / 0.375))),
        "retry_on_error": [RedisConnectionError, RedisTimeoutError],
    }
    if url is not None:
        parts = urlsplit(url)
        kwargs["ssl"] = parts.scheme == "rediss"
        kwargs.update(tls_options(settings))
        if parts.username:
            kwargs["username"] = unquote(parts.username)
        if parts.password:
            kwargs["password"] = unquote(parts.password)
        db = parts.path.strip("/")
        if db:
            kwargs["db"] = int(db)
    sentinel_kwargs: dict[str, Any] = {"socket_connect_timeout": 2.0, "socket_timeout": 2.0}
    if settings.sentinel_password is not None:
        sentinel_kwargs["password"] = settings.sentinel_password
    sentinel = Sentinel(
        [_host_port(s) for s in settings.sentinels], sentinel_kwargs=sentinel_kwargs, **kwargs
    )
    client: aioredis.Redis = sentinel.master_for(
        settings.service_name,
        connection_pool_class=SentinelBlockingPool,
        max_connections=settings.max_connections,
        timeout=settings.pool_timeout_seconds,
        client_name=COMMANDS_NAME,
    )
    return client


# -- cluster -------------------------------------------------------------------------------------
_HOLDING: contextvars.ContextVar[bool] = contextvars.ContextVar("gateway_redis_permit", default=False)


class ClusterClient(RedisCluster):
    """redis-py's cluster client with the gateway's bounds: a command (retries included) ends
    within ``deadline`` seconds, at most ``permits`` commands or pipelines are in flight (the
    others wait ``pool_timeout`` seconds, as on a single server's pool), and a cluster that
    cannot be reached fails as a ``RedisError``."""

    def __init__(self, *, deadline: float | None, pool_timeout: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._recipe = kwargs
        self.deadline = deadline
        self.pool_timeout = pool_timeout
        self._permits = asyncio.Semaphore(int(kwargs["max_connections"]))

    def blocking_twin(self, max_connections: int, name: str, socket_timeout: float | None) -> ClusterClient:
        """A client of the same cluster for blocking reads, with its own connections."""
        seeds = [ClusterNode(n.host, n.port) for n in self.get_nodes()] or self._recipe["startup_nodes"]
        recipe = {
            **self._recipe,
            "startup_nodes": seeds,
            "max_connections": max_connections,
            "client_name": name,
            "socket_timeout": socket_timeout,
        }
        # A read may block up to its block time on top of the command's budget; without a socket
        # timeout (a reader that blocks longer), no deadline either.
        deadline = None if socket_timeout is None or self.deadline is None else self.deadline + BLOCK_SECONDS
        return ClusterClient(deadline=deadline, pool_timeout=self.pool_timeout, **recipe)

    @contextlib.asynccontextmanager
    async def bounded(self) -> AsyncIterator[None]:
        """A permit (unless this task holds one: a command the client sends while running one)
        and the deadline; errors that mean "the cluster cannot serve this now" become
        ``RedisError``s."""
        holding = _HOLDING.get()
        if not holding:
            try:
                async with asyncio.timeout(self.pool_timeout):
                    await self._permits.acquire()
            except TimeoutError:
                raise RedisConnectionError("No connection available.") from None
            token = _HOLDING.set(True)
        try:
            try:
                async with asyncio.timeout(self.deadline) as window:
                    yield
            except TimeoutError:
                if window.expired():
                    raise RedisTimeoutError(f"no answer from the cluster within {self.deadline}s") from None
                raise
            except SlotNotCoveredError as exc:
                raise RedisConnectionError(f"cluster slot not served: {exc}") from exc
            except RedisClusterException as exc:
                if type(exc).__name__ == "RedisClusterUnreachableError":
                    raise RedisConnectionError(f"cluster unreachable: {exc}") from exc
                raise
        finally:
            if not holding:
                _HOLDING.reset(token)
                self._permits.release()

    async def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        async with self.bounded():
            while True:
                try:
                    return await super().execute_command(*args, **kwargs)
                except (TryAgainError, ClusterError):
                    # TRYAGAIN (a script's keys split between two nodes while their slot moves),
                    # CLUSTERDOWN, or redirections that did not settle: nothing ran; again until
                    # the deadline.
                    await asyncio.sleep(AGAIN_SECONDS)

    def pipeline(self, transaction: Any | None = None, shard_hint: Any | None = None) -> ClusterPipeline:
        if shard_hint:
            raise RedisClusterException("shard_hint is deprecated in cluster mode")
        return _BoundedPipeline(self, transaction)  # type: ignore[abstract]  # set by ClusterPipeline


class _BoundedPipeline(ClusterPipeline):
    """A cluster pipeline under its client's permit and deadline."""

    def __init__(self, client: ClusterClient, transaction: Any | None = None) -> None:
        super().__init__(client, transaction)
        self._bounded_by = client

    async def execute(self, raise_on_error: bool = True, allow_redirections: bool = True) -> list[Any]:
        async with self._bounded_by.bounded():
            result: list[Any] = await super().execute(raise_on_error, allow_redirections)
            return result


def cluster_seeds(settings: RedisSettings, url: str | None) -> tuple[list[tuple[str, int]], dict[str, Any]]:
    """The seed nodes and the connection options (credentials, TLS) of a cluster's settings."""
    seeds: list[tuple[str, int]] = []
    options: dict[str, Any] = {}
    if url is not None:
        scheme, rest = url.split("://", 1)
        netloc = rest.split("/", 1)[0].split("?", 1)[0]
        credentials, _, hosts = netloc.rpartition("@")
        if credentials:
            user, _, password = credentials.partition(":")
            if user:
                options["username"] = unquote(user)
            if password:
                options["password"] = unquote(password)
        options["ssl"] = scheme in ("rediss", "rediss+cluster")
        seeds += [_host_port(h) for h in hosts.split(",") if h]
    return seeds, options


def cluster_client(settings: RedisSettings, url: str | None) -> ClusterClient:
    seeds, options = cluster_seeds(settings, url)
    deadline = settings.command_timeout_seconds
    # Retries cover a primary's failover (a few node timeouts) inside the deadline.
    retry = Retry(ExponentialWithJitterBackoff(base=0.02, cap=0.5), retries=max(3, int(deadline / 0.25)))
    return ClusterClient(
        deadline=deadline,
        pool_timeout=settings.pool_timeout_seconds,
        startup_nodes=[ClusterNode(host, port) for host, port in seeds],
        max_connections=settings.max_connections,
        retry=retry,
        socket_connect_timeout=min(settings.connect_timeout_seconds, deadline),
        socket_timeout=deadline,
        client_name=COMMANDS_NAME,
        **options,
        **tls_options(settings),
    )
