"""Raw HTTP/1.1 servers on loopback sockets for the transport tests, and the loops to run them on.

A :class:`RawServer` reads requests byte for byte (head up to the blank line, then exactly
``content-length`` body bytes) and hands each one to the test's handler, which writes whatever
answer the scenario needs: valid, partial, garbage, a clean close or a reset. It records every
connection it accepted and every request it read, and whether the client went away.

:func:`harness` builds a server, a :class:`ManualClock` and an :class:`Http11Transport`, and on a
clean exit checks for leaks: every connection the pool counts is idle and open, no timer is
armed, and after ``aclose()`` the pool counts nothing and the server saw every connection go.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import struct
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import uvloop

from gateway.clock import ManualClock
from gateway.upstream.http11_transport import Http11Transport

DEADLINE = 10.0  # real seconds a polled event may take before the test fails (never reached)
TIMEOUTS = {"connect": 5.0, "read": 5.0, "write": 5.0, "pool": 5.0}

LOOPS: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {
    "asyncio": asyncio.SelectorEventLoop,
    "uvloop": uvloop.new_event_loop,
}


def run_on(loop_name: str, scenario: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Run ``scenario`` on a fresh loop of the given kind, with a hang guard."""

    async def guarded() -> None:
        loop = asyncio.get_running_loop()
        assert isinstance(loop, uvloop.Loop) == (loop_name == "uvloop")
        await asyncio.wait_for(scenario(), 4 * DEADLINE)

    with asyncio.Runner(loop_factory=LOOPS[loop_name]) as runner:
        runner.run(guarded())


async def eventually(predicate: Callable[[], bool], what: str = "the condition") -> None:
    """Poll a real event until it holds (fails after DEADLINE real seconds)."""
    deadline = time.monotonic() + DEADLINE
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {DEADLINE} s")
        await asyncio.sleep(0.001)


@dataclass
class SeenRequest:
    raw: bytes
    method: str
    target: str
    headers: list[tuple[str, str]]
    body: bytes
    connection: int  # index of the server connection it came on

    def header(self, name: str) -> list[str]:
        return [v for n, v in self.headers if n.lower() == name.lower()]


@dataclass(eq=False)
class ServerConnection:
    index: int
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    requests: list[SeenRequest] = field(default_factory=list)
    disconnected: bool = False  # the client closed or reset it (seen as EOF or an error)
    closed_by_server: bool = False

    async def read_request(self) -> SeenRequest | None:
        try:
            head = await self.reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError as exc:
            if exc.partial:
                raise AssertionError(f"a partial request head: {exc.partial!r}") from exc
            return None
        lines = head[:-4].decode("latin-1").split("\r\n")
        method, target, version = lines[0].split(" ")
        assert version == "HTTP/1.1", lines[0]
        headers = [(n, v.strip()) for n, v in (line.split(":", 1) for line in lines[1:])]
        lengths = [v for n, v in headers if n.lower() == "content-length"]
        body = await self.reader.readexactly(int(lengths[0])) if lengths else b""
        request = SeenRequest(head + body, method, target, headers, body, self.index)
        self.requests.append(request)
        return request

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def wait_disconnect(self) -> None:
        """Read until the client goes away (it must not send anything more)."""
        try:
            extra = await self.reader.read()
        except (ConnectionError, ssl.SSLError):
            extra = b""
        assert extra == b"", f"unexpected bytes from the client: {extra!r}"
        self.disconnected = True

    def close(self) -> None:
        self.closed_by_server = True
        self.writer.close()

    def reset(self) -> None:
        """Close with a TCP reset (SO_LINGER 0)."""
        self.closed_by_server = True
        sock = self.writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.writer.transport.abort()


Handler = Callable[[ServerConnection, SeenRequest], Awaitable[None]]


