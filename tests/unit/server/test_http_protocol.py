"""The HTTP limits, one protocol at a time: bytes fed straight to the protocol, its deadlines
checked by calling :func:`sweep` with chosen times (no clock, no socket, no waiting)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from uvicorn.server import ServerState

from gateway.server.http import (
    BODY,
    BUSY,
    HEAD,
    IDLE,
    GatewayConfig,
    GuardedHttpProtocol,
    HttpLimits,
    sweep,
)
from tests.unit.server.transport import Transport

LIMITS = HttpLimits(
    max_connections=2,
    max_header_bytes=1024,
    max_headers=5,
    header_timeout=10.0,
    body_timeout=20.0,
    keepalive_timeout=5.0,
)
GET = b"GET /healthz HTTP/1.1\r\nhost: gw\r\n\r\n"


class Loop:
    """The protocol's loop: tasks on the running loop, time set by the test."""

    def __init__(self) -> None:
        self.now = 0.0
        self.tasks: list[asyncio.Task[None]] = []

    def time(self) -> float:
        return self.now

    def create_task(self, coro: Any, **kwargs: Any) -> asyncio.Task[None]:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(coro, **kwargs)
        self.tasks.append(task)
        return task

    def call_later(self, delay: float, callback: Any, *args: Any) -> asyncio.TimerHandle:
        raise AssertionError("the guarded protocol arms no timer")


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Reads the whole body, then answers 200 with what it read (or nothing, if the client left)."""
    body = b""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"%d" % len(body))]}
    )
    await send({"type": "http.response.body", "body": body})


class Server:
    def __init__(self, limits: HttpLimits = LIMITS) -> None:
        self.config = GatewayConfig(app, limits=limits, lifespan="off", log_level="warning")
        self.state = ServerState()
        self.loop = Loop()

    def connect(self) -> tuple[GuardedHttpProtocol, Transport]:
        protocol = GuardedHttpProtocol(self.config, self.state, {}, _loop=self.loop)  # type: ignore[arg-type]
        transport = Transport()
        protocol.connection_made(transport)
        return protocol, transport

    async def settle(self) -> None:
        """Let the app tasks started so far run as far as they can."""
        for _ in range(5):
            await asyncio.sleep(0)

    def sweep(self, now: float) -> int:
        self.loop.now = now
        return sweep(self.state.connections, now)


def error_of(written: bytes | bytearray) -> tuple[int, dict[str, Any]]:
    head, _, body = bytes(written).partition(b"\r\n\r\n")
    assert b"connection: close" in head
    return int(head.split(b" ")[1]), json.loads(body)["error"]


def test_limits_derive_the_hard_cap_and_the_sweep_interval() -> None:
    assert HttpLimits(max_connections=4096).hard_cap == 4096 + 512
    assert HttpLimits(max_connections=20).hard_cap == 36  # at least 16 over
    assert HttpLimits().sweep_ticks == 10  # defaults: once a second
    assert HttpLimits(header_timeout=0.5).sweep_ticks == 1  # every 0.1 s tick


async def test_a_connection_that_sends_nothing_is_closed_without_a_word_at_the_header_deadline() -> None:
    server = Server()
    protocol, transport = server.connect()
    assert protocol.phase == HEAD
    assert server.sweep(9.9) == 0 and not transport.closed
    assert server.sweep(10.0) == 1
    assert transport.closed and transport.written == b""


async def test_headers_still_incomplete_at_the_deadline_get_408() -> None:
    server = Server()
    protocol, transport = server.connect()
    server.loop.now = 3.0
    protocol.data_received(b"GET /healthz HTTP/1.1\r\nhost:")  # the deadline runs from the opening
    assert server.sweep(9.9) == 0
    server.sweep(10.0)
    status, error = error_of(transport.written)
    assert (status, error["code"], error["type"]) == (408, "request_timeout", "invalid_request_error")
    assert transport.closed


async def test_a_keep_alive_connection_idles_then_gets_a_new_header_deadline_per_request() -> None:
    server = Server()
    protocol, transport = server.connect()
    protocol.data_received(GET)
    assert protocol.phase in (BODY, BUSY)
    await server.settle()
    assert transport.written.startswith(b"HTTP/1.1 200 ")
    assert protocol.phase == IDLE and protocol.deadline == 5.0  # keepalive from the answer
    server.loop.now = 4.0
    protocol.data_received(b"GET /healthz HTTP/1.1\r\n")  # a byte ends the idle time ...
    assert protocol.phase == HEAD and protocol.deadline == 14.0  # ... and starts the header time
    protocol.data_received(b"host: gw\r\n\r\n")
    await server.settle()
    assert protocol.phase == IDLE and protocol.deadline == 9.0
    assert server.sweep(8.9) == 0 and not transport.closed
    server.sweep(9.0)
    assert transport.closed
    assert transport.written.count(b"HTTP/1.1 200 ") == 2  # nothing written at the close


async def test_a_slow_body_gets_408_and_the_app_hears_the_client_is_gone() -> None:
    server = Server()
    protocol, transport = server.connect()
    server.loop.now = 1.0
    protocol.data_received(b"POST /x HTTP/1.1\r\nhost: gw\r\ncontent-length: 10\r\n\r\n12345")
    assert protocol.phase == BODY and protocol.deadline == 21.0
    await server.settle()
    [task] = server.loop.tasks
    assert not task.done()  # the app waits for the rest of the body
    assert server.sweep(20.9) == 0
    server.sweep(21.0)
    await server.settle()
    status, error = error_of(transport.written)
    assert (status, error["code"]) == (408, "request_timeout")
    assert task.done() and task.exception() is None  # receive() said http.disconnect; nothing more written
    assert transport.written.count(b"HTTP/1.1") == 1


async def test_a_request_being_answered_has_no_deadline() -> None:
    server = Server()
    protocol, transport = server.connect()
    protocol.data_received(b"POST /x HTTP/1.1\r\nhost: gw\r\ncontent-length: 2\r\n\r\nab")
    assert protocol.phase == BUSY  # the whole request is in; the answer is the app's business
    assert server.sweep(1e9) == 0 and not transport.closed
    await server.settle()
    assert transport.written.endswith(b"\r\n\r\nab")


@pytest.mark.parametrize(
    "chunks",
    [
        pytest.param(
            [b"GET / HTTP/1.1\r\n" + b"".join(b"x-%d: v\r\n" % i for i in range(6)) + b"\r\n"],
            id="six headers",
        ),
        pytest.param([b"GET / HTTP/1.1\r\nx-big: " + b"a" * 1100 + b"\r\n\r\n"], id="one read, too large"),
        pytest.param([b"GET / HTTP/1.1\r\nx-big: "] + [b"a" * 300] * 4, id="growing over several reads"),
        pytest.param([b"GET /" + b"a" * 1100 + b" HTTP/1.1\r\n\r\n"], id="a long target"),
    ],
)
async def test_oversized_or_too_many_headers_get_431_before_the_app_runs(chunks: list[bytes]) -> None:
    server = Server()
    protocol, transport = server.connect()
    for chunk in chunks:
        if transport.closed:
            break
        protocol.data_received(chunk)
    status, error = error_of(transport.written)
    assert (status, error["code"]) == (431, "request_headers_too_large")
    assert transport.closed and not server.loop.tasks


async def test_connections_beyond_the_limit_get_503_and_beyond_the_hard_cap_are_closed() -> None:
    server = Server(HttpLimits(max_connections=2))
    inside = [server.connect() for _ in range(2)]
    over, over_transport = server.connect()
    over.data_received(GET)
    status, error = error_of(over_transport.written)
    assert status == 503 and b"retry-after: 1\r\n" in over_transport.written
    assert error == {
        "message": "The gateway has too many open connections; retry shortly.",
        "type": "service_unavailable_error",
        "param": None,
        "code": "too_many_connections",
    }
    assert not server.loop.tasks  # the app never saw it
    for _ in range(15):  # up to the hard cap (2 + 16) they stay to get their 503 ...
        server.connect()
    assert len(server.state.connections) == 18
    _, beyond = server.connect()  # ... beyond it, closed as they come
    assert beyond.closed and beyond.written == b""
    protocol, transport = inside[0]
    protocol.data_received(GET)  # those within the limit are served
    await server.settle()
    assert transport.written.startswith(b"HTTP/1.1 200 ")


async def test_garbage_gets_400_in_openai_s_shape() -> None:
    protocol, transport = Server().connect()
    protocol.data_received(b"NOT HTTP AT ALL\r\n\r\n")
    status, error = error_of(transport.written)
    assert (status, error["code"], error["type"]) == (400, "bad_http_request", "invalid_request_error")
