"""The upstream transport: httpx's API on our own pooled HTTP/1.1 connections.

httpx stays the seam (respx and ``httpx.MockTransport`` plug in there for unit tests); the bytes
move through :class:`~gateway.upstream.http11_connection.Http11Connection`, an asyncio protocol
with httptools' parser, because every layer of a general-purpose client costs CPU on the hot path
(see README, Performance). What it does and does not do:

* HTTP/1.1 with keep-alive, plain or TLS (certifi's roots, or the system's when ``SSL_CERT_FILE``
  or ``SSL_CERT_DIR`` is set), one pool of at most ``max_connections`` per transport, idle
  connections reused newest first and dropped after ``keepalive_expiry`` seconds;
* connect, pool and read timeouts from the request's ``timeout`` extension, on the injected
  clock; a request sent on a reused connection that the server closed cleanly before answering
  any byte (its keep-alive ran out as the request went out) is sent once more on a new one; a
  reset is the caller's to classify and retry;
* an answer that is complete when its headers are read is returned with its body in memory;
  otherwise the body streams, with back-pressure on the socket; closing an unfinished body closes
  the connection, so the upstream sees the caller go away;
* a small body goes out in one write with its head; a large one (over 64 KiB, or given as
  :class:`BodyPieces`: an upload rewritten in place) is written after the head as it is, slice
  by slice as the socket takes it, never joined or copied whole;
* answer headers are capped at 64 KiB; the ``write`` timeout is not applied (the attempt's own
  timers bound a body the upstream does not read); HEAD is not supported;
* no proxies, redirects, cookies, compression or HTTP/2: upstream calls need none of them.

Failures are raised in httpx's exception tree, so the classifier sees one vocabulary.
"""

from __future__ import annotations

import asyncio
import os
import ssl
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import Any

import certifi
import httpx

from gateway.clock import Clock, TimerHandle
from gateway.upstream.http11_connection import (
    ConnectionClosed,
    Http11Connection,
    ProtocolViolation,
    ReadTimedOut,
)

Origin = tuple[str, str, int]
Piece = bytes | memoryview
_DEFAULT_PORTS = {"http": 80, "https": 443}
JOIN_LIMIT = 64 * 1024  # a body up to this size is sent in one buffer with its head


class BodyPieces(httpx.SyncByteStream, httpx.AsyncByteStream):
    """A request body as pieces sent one after the other, never joined (for instance an upload
    with one form field replaced: the untouched stretches are views of the body as received).
    Other transports (tests' mocks) read it as bytes."""

    __slots__ = ("pieces", "size")

    def __init__(self, pieces: Sequence[Piece]) -> None:
        self.pieces = tuple(pieces)
        self.size = sum(p.nbytes if isinstance(p, memoryview) else len(p) for p in self.pieces)

    def __iter__(self) -> Iterator[bytes]:
        for piece in self.pieces:
            yield bytes(piece)

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for piece in self.pieces:
            yield bytes(piece)


class WireRequest(httpx.Request):
    """An ``httpx.Request`` that carries the bytes this transport writes for it (``wire``: the
    request line, the headers and a small body) and where it goes (``origin``). Its ``headers``
    are built only when something reads them (another transport: a test's mock); this one
    writes ``wire`` as it is. :meth:`Upstream.request <gateway.upstream.provider.Upstream.request>`
    builds it from a head made once per path."""

    def __init__(
        self,
        method: str,
        url: httpx.URL,
        origin: Origin,
        fields: dict[str, str],
        wire: bytes,
        body: bytes,
        extensions: dict[str, Any],
    ) -> None:
        # Everything ``httpx.Request(method, url, content=body, headers=fields)`` sets, but the
        # headers, which wait until they are read.
        self.method = method
        self.url = url
        self.extensions = extensions
        self.stream = httpx.ByteStream(body)
        self._content = body
        self._fields = fields
        self._headers: httpx.Headers | None = None
        self.origin = origin
        self.wire = wire

    @property
    def headers(self) -> httpx.Headers:
        if self._headers is None:
            self._headers = httpx.Headers(self._fields)
        return self._headers

    @headers.setter
    def headers(self, value: httpx.Headers) -> None:
        self._headers = value


def default_ssl_context() -> ssl.SSLContext:
    if os.environ.get("SSL_CERT_FILE") or os.environ.get("SSL_CERT_DIR"):
        return ssl.create_default_context()
    return ssl.create_default_context(cafile=certifi.where())


def _mapped(exc: BaseException, request: httpx.Request) -> httpx.TransportError:
    if isinstance(exc, ReadTimedOut):
        return httpx.ReadTimeout(str(exc), request=request)
    if isinstance(exc, ConnectionClosed):
        if exc.reset:
            return httpx.ReadError(str(exc), request=request)
        return httpx.RemoteProtocolError(str(exc), request=request)
    if isinstance(exc, ProtocolViolation):
        return httpx.RemoteProtocolError(str(exc), request=request)
    return httpx.ReadError(str(exc) or type(exc).__name__, request=request)


