"""uvicorn's httptools protocol with the limits uvicorn does not enforce.

uvicorn (with httptools) closes an idle keep-alive connection, and nothing else: a connection
that never sends a byte, headers of any size or number, and headers or a body sent slowly are
all held forever. :class:`GuardedHttpProtocol` adds, per connection:

- a **phase** with one **deadline** (a float, no timer per request): waiting for a request's
  headers (``header_timeout``, from the connection's opening for its first request and from the
  first byte of each later one), reading its body (``body_timeout``, from the end of the
  headers), busy (the answer is the app's business: no deadline), idle between requests
  (``keepalive_timeout``). :func:`sweep`, run by the server a few times a second, ends the
  connections whose deadline has passed: a connection that sent nothing is closed, one in the
  middle of a request gets 408, an idle one is closed;
- the size of a request's line and headers (``max_header_bytes``, counted as they arrive, so a
  huge header is refused before it is buffered whole) and their number (``max_headers``): 431;
- the number of open connections (``max_connections``): a request on a connection opened
  beyond it gets 503 with ``retry-after``; a connection opened beyond ``hard_cap`` is closed at
  once, so a flood cannot use up the process's file descriptors.

Every refusal is answered in OpenAI's error shape and closes the connection. Requests that
httptools cannot parse get 400 in the same shape (uvicorn answers them in plain text).
"""

from __future__ import annotations

import asyncio
import logging
import math
import signal
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import httptools
import msgspec
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import Server, ServerState

from gateway.config.settings import ServerSettings
from gateway.server.memory import IdleTrim

# A connection's phases (see the module docstring).
HEAD = 0
BODY = 1
BUSY = 2
IDLE = 3

# The sweep runs on uvicorn's 0.1 s tick, every this many ticks at most (1 s).
_TICK = 0.1
_MAX_SWEEP_TICKS = 10
# Whether the worker has gone quiet (then: garbage collected, free memory returned) is looked
# at every this many ticks (0.5 s).
_TRIM_TICKS = 5
# After the drain, the requests still running get this long to end in band and write what
# they must (a stored response's record) before they are cancelled.
END_GRACE = 5.0

log = logging.getLogger("uvicorn.error")  # beside uvicorn's own shutdown lines