class RawServer:
    """An HTTP/1.1 server whose answers the test writes by hand."""

    def __init__(self, handler: Handler, ssl_context: ssl.SSLContext | None = None) -> None:
        self._handler = handler
        self._ssl = ssl_context
        self.connections: list[ServerConnection] = []
        self.requests: list[SeenRequest] = []
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.port = 0

    def url(self, path: str = "/") -> str:
        scheme = "https" if self._ssl else "http"
        return f"{scheme}://127.0.0.1:{self.port}{path}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self._ssl)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for conn in self.connections:
            conn.writer.transport.abort()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        conn = ServerConnection(len(self.connections), reader, writer)
        self.connections.append(conn)
        try:
            while not conn.closed_by_server:
                request = await conn.read_request()
                if request is None:
                    conn.disconnected = True
                    return
                self.requests.append(request)
                await self._handler(conn, request)
        except (ConnectionError, ssl.SSLError, asyncio.IncompleteReadError):
            conn.disconnected = True
        except asyncio.CancelledError:
            pass  # stopped by the test (asyncio's start_server would log a cancelled handler)
        finally:
            self._tasks.discard(task)

    @property
    def gone(self) -> int:
        """Connections the client closed."""
        return sum(c.disconnected for c in self.connections)


def answer(
    body: bytes = b"",
    status: str = "200 OK",
    headers: tuple[tuple[str, str], ...] = (),
    *,
    length: bool = True,
    version: str = "HTTP/1.1",
) -> bytes:
    lines = [f"{version} {status}", *(f"{n}: {v}" for n, v in headers)]
    if length:
        lines.append(f"content-length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def chunked(*pieces: bytes) -> bytes:
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces)


def echo_path(conn: ServerConnection, request: SeenRequest) -> Awaitable[None]:
    """Answer every request with its own target as the body."""
    return conn.send(answer(request.target.encode()))


def request(
    server: RawServer,
    path: str = "/",
    method: str = "GET",
    content: Any = None,
    timeout: dict[str, float | None] | None = None,
    headers: dict[str, str] | None = None,
) -> httpx.Request:
    return httpx.Request(
        method,
        server.url(path),
        content=content,
        headers=headers,
        extensions={"timeout": TIMEOUTS if timeout is None else timeout},
    )


async def read_all(response: httpx.Response) -> bytes:
    """The body through the transport's stream (closing it at the end)."""
    try:
        return b"".join([chunk async for chunk in response.stream])  # type: ignore[union-attr]
    finally:
        await response.aclose()


@dataclass
class Setup:
    server: RawServer
    transport: Http11Transport
    clock: ManualClock

    async def send(self, req: httpx.Request) -> httpx.Response:
        return await self.transport.handle_async_request(req)

    async def get(self, path: str = "/", **kwargs: Any) -> tuple[httpx.Response, bytes]:
        response = await self.send(request(self.server, path, **kwargs))
        return response, await read_all(response)

    def idle(self) -> list[Any]:
        return [c for conns in self.transport._idle.values() for c in conns]

    async def settled(self) -> None:
        """Every connection the pool counts is idle and open (no response left open)."""
        await eventually(
            lambda: all(not c.closed for c in self.idle()) and self.transport._open == len(self.idle()),
            "the pool to settle (no closed idle connection, nothing counted but idle ones)",
        )


@asynccontextmanager
async def harness(
    handler: Handler,
    *,
    ssl_server: ssl.SSLContext | None = None,
    **transport_options: Any,
) -> AsyncIterator[Setup]:
    server = RawServer(handler, ssl_server)
    await server.start()
    clock = ManualClock()
    transport = Http11Transport(clock, **transport_options)
    setup = Setup(server, transport, clock)
    try:
        yield setup
        await setup.settled()
        assert clock.pending() == [], [t.name for t in clock.pending()]
        assert all(w.done() for w in transport._waiters)
        await transport.aclose()
        await eventually(lambda: transport._open == 0, "the pool to count no connection after aclose")
        assert setup.idle() == []
        await eventually(
            lambda: all(c.disconnected or c.closed_by_server for c in server.connections),
            "the server to see every connection closed",
        )
    finally:
        await transport.aclose()
        await server.stop()


def self_signed_contexts() -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A server context with a fresh self-signed certificate for 127.0.0.1, and a client context
    that trusts exactly that certificate."""
    import datetime
    import ipaddress
    import tempfile
    from pathlib import Path

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "gateway transport test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "cert.pem").write_bytes(cert_pem)
        (Path(tmp) / "key.pem").write_bytes(key_pem)
        server.load_cert_chain(Path(tmp) / "cert.pem", Path(tmp) / "key.pem")
    client = ssl.create_default_context(cadata=cert_pem.decode())
    return server, client
