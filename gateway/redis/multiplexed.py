"""One Redis connection that every caller shares, for the calls each request makes.

redis-py's client takes a connection from its pool for each command (a lock and a timeout to
wait for one), writes the command, reads the reply under another timeout, and gives the
connection back: about 75 µs of the gateway's CPU for one ``EVALSHA``. Here a command is
packed by hiredis and written at once on the one connection, and its caller waits on a future
queued behind those sent before it; hiredis reads the replies, which Redis sends in the order
it got the commands, and each completes the next future. Callers that send at the same time
are pipelined on the connection by themselves: no pool, no lock, no timeout per call.

- A command waits at most ``command_timeout`` seconds without any reply coming (the injected
  clock's timer ``redis_command_timeout:<client name>``, one per connection, pushed forward by
  each reply):
  then the oldest command fails with ``redis.exceptions.TimeoutError``, the connection is
  dropped (later replies would answer the wrong callers) and every command still waiting on
  it fails with ``redis.exceptions.ConnectionError``.
- The connection is opened on the first command and again on the first command after it was
  lost (its connect, within ``connect_timeout`` on the timer ``redis_connect_timeout:<name>``, then
  ``AUTH``, ``SELECT`` and ``CLIENT SETNAME`` as redis-py sends them). A command is never sent
  twice: one lost with its connection fails, since it may have run.
- A connection that sent nothing for ``health_check_interval`` seconds sends a ``PING`` (the
  timer ``redis_health_check:<name>``, on the injected clock, as redis-py's
  ``health_check_interval``, but in the background: no request waits for it). A connection that
  died silently while idle (a NAT or load balancer that forgot it, a host gone) then fails on the
  ``PING``'s timeout and the next command opens a new one, instead of that command waiting out
  the timeout and failing; the ``PING`` also keeps such middleboxes from forgetting it.
- An error reply raises what redis-py raises for it (``NOSCRIPT`` is ``NoScriptError``, so a
  script is loaded and called again as with redis-py; others ``ResponseError`` and its kin).

Only for one server (``redis://``, ``rediss://``, ``unix://``, the embedded one): a cluster's
commands go to the node of their slot and a sentinel's to the current primary, which
redis-py's clients follow (gateway/redis/connection.py chooses).
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

import hiredis
from redis._parsers import BaseParser
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import DataError
from redis.exceptions import TimeoutError as RedisTimeoutError

from gateway.clock import Clock, QuietTimer, TimerHandle

COMMAND_TIMER = "redis_command_timeout"
CONNECT_TIMER = "redis_connect_timeout"
HEALTH_TIMER = "redis_health_check"
_PING = b"*1\r\n$4\r\nPING\r\n"


def timer_name(timer: str, client_name: str | None) -> str:
    """The name on the clock of a connection's timer (``COMMAND_TIMER`` or ``CONNECT_TIMER``),
    told apart by the connection's client name: ``redis_command_timeout:gateway-admission``."""
    return f"{timer}:{client_name}" if client_name else timer


# What hiredis returns while a reply is incomplete (None and False are replies).
_MORE = object()
# An error reply as the exception redis-py raises for it (hiredis builds it while parsing).
_ERROR_OF: Callable[[str], Exception] = BaseParser.parse_error


def _pack(args: tuple[Any, ...]) -> bytes:
    try:
        packed: bytes = hiredis.pack_command(args)
    except TypeError as exc:  # None, a bool, an object: what redis-py refuses as DataError
        raise DataError(str(exc)) from None
    return packed


@dataclass(frozen=True, slots=True)
class Target:
    """Where the server is and how a connection introduces itself."""

    host: str = "localhost"
    port: int = 6379
    path: str | None = None  # a Unix socket instead of host and port
    tls: Callable[[], ssl.SSLContext] | None = None  # builds the context of a TLS connection
    username: str | None = None
    password: str | None = None
    db: int = 0
    name: str | None = None  # CLIENT SETNAME

    def __str__(self) -> str:
        return self.path if self.path is not None else f"{self.host}:{self.port}"

    async def open(self, loop: asyncio.AbstractEventLoop, link: _Link) -> None:
        if self.path is not None:
            await loop.create_unix_connection(lambda: link, self.path)
        elif self.tls is not None:
            await loop.create_connection(
                lambda: link, self.host, self.port, ssl=self.tls(), server_hostname=self.host
            )
        else:
            await loop.create_connection(lambda: link, self.host, self.port)

    def introductions(self) -> list[tuple[Any, ...]]:
        """The commands a new connection sends before any other (as redis-py's do)."""
        commands: list[tuple[Any, ...]] = []
        if self.username or self.password:
            password = self.password or ""
            commands.append(("AUTH", self.username, password) if self.username else ("AUTH", password))
        if self.db:
            commands.append(("SELECT", self.db))
        if self.name:
            commands.append(("CLIENT", "SETNAME", self.name))
        return commands