@dataclass(frozen=True)
class HttpLimits:
    """The HTTP limits of one worker process (see :class:`GuardedHttpProtocol`)."""

    max_connections: int = 4096
    max_header_bytes: int = 32 * 1024
    max_headers: int = 100
    header_timeout: float = 10.0
    body_timeout: float = 60.0
    keepalive_timeout: float = 5.0

    @classmethod
    def from_settings(cls, server: ServerSettings, *, max_connections: int | None = None) -> HttpLimits:
        return cls(
            max_connections=max_connections or server.max_connections,
            max_header_bytes=server.max_header_bytes,
            max_headers=server.max_headers,
            header_timeout=server.header_timeout_seconds,
            body_timeout=server.body_timeout_seconds,
            keepalive_timeout=server.keepalive_timeout_seconds,
        )

    @property
    def hard_cap(self) -> int:
        """Connections beyond this are closed as soon as they open (an eighth over the limit,
        at least 16), so that those just over it still get their 503."""
        return self.max_connections + max(16, self.max_connections // 8)

    @property
    def sweep_ticks(self) -> int:
        """How many 0.1 s ticks between sweeps: a quarter of the shortest timeout, at most 1 s."""
        shortest = min(self.header_timeout, self.body_timeout, self.keepalive_timeout)
        return max(1, min(_MAX_SWEEP_TICKS, int(shortest / 4 / _TICK)))


def _answer(status: int, reason: str, error_type: str, code: str, message: str, extra: bytes = b"") -> bytes:
    body = msgspec.json.encode(
        {"error": {"message": message, "type": error_type, "param": None, "code": code}}
    )
    head = (
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n"
    ).encode()
    return head + extra + b"\r\n" + body


BAD_REQUEST = _answer(
    400, "Bad Request", "invalid_request_error", "bad_http_request", "Invalid HTTP request."
)
REQUEST_TIMEOUT = _answer(
    408,
    "Request Timeout",
    "invalid_request_error",
    "request_timeout",
    "The request was not received in time.",
)
HEADERS_TOO_LARGE = _answer(
    431,
    "Request Header Fields Too Large",
    "invalid_request_error",
    "request_headers_too_large",
    "The request's headers are too large or too many.",
)
TOO_MANY_CONNECTIONS = _answer(
    503,
    "Service Unavailable",
    "service_unavailable_error",
    "too_many_connections",
    "The gateway has too many open connections; retry shortly.",
    b"retry-after: 1\r\n",
)


class _Refusal(Exception):
    """Raised from a parser callback: stops parsing; the answer is written and the connection closed."""

    def __init__(self, answer: bytes) -> None:
        super().__init__()
        self.answer = answer


class GatewayConfig(Config):
    """uvicorn's config with the gateway's HTTP limits."""

    def __init__(self, app: Any, *, limits: HttpLimits, **kwargs: Any) -> None:
        super().__init__(app, http=GuardedHttpProtocol, **kwargs)
        self.limits = limits


class GuardedHttpProtocol(HttpToolsProtocol):
    """:class:`HttpToolsProtocol` with the gateway's limits (see the module docstring)."""

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        limits = config.limits if isinstance(config, GatewayConfig) else HttpLimits()
        self.limits = limits
        self.phase = HEAD
        self.deadline = math.inf
        self._began = False  # a byte of the current request has arrived
        self._head_bytes = 0  # bytes received while its headers were incomplete
        self._head_size = 0  # its request target and headers as parsed so far
        self._over_limit = False

    # -- connection --------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        limits = self.limits
        self.deadline = self.loop.time() + limits.header_timeout
        open_now = len(self.connections)
        if open_now > limits.max_connections:
            if open_now > limits.hard_cap:
                transport.close()
                return
            self._over_limit = True

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserCallbackError as exc:
            refusal = exc.__context__
            self._refuse(refusal.answer if isinstance(refusal, _Refusal) else BAD_REQUEST)
            return
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return
        except httptools.HttpParserError:
            self._refuse(BAD_REQUEST)
            return
        if self.phase == HEAD:
            self._head_bytes += len(data)
            if self._head_bytes > self.limits.max_header_bytes:
                self._refuse(HEADERS_TOO_LARGE)

    def _refuse(self, answer: bytes) -> None:
        self.phase = BUSY
        self.deadline = math.inf
        if not self.transport.is_closing():
            self.transport.write(answer)
            self.transport.close()

    # -- parser callbacks --------------------------------------------------------------------
    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self.phase != HEAD:  # a later request on this connection: its own header deadline
            self.phase = HEAD
            self.deadline = self.loop.time() + self.limits.header_timeout
        self._began = True
        self._head_bytes = 0
        self._head_size = 0

    def on_url(self, url: bytes) -> None:
        self.url += url
        self._head_size += len(url)
        if self._head_size > self.limits.max_header_bytes:
            raise _Refusal(HEADERS_TOO_LARGE)

    def on_header(self, name: bytes, value: bytes) -> None:
        # Headers that arrive within one read are measured here; data_received measures those
        # still incomplete after a read (a huge header is refused before it is whole).
        self._head_size += len(name) + len(value) + 4
        if len(self.headers) >= self.limits.max_headers or self._head_size > self.limits.max_header_bytes:
            raise _Refusal(HEADERS_TOO_LARGE)
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        if self._over_limit:
            raise _Refusal(TOO_MANY_CONNECTIONS)
        self.phase = BODY
        self.deadline = self.loop.time() + self.limits.body_timeout
        self._began = False
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        if self.phase == BODY:
            if self.cycle is not None and self.cycle.response_complete:
                self.phase = IDLE
                self.deadline = self.loop.time() + self.limits.keepalive_timeout
            else:
                self.phase = BUSY
                self.deadline = math.inf

    def on_response_complete(self) -> None:
        # uvicorn's, with the keep-alive deadline instead of a timer per request.
        self.server_state.total_requests += 1
        if self.transport.is_closing():
            return
        self.flow.resume_reading()
        if self.pipeline:
            cycle, app = self.pipeline.pop()
            self._start_asgi_task(cycle, app)
        elif self.phase == BUSY:
            self.phase = IDLE
            self.deadline = self.loop.time() + self.limits.keepalive_timeout

    # -- deadlines -----------------------------------------------------------------------------
    def expire(self) -> None:
        """The deadline of the current phase passed: end the connection (see the module docstring)."""
        self.deadline = math.inf
        if self.transport.is_closing():
            return
        cycle = self.cycle
        if self.phase == HEAD and self._began:
            self._refuse(REQUEST_TIMEOUT)
        elif self.phase == BODY and cycle is not None and not cycle.response_started:
            cycle.disconnected = True  # the app's next receive() says the client is gone
            cycle.message_event.set()
            self._refuse(REQUEST_TIMEOUT)
        else:
            self.transport.close()


def sweep(connections: Iterable[object], now: float) -> int:
    """End every guarded connection whose deadline is at or before ``now``; how many."""
    expired = [c for c in connections if isinstance(c, GuardedHttpProtocol) and c.deadline <= now]
    for connection in expired:
        connection.expire()
    return len(expired)


class GatewayServer(Server):
    """uvicorn's server, sweeping expired connections on its tick and saying when it is ready.

    ``on_ready`` runs once the server accepts connections; with ``ignore_sigint`` a Ctrl-C is
    left to the supervisor (a worker drains on the SIGTERM the supervisor sends it).
    """

    def __init__(
        self,
        config: GatewayConfig,
        *,
        on_ready: Callable[[], None] | None = None,
        ignore_sigint: bool = False,
        drain_seconds: float | None = None,
        on_drain_end: Callable[[list[asyncio.Task[Any]]], int] | None = None,
    ) -> None:
        super().__init__(config)
        self._ticks = config.limits.sweep_ticks
        self._on_ready = on_ready
        self._ignore_sigint = ignore_sigint
        graceful = config.timeout_graceful_shutdown
        self._drain = drain_seconds if drain_seconds is not None else graceful
        self._on_drain_end = on_drain_end
        self._idle_trim = IdleTrim()

    async def startup(self, sockets: list[Any] | None = None) -> None:
        await super().startup(sockets)
        if self.started and self._on_ready is not None:
            self._on_ready()

    async def on_tick(self, counter: int) -> bool:
        if counter % self._ticks == 0:
            sweep(self.server_state.connections, asyncio.get_running_loop().time())
        if counter % _TRIM_TICKS == 0:
            self._idle_trim.tick(len(self.server_state.tasks), asyncio.get_running_loop().time())
        return await super().on_tick(counter)

    async def shutdown(self, sockets: list[Any] | None = None) -> None:
        """The drain: stop accepting, let the answers in flight finish for ``drain_seconds``
        (the deadlines still enforced: a request whose body trickles in does not hold the drain
        open), then hand the requests still running to ``on_drain_end``, which ends them
        properly (a stream with its in-band error, its record written) within
        :data:`END_GRACE` seconds; whatever is left then is cancelled. The app shuts down last."""
        sweeping = asyncio.create_task(self._sweep_while_draining())
        try:
            log.info("Shutting down")
            for server in self.servers:
                server.close()
            for sock in sockets or []:
                sock.close()
            for connection in list(self.server_state.connections):
                connection.shutdown()
            await asyncio.sleep(_TICK)
            if not await self._settled_within(self._drain):
                running = [t for t in self.server_state.tasks if not t.done()]
                ended = self._on_drain_end(running) if self._on_drain_end is not None else 0
                log.warning(
                    "drain time is up: %d request(s) still running, %d ended in band", len(running), ended
                )
                if not await self._settled_within(END_GRACE):
                    log.error("cancelling %d request(s) still running", len(self.server_state.tasks))
                    for task in self.server_state.tasks:
                        task.cancel()
            if not self.force_exit:
                await self.lifespan.shutdown()
        finally:
            sweeping.cancel()

    async def _settled_within(self, seconds: float | None) -> bool:
        """Whether every connection and request task ended within ``seconds`` (None: no limit)."""
        try:
            async with asyncio.timeout(seconds):
                await self._wait_tasks_to_complete()
        except TimeoutError:
            return False
        return True

    async def _sweep_while_draining(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(_TICK)
            sweep(self.server_state.connections, loop.time())

    def handle_exit(self, sig: int, frame: Any) -> None:
        if self._ignore_sigint and sig == signal.SIGINT:
            return
        super().handle_exit(sig, frame)