class Body(httpx.AsyncByteStream):
    """The body of a streamed answer; closing it hands the connection back (or drops it)."""

    __slots__ = ("_closed", "_conn", "_owner", "_read_timeout", "_request")

    def __init__(
        self,
        owner: Http11Transport,
        conn: Http11Connection,
        request: httpx.Request,
        read_timeout: float | None,
    ) -> None:
        self._owner = owner
        self._conn = conn
        self._request = request
        self._read_timeout = read_timeout
        self._closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        conn = self._conn
        arm = self._owner.arm_read
        while True:
            try:
                chunk = await conn.next_chunk(self._read_timeout, arm)
            except (ConnectionClosed, ProtocolViolation, ReadTimedOut, OSError) as exc:
                raise _mapped(exc, self._request) from exc
            if chunk is None:
                return
            yield chunk

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            self._owner.release(self._conn)


class Http11Transport(httpx.AsyncBaseTransport):
    """One pool of HTTP/1.1 connections (one transport per upstream provider)."""

    def __init__(
        self,
        clock: Clock,
        *,
        max_connections: int = 256,
        keepalive_expiry: float = 30.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self._clock = clock
        self._max = max_connections
        self._keepalive = keepalive_expiry
        self._ssl = ssl_context
        self._idle: dict[Origin, list[Http11Connection]] = {}
        self._open = 0  # connections open or being opened, idle or not
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._closed = False

    # -- httpx.AsyncBaseTransport ---------------------------------------------------------
    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self._closed:
            raise httpx.ConnectError("the transport is closed", request=request)
        timeouts: dict[str, float | None] = request.extensions.get("timeout", {})
        read_timeout = timeouts.get("read")
        rest: Sequence[Piece]
        if type(request) is WireRequest:
            origin, data, rest = request.origin, request.wire, ()
        else:
            found = origin_of(request.url)
            if found is None:
                scheme = request.url.scheme
                raise httpx.UnsupportedProtocol(f"unsupported URL scheme {scheme!r}", request=request)
            origin = found
            data, rest = await _serialise(request)
        for attempt in range(2):
            # The retry goes on a new connection, never on another idle one (gone stale too, most
            # likely): a second clean close is then not "reused" and is raised, not retried.
            conn, reused = await self._acquire(origin, timeouts, request, fresh=attempt > 0)
            try:
                conn.send(data)
                if rest:
                    await conn.send_rest(rest)
                await conn.wait_headers(read_timeout, self.arm_read)
            except ConnectionClosed as exc:
                self._discard(conn)
                if reused and not exc.received and not exc.reset:
                    # The server closed this idle connection (a clean end, nothing answered) as
                    # the request went out: it was not processed; once more on a new connection.
                    continue
                raise _mapped(exc, request) from exc
            except (ProtocolViolation, ReadTimedOut, OSError) as exc:
                self._discard(conn)
                raise _mapped(exc, request) from exc
            except BaseException:
                self._discard(conn)  # cancelled mid-exchange: the connection's state is unknown
                raise
            break
        headers = conn.headers
        if not conn.complete:
            return httpx.Response(
                status_code=conn.status,
                headers=headers,
                stream=Body(self, conn, request, read_timeout),
                request=request,
                extensions={"http_version": b"HTTP/1.1"},
            )
        body = conn.take_all()
        self.release(conn)
        response = httpx.Response(
            status_code=conn.status,
            headers=headers,
            stream=httpx.ByteStream(body),
            request=request,
            extensions={"http_version": b"HTTP/1.1"},
        )
        if not any(name.lower() == b"content-encoding" for name, _ in headers):
            # Whole and not encoded: the body is the content, read already (``aread`` would
            # only pass it through httpx's decoders and chunker).
            response._content = body
        return response

    async def aclose(self) -> None:
        self._closed = True
        for idle in self._idle.values():
            for conn in idle:
                conn.close()
        self._idle.clear()
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)

    # -- the pool -------------------------------------------------------------------------
    def arm_read(self, seconds: float, callback: Callable[[], None]) -> TimerHandle:
        return self._clock.call_later(seconds, callback, name="upstream.read")

    def release(self, conn: Http11Connection) -> None:
        """Hand a connection back after its exchange: kept if reusable, else dropped."""
        conn.finish_exchange()
        if conn.reusable and not self._closed:
            now = conn.idle_since = self._clock.monotonic()
            idle = self._idle.setdefault(conn.origin, [])
            idle.append(conn)
            # Idle connections are reused newest first, so the oldest sit at the front, in the
            # order they went idle: close the ones past their keep-alive (usually none).
            if now - idle[0].idle_since > self._keepalive:
                stale = 0
                while now - idle[stale].idle_since > self._keepalive:
                    stale += 1
                expired, idle[:stale] = idle[:stale], []
                for old in expired:
                    self._discard(old)
            self._wake_one()
        else:
            self._discard(conn)

    def _discard(self, conn: Http11Connection) -> None:
        conn.finish_exchange()
        conn.abort()
        self._uncount(conn)

    def _lost(self, conn: Http11Connection) -> None:
        """The connection closed (either side): forget it, idle or not."""
        idle = self._idle.get(conn.origin)
        if idle and conn in idle:
            idle.remove(conn)
        self._uncount(conn)

    def _uncount(self, conn: Http11Connection) -> None:
        if conn.counted:
            conn.counted = False
            self._open -= 1
            self._wake_one()

    def _wake_one(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    async def _acquire(
        self,
        origin: Origin,
        timeouts: dict[str, float | None],
        request: httpx.Request,
        *,
        fresh: bool = False,
    ) -> tuple[Http11Connection, bool]:
        """A connection to ``origin`` and whether it was reused; ``fresh``: a new one."""
        while True:
            if self._closed:
                raise httpx.ConnectError("the transport is closed", request=request)
            idle = self._idle.get(origin)
            while idle and not fresh:
                conn = idle.pop()
                if conn.closed or self._clock.monotonic() - conn.idle_since > self._keepalive:
                    self._discard(conn)
                    continue
                return conn, True
            if self._open < self._max:
                self._open += 1
                try:
                    conn = await self._connect(origin, timeouts.get("connect"), request)
                except BaseException:
                    self._open -= 1
                    self._wake_one()
                    raise
                conn.counted = True
                if conn.closed:  # lost between connecting and now
                    self._uncount(conn)
                    continue
                return conn, False
            await self._wait_for_slot(timeouts.get("pool"), request)

    async def _wait_for_slot(self, timeout: float | None, request: httpx.Request) -> None:
        if self._closed:
            raise httpx.ConnectError("the transport is closed", request=request)
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        timer = None
        if timeout is not None:

            def expire() -> None:
                if not waiter.done():
                    waiter.set_exception(
                        httpx.PoolTimeout(
                            f"no upstream connection free within {timeout:g} s", request=request
                        )
                    )

            timer = self._clock.call_later(timeout, expire, name="upstream.pool")
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                self._wake_one()  # we were handed a slot we will not use
            raise
        finally:
            if timer is not None:
                timer.cancel()

    async def _connect(
        self, origin: Origin, timeout: float | None, request: httpx.Request
    ) -> Http11Connection:
        scheme, host, port = origin
        loop = asyncio.get_running_loop()
        tls: ssl.SSLContext | None = None
        if scheme == "https":
            tls = self._ssl = self._ssl or default_ssl_context()
        conn = Http11Connection(origin, loop, self._lost)
        opening = asyncio.ensure_future(
            loop.create_connection(lambda: conn, host, port, ssl=tls, server_hostname=host if tls else None)
        )
        timer = None
        expired = False
        if timeout is not None:

            def expire() -> None:
                nonlocal expired
                expired = True
                opening.cancel()

            timer = self._clock.call_later(timeout, expire, name="upstream.connect")
        try:
            await asyncio.shield(opening)
        except asyncio.CancelledError:
            if not opening.done():
                opening.cancel()
            elif not opening.cancelled() and opening.exception() is None:
                conn.abort()  # it opened just as we were cancelled: nobody will use it
            if expired:
                raise httpx.ConnectTimeout(
                    f"could not connect to {host}:{port} within {timeout:g} s", request=request
                ) from None
            raise
        except ssl.SSLError as exc:
            raise httpx.ConnectError(
                f"TLS handshake with {host}:{port} failed: {exc}", request=request
            ) from exc
        except OSError as exc:
            raise httpx.ConnectError(
                f"could not connect to {host}:{port}: {exc.strerror or exc}", request=request
            ) from exc
        finally:
            if timer is not None:
                timer.cancel()
        return conn


def origin_of(url: httpx.URL) -> Origin | None:
    """Where a request to ``url`` goes: scheme, host, port; None for a scheme it does not speak."""
    scheme = url.scheme
    if scheme not in _DEFAULT_PORTS:
        return None
    return (scheme, url.host, url.port or _DEFAULT_PORTS[scheme])


async def _serialise(request: httpx.Request) -> tuple[bytes, Sequence[Piece]]:
    """The request's head (with a small body joined to it) and the pieces to write after it."""
    stream = request.stream
    pieces: Sequence[Piece] = ()
    if isinstance(stream, BodyPieces):
        body: bytes = b""
        pieces, size = stream.pieces, stream.size
    else:
        try:
            body = request.content
        except httpx.RequestNotRead:
            body = await request.aread()
        size = len(body)
        if size > JOIN_LIMIT:
            body, pieces = b"", (body,)
    parts: list[bytes] = [request.method.encode("ascii"), b" ", request.url.raw_path, b" HTTP/1.1\r\n"]
    has_length = False
    for name, value in request.headers.raw:
        lowered = name.lower()
        if lowered == b"transfer-encoding":
            continue  # the body is sent whole, with its length
        if lowered == b"content-length":
            has_length = True
        parts += (name, b": ", value, b"\r\n")
    if size and not has_length:
        parts += (b"content-length: ", str(size).encode("ascii"), b"\r\n")
    parts.append(b"\r\n")
    if body:
        parts.append(body)
    return b"".join(parts), pieces