class _Stall(QuietTimer):
    """Fails the link's commands once ``interval`` seconds pass with commands waiting and no
    reply; stops when it finds none waiting (the link arms a new one for the next command)."""

    __slots__ = ("_link",)

    def __init__(self, link: _Link, clock: Clock, interval: float) -> None:
        self._link = link
        super().__init__(clock, interval, name=link.owner.command_timer)

    def _quiet(self, quiet: float) -> None:
        link = self._link
        link.stall = None
        if link.waiting:
            link.fail(
                RedisTimeoutError(f"Timeout reading from {link.target}"),
                f"Connection to {link.target} dropped: an earlier command timed out",
            )


class _Heartbeat:
    """Every ``interval`` seconds: a ``PING`` if the link sent nothing since the last look and
    waits for nothing (a reply it waits for is already a health check, under the stall timer)."""

    __slots__ = ("_handle", "_link", "_seen")

    def __init__(self, link: _Link) -> None:
        self._link = link
        self._seen = link.sent
        self._handle: TimerHandle | None = None
        self._arm()

    def _arm(self) -> None:
        owner = self._link.owner
        self._handle = owner.clock.call_later(
            owner.health_check_interval, self._look, name=owner.health_timer
        )

    def _look(self) -> None:
        link = self._link
        if self._handle is None or link.failed:
            return
        if link.sent == self._seen and not link.waiting:
            link.send(_PING).add_done_callback(_retrieved)
        self._seen = link.sent
        self._arm()

    def stop(self) -> None:
        handle, self._handle = self._handle, None
        if handle is not None:
            handle.cancel()


def _retrieved(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()  # a failed PING fails its link; nobody else waits for it


class _Link(asyncio.Protocol):
    """One connection: the futures of the commands sent on it, in the order sent."""

    def __init__(self, owner: MultiplexedRedis, loop: asyncio.AbstractEventLoop) -> None:
        self.owner = owner
        self.target = owner.target
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.waiting: deque[asyncio.Future[Any]] = deque()
        self.stall: _Stall | None = None
        self.heartbeat: _Heartbeat | None = None
        self.sent = 0  # writes so far (the heartbeat's sign of activity)
        self.failed = False
        self._reader = hiredis.Reader(replyError=_ERROR_OF, notEnoughData=_MORE)

    # -- sending ---------------------------------------------------------------------------------
    def send(self, packed: bytes) -> asyncio.Future[Any]:
        """Write one packed command; the future of its reply."""
        future: asyncio.Future[Any] = self.loop.create_future()
        self._write(packed, future)
        return future

    async def send_many(self, commands: Sequence[Sequence[Any]]) -> list[Any]:
        """Every command's reply in order, an error reply as its exception (not raised)."""
        if not commands:
            return []
        create = self.loop.create_future
        packed = b"".join([_pack(tuple(command)) for command in commands])
        futures: list[asyncio.Future[Any]] = [create() for _ in commands]
        self._write(packed, *futures)
        try:
            await futures[-1]  # replies come in order: the last one's means all are in
        except asyncio.CancelledError:
            for future in futures:
                future.cancel()  # a late reply is dropped, an error never left unretrieved
            raise
        except Exception:
            pass  # the last command's error: returned with the others below
        out: list[Any] = []
        for future in futures:
            error = future.exception()
            out.append(future.result() if error is None else error)
        return out

    def _write(self, packed: bytes, *futures: asyncio.Future[Any]) -> None:
        if self.failed or self.transport is None:
            raise RedisConnectionError(f"Connection to {self.target} closed.")
        self.transport.write(packed)
        self.sent += 1
        waiting = self.waiting
        if not waiting:  # the stall timer counts from now
            if self.stall is None:
                self.stall = _Stall(self, self.owner.clock, self.owner.command_timeout)
            else:
                self.stall.touch()
        waiting.extend(futures)

    # -- the protocol ----------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        reader, waiting = self._reader, self.waiting
        reader.feed(data)
        answered = False
        while True:
            try:
                reply = reader.gets()
            except hiredis.ProtocolError as exc:
                self.fail(RedisConnectionError(f"Protocol error from {self.target}: {exc}"), "")
                return
            if reply is _MORE:
                break
            if not waiting:
                self.fail(RedisConnectionError(f"{self.target} sent a reply nobody asked for"), "")
                return
            answered = True
            future = waiting.popleft()
            if future.done():  # its caller was cancelled: the reply is dropped
                continue
            if isinstance(reply, Exception):
                future.set_exception(reply)
            else:
                future.set_result(reply)
        if answered and self.stall is not None:
            self.stall.touch()

    def connection_lost(self, exc: Exception | None) -> None:
        self.fail(RedisConnectionError(f"Connection to {self.target} closed by server."), "")

    def fail(self, first: Exception, others: str) -> None:
        """Drop the connection: the oldest waiting command fails with ``first``, the others
        with a ``ConnectionError`` saying ``others`` (``first``'s message when empty)."""
        if self.failed:
            return
        self.failed = True
        self.owner.forget(self)
        if self.stall is not None:
            self.stall._disarm()
            self.stall = None
        if self.heartbeat is not None:
            self.heartbeat.stop()
            self.heartbeat = None
        if self.transport is not None:
            self.transport.abort()
        error: Exception = first
        while self.waiting:
            future = self.waiting.popleft()
            if not future.done():
                future.set_exception(error)
            error = RedisConnectionError(others or str(first))


class MultiplexedRedis:
    """The shared connection: ``execute_command``, ``evalsha`` and ``script_load`` as on a
    redis-py client, and ``pipeline_execute`` for a batch. Built once in the app lifespan,
    closed with :meth:`aclose`."""

    def __init__(
        self,
        target: Target,
        clock: Clock,
        *,
        command_timeout: float,
        connect_timeout: float,
        health_check_interval: float = 30.0,
    ) -> None:
        self.target = target
        self.clock = clock
        self.command_timeout = command_timeout
        self.connect_timeout = min(connect_timeout, command_timeout)
        self.health_check_interval = health_check_interval
        self.command_timer = timer_name(COMMAND_TIMER, target.name)
        self.connect_timer = timer_name(CONNECT_TIMER, target.name)
        self.health_timer = timer_name(HEALTH_TIMER, target.name)
        self._link: _Link | None = None
        self._opening: asyncio.Task[_Link] | None = None
        self._closed = False

    @property
    def connected(self) -> bool:
        return self._link is not None

    @property
    def in_flight(self) -> int:
        """Commands sent and not answered yet (their callers' or cancelled callers')."""
        return len(self._link.waiting) if self._link is not None else 0

    async def execute_command(self, *args: Any) -> Any:
        link = self._link or await self._connect()
        return await link.send(_pack(args))

    async def evalsha(self, sha: str, numkeys: int, *keys_and_args: Any) -> Any:
        link = self._link or await self._connect()
        return await link.send(_pack(("EVALSHA", sha, numkeys, *keys_and_args)))

    async def script_load(self, source: str) -> Any:
        return await self.execute_command("SCRIPT", "LOAD", source)

    async def pipeline_execute(self, commands: Sequence[Sequence[Any]]) -> list[Any]:
        """The replies of ``commands`` sent together, in order; an error reply is returned as
        its exception (redis-py's ``execute(raise_on_error=False)``). A lost connection raises."""
        link = self._link or await self._connect()
        replies = await link.send_many(commands)
        for reply in replies:
            if isinstance(reply, RedisConnectionError | RedisTimeoutError):
                raise reply
        return replies

    async def aclose(self) -> None:
        self._closed = True
        if self._opening is not None:
            self._opening.cancel()
        if self._link is not None:
            self._link.fail(RedisConnectionError("Connection closed by the gateway."), "")

    # -- connecting -----------------------------------------------------------------------------
    def forget(self, link: _Link) -> None:
        if self._link is link:
            self._link = None

    async def _connect(self) -> _Link:
        if self._closed:
            raise RedisConnectionError("The connection was closed by the gateway.")
        opening = self._opening
        if opening is None:
            opening = self._opening = asyncio.get_running_loop().create_task(
                self._open(), name="redis-connect"
            )
            opening.add_done_callback(self._opened)
        # Shielded: a caller that is cancelled leaves the connect to the others.
        return await asyncio.shield(opening)

    def _opened(self, task: asyncio.Task[_Link]) -> None:
        self._opening = None
        if not task.cancelled():
            task.exception()  # retrieved here even if every caller was cancelled meanwhile

    async def _open(self) -> _Link:
        loop = asyncio.get_running_loop()
        link = _Link(self, loop)
        task = asyncio.current_task()
        assert task is not None
        expired = False

        def expire() -> None:
            nonlocal expired
            expired = True
            task.cancel()

        timer = self.clock.call_later(self.connect_timeout, expire, name=self.connect_timer)
        try:
            await self.target.open(loop, link)
        except asyncio.CancelledError:
            if not expired:
                raise
            task.uncancel()
            raise RedisTimeoutError(f"Timeout connecting to {self.target}") from None
        except OSError as exc:  # refused, unreachable, a TLS handshake that failed
            raise RedisConnectionError(f"Error connecting to {self.target}: {exc}") from exc
        finally:
            timer.cancel()
        try:
            # Answered before any other command is sent: a wrong database must fail them all.
            for reply in await link.send_many(self.target.introductions()):
                if isinstance(reply, Exception):
                    raise reply
        except BaseException as exc:
            link.fail(RedisConnectionError(f"Connection to {self.target} not set up: {exc}"), "")
            raise
        if self._closed:
            link.fail(RedisConnectionError("Connection closed by the gateway."), "")
            raise RedisConnectionError("The connection was closed by the gateway.")
        if link.failed:  # lost after its introductions were answered, before this task resumed
            raise RedisConnectionError(f"Connection to {self.target} closed by server.")
        self._link = link
        link.heartbeat = _Heartbeat(link)
        return link
