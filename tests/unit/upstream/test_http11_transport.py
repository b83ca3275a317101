"""The HTTP/1.1 transport against raw servers on loopback, on asyncio's default loop and on uvloop.

Every test runs its scenario twice (the ``run`` fixture): once on asyncio's selector loop and
once on uvloop, which production uses. Time moves only on the ManualClock; real events (bytes
arriving, connections closing) are polled with a deadline.
"""

from __future__ import annotations

import asyncio
import functools
import gzip
import random
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

import httpx
import pytest

from gateway.upstream.http11_connection import HIGH_WATER
from gateway.upstream.http11_transport import Body, Http11Transport
from tests.unit.upstream.servers import (
    LOOPS,
    TIMEOUTS,
    SeenRequest,
    ServerConnection,
    Setup,
    answer,
    chunked,
    echo_path,
    eventually,
    harness,
    read_all,
    request,
    run_on,
    self_signed_contexts,
)

Scenario = Callable[[], Coroutine[Any, Any, None]]


@pytest.fixture(params=sorted(LOOPS))
def run(request: pytest.FixtureRequest) -> Callable[[Scenario], None]:
    return functools.partial(run_on, request.param)


def nth_request(conn: ServerConnection) -> int:
    return len(conn.requests)


def nth_request_on(h: Setup, req: SeenRequest) -> int:
    """1 for the first request its connection carried, 2 for the second..."""
    return h.server.connections[req.connection].requests.index(req) + 1


# -- 1. keep-alive and the request on the wire ------------------------------------------------


def test_sequential_requests_reuse_one_connection(run: Callable[[Scenario], None]) -> None:
    async def scenario() -> None:
        async with harness(echo_path) as h:
            for i in range(3):
                response, body = await h.get(f"/r{i}?n={i}")
                assert response.status_code == 200
                assert body == f"/r{i}?n={i}".encode()
                assert h.transport._open == 1
            assert len(h.server.connections) == 1
            assert [r.target for r in h.server.connections[0].requests] == ["/r0?n=0", "/r1?n=1", "/r2?n=2"]

    run(scenario)


def test_the_exact_request_bytes_the_server_receives(run: Callable[[Scenario], None]) -> None:
    async def scenario() -> None:
        async with harness(echo_path) as h:
            port = h.server.port
            req = request(h.server, "/v1/x?a=1&b=two%20words", "POST", b'{"k": "v"}', headers={"x-a": "1"})
            await read_all(await h.send(req))

            async def pieces() -> AsyncIterator[bytes]:
                yield b"str"
                yield b"eamed"

            streamed = request(h.server, "/s", "POST", pieces())
            assert streamed.headers["transfer-encoding"] == "chunked"
            await read_all(await h.send(streamed))
            await read_all(await h.send(request(h.server, "/g")))

            first, second, third = h.server.requests
            host = b"Host: 127.0.0.1:%d\r\n" % port
            assert first.raw == (
                b"POST /v1/x?a=1&b=two%20words HTTP/1.1\r\n"
                + host
                + b'x-a: 1\r\nContent-Length: 10\r\n\r\n{"k": "v"}'
            )
            # A streamed body goes out whole, with its length, never chunked.
            assert (
                second.raw
                == b"POST /s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\ncontent-length: 8\r\n\r\nstreamed" % port
            )
            assert third.raw == b"GET /g HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n" % port
            assert len(h.server.connections) == 1

    run(scenario)


# -- 2. bodies ----------------------------------------------------------------------------------


def test_chunked_body_in_several_segments_then_reuse(run: Callable[[Scenario], None]) -> None:
    async def handler(conn: ServerConnection, req: SeenRequest) -> None:
        if req.target == "/chunked":
            await conn.send(answer(headers=(("transfer-encoding", "chunked"),), length=False))
            await conn.send(chunked(b"hello "))
            await conn.send(chunked(b"chunked ", b"world"))
            await conn.send(b"0\r\nx-trailer: t\r\n\r\n")
        else:
            await echo_path(conn, req)

    async def scenario() -> None:
        async with harness(handler) as h:
            response, body = await h.get("/chunked")
            assert body == b"hello chunked world"
            assert response.headers["transfer-encoding"] == "chunked"
            _, body = await h.get("/after")
            assert body == b"/after"
            assert len(h.server.connections) == 1

    run(scenario)


def test_body_read_until_close(run: Callable[[Scenario], None]) -> None:
    async def handler(conn: ServerConnection, req: SeenRequest) -> None:
        if req.target == "/until-close":
            await conn.send(answer(length=False))
            await conn.send(b"no length, ")
            await conn.send(b"ends with the connection")
            conn.close()
        elif req.target == "/http10":
            await conn.send(answer(version="HTTP/1.0", length=False) + b"an HTTP/1.0 body")
            conn.close()
        else:
            await echo_path(conn, req)

    async def scenario() -> None:
        async with harness(handler) as h:
            response, body = await h.get("/until-close")
            assert response.status_code == 200
            assert body == b"no length, ends with the connection"
            assert h.transport._open == 0
            _, body = await h.get("/http10")
            assert body == b"an HTTP/1.0 body"
            _, body = await h.get("/next")
            assert body == b"/next"
            assert len(h.server.connections) == 3

    run(scenario)


def test_empty_bodies_204_304_and_length_zero_keep_the_connection(run: Callable[[Scenario], None]) -> None:
    async def handler(conn: ServerConnection, req: SeenRequest) -> None:
        if req.target == "/204":
            await conn.send(answer(status="204 No Content", length=False))
        elif req.target == "/304":
            # A 304 carries the length of the body it stands for, never the body.
            await conn.send(
                answer(status="304 Not Modified", length=False, headers=(("content-length", "10"),))
            )
        elif req.target == "/zero":
            await conn.send(answer(b""))
        else:
            await echo_path(conn, req)

    async def scenario() -> None:
        async with harness(handler) as h:
            for path, status in (("/204", 204), ("/304", 304), ("/zero", 200)):
                response = await h.send(request(h.server, path))
                assert response.status_code == status
                assert isinstance(response.stream, httpx.ByteStream)
                assert await response.aread() == b""
            _, body = await h.get("/after")
            assert body == b"/after"
            assert len(h.server.connections) == 1

    run(scenario)


def test_one_mebibyte_streams_in_pieces_with_back_pressure(run: Callable[[Scenario], None]) -> None:
    payload = random.Random(7).randbytes(1 << 20)

    async def handler(conn: ServerConnection, req: SeenRequest) -> None:
        if req.target == "/big":
            await conn.send(answer(headers=(("content-length", str(len(payload))),), length=False))
            for start in range(0, len(payload), 64 * 1024):
                await conn.send(payload[start : start + 64 * 1024])
        else:
            await echo_path(conn, req)

    async def scenario() -> None:
        async with harness(handler) as h:
            response = await h.send(request(h.server, "/big"))
            stream = response.stream
            assert isinstance(stream, Body)
            conn = stream._conn
            # Nobody reads: the connection stops reading from the socket past the high-water mark.
            await eventually(lambda: conn._paused, "reading to pause")
            assert conn.transport is not None
            assert not conn.transport.is_reading()
            for _ in range(50):
                await asyncio.sleep(0)
            assert conn._buffered <= HIGH_WATER + 256 * 1024
            received: list[bytes] = []
            async for chunk in response.aiter_raw():
                received.append(chunk)
            assert b"".join(received) == payload
            assert len(received) > 1
            assert not conn._paused
            assert conn.transport.is_reading()
            _, body = await h.get("/after")
            assert body == b"/after"
            assert len(h.server.connections) == 1

    run(scenario)


def test_interim_100_continue_before_the_answer(run: Callable[[Scenario], None]) -> None:
    async def handler(conn: ServerConnection, req: SeenRequest) -> None:
        if req.target == "/together":
            await conn.send(
                b"HTTP/1.1 100 Continue\r\nx-interim: 1\r\n\r\n" + answer(b"ok", headers=(("x-final", "1"),))
            )
        elif req.target == "/apart":
            await conn.send(b"HTTP/1.1 100 Continue\r\nx-interim: 1\r\n\r\n")
            await conn.send(answer(b"ok too", headers=(("x-final", "1"),)))
        else:
            await echo_path(conn, req)

    async def scenario() -> None:
        async with harness(handler) as h:
            for path, expected in (("/together", b"ok"), ("/apart", b"ok too")):
                response, body = await h.get(path, method="POST", content=b"{}")
                assert response.status_code == 200
                assert body == expected
                assert response.headers["x-final"] == "1"
                assert "x-interim" not in response.headers
            _, body = await h.get("/after")
            assert body == b"/after"
            assert len(h.server.connections) == 1

    run(scenario)


# -- 3. a complete answer comes back in memory ------------------------------------------------


def test_complete_answer_is_in_memory_and_its_connection_already_pooled(
    run: Callable[[Scenario], None],
) -> None:
    async def scenario() -> None:
        async with harness(echo_path) as h:
            first = await h.send(request(h.server, "/first"))
            assert isinstance(first.stream, httpx.ByteStream)
            assert len(h.idle()) == 1  # back in the pool before anyone read the body
            second = await h.send(request(h.server, "/second"))
            assert len(h.server.connections) == 1
            assert await second.aread() == b"/second"
            assert await first.aread() == b"/first"

    run(scenario)


# -- 4. answers that end the connection -------------------------------------------------------


@pytest.mark.parametrize(
    "final",
    [
        answer(b"bye", headers=(("connection", "close"),)),
        answer(b"bye", version="HTTP/1.0"),
    ],
    ids=["connection-close", "http-1.0"],
)
def test_answers_that_end_the_connection_are_not_reused(
    run: Callable[[Scenario], None], final: bytes
) -> None:
    async def handler(conn: ServerConnection, req: SeenRequest) -> None:
        if req.target == "/last":
            await conn.send(final)  # the server keeps its side open: the client must close
        else:
            await echo_path(conn, req)

    async def scenario() -> None:
        async with harness(handler) as h:
            _, body = await h.get("/last")
            assert body == b"bye"
            assert h.transport._open == 0
            await eventually(lambda: h.server.connections[0].disconnected, "the client to close")
            _, body = await h.get("/next")
            assert body == b"/next"
            assert len(h.server.connections) == 2

    run(scenario)


# -- 5. the server closes an idle connection --------------------------------------------------


def test_close_seen_while_idle_then_a_new_connection(run: Callable[[Scenario], None]) -> None:
    async def handler(conn: ServerConnection, req: SeenRequest) -> None:
        await echo_path(conn, req)
        if req.target == "/then-close":
            conn.close()

    async def scenario() -> None:
        async with harness(handler) as h:
            _, body = await h.get("/then-close")
            assert body == b"/then-close"
            await eventually(lambda: h.transport._open == 0 and not h.idle(), "the idle connection to go")
            _, body = await h.get("/next")
            assert body == b"/next"
            assert [len(c.requests) for c in h.server.connections] == [1, 1]

    run(scenario)


def test_close_right_after_the_answer_then_the_next_request_at_once(run: Callable[[Scenario], None]) -> None:
    """The close may or may not be seen before the next request goes out: it works either way."""

    async def handler(conn: ServerConnection, req: SeenRequest) -> None:
        if nth_request(conn) == 1:
            await echo_path(conn, req)
        conn.close()  # after the first answer, or on reading a second request (never answered)

    async def scenario() -> None:
        async with harness(handler) as h:
            for i in range(20):
                response, body = await h.get(f"/r{i}")
                assert response.status_code == 200
                assert body == f"/r{i}".encode()
            # Every answer came on a new connection; a request that went out on the closed one
            # before the client saw the close was read there, unanswered, and sent once more.
            assert len(h.server.connections) == 20
            assert all(len(c.requests) in (1, 2) for c in h.server.connections)
            assert [r.target for r in h.server.requests if nth_request_on(h, r) == 1] == [
                f"/r{i}" for i in range(20)
            ]

    run(scenario)


def test_bytes_on_an_idle_connection_close_it(run: Callable[[Scenario], None]) -> None:
    async def scenario() -> None:
        async def handler(conn: ServerConnection, req: SeenRequest) -> None:
            await echo_path(conn, req)
            if req.target == "/then-junk":
                await eventually(lambda: len(h.idle()) == 1, "the connection to be idle")
                await conn.send(b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\njunk")
                await conn.wait_disconnect()

        async with harness(handler) as h:
            await h.get("/then-junk")
            await eventually(lambda: h.server.connections[0].disconnected, "the client to close")
            assert h.idle() == []
            assert h.transport._open == 0
            _, body = await h.get("/next")
            assert body == b"/next"
            assert [r.connection for r in h.server.requests] == [0, 1]

    run(scenario)


def test_closed_without_answer_on_a_reused_connection_is_sent_once_more(
    run: Callable[[Scenario], None],
) -> None:
    async def handler(conn: ServerConnection, req: SeenRequest) -> None:
        if nth_request(conn) == 2:
            conn.close()  # keep-alive ran out as the request came in: read, not answered
        else:
            await echo_path(conn, req)

    async def scenario() -> None:
        async with harness(handler) as h:
            await h.get("/one")
            response, body = await h.get("/two", method="POST", content=b"payload")
            assert response.status_code == 200
            assert body == b"/two"
            assert [(r.connection, r.target, r.body) for r in h.server.requests] == [
                (0, "/one", b""),
                (0, "/two", b"payload"),
                (1, "/two", b"payload"),
            ]

    run(scenario)


def test_retry_goes_to_a_new_connection_even_with_other_stale_idle_ones(
    run: Callable[[Scenario], None],
) -> None:
    """Two idle connections both gone stale: one retry, on a new connection, not on the other."""

    async def scenario() -> None:
        both = asyncio.Event()

        async def handler(conn: ServerConnection, req: SeenRequest) -> None:
            if nth_request(conn) == 1:
                if len(h.server.requests) == 2:
                    both.set()
                await both.wait()  # answer only once both connections carry a request
                await echo_path(conn, req)
            else:
                conn.close()

        async with harness(handler) as h:
            await asyncio.gather(h.get("/a"), h.get("/b"))
            assert len(h.idle()) == 2
            response, body = await h.get("/c")
            assert response.status_code == 200
            assert body == b"/c"
            c_requests = [r.connection for r in h.server.requests if r.target == "/c"]
            assert len(c_requests) == 2
            assert c_requests[1] == 2  # the retry opened a new connection
            assert len(h.server.connections) == 3

    run(scenario)


def test_reset_before_any_answer_byte_is_not_retried(run: Callable[[Scenario], None]) -> None:
    async def handler(conn: ServerConnection, req: SeenRequest) -> None:
        if req.target == "/reset":
            conn.reset()
        else:
            await echo_path(conn, req)

    async def scenario() -> None:
        async with harness(handler) as h:
            await h.get("/one")
            with pytest.raises(httpx.ReadError):
                await h.send(request(h.server, "/reset"))
            assert [(r.connection, r.target) for r in h.server.requests] == [(0, "/one"), (0, "/reset")]
            assert len(h.server.connections) == 1
            assert h.transport._open == 0
            _, body = await h.get("/next")
            assert body == b"/next"

    run(scenario)


def test_closed_without_answer_on_a_new_connection_is_not_retried(run: Callable[[Scenario], None]) -> None:
    async def handler(conn: ServerConnection, req: SeenRequest) -> None:
        conn.close()

    async def scenario() -> None:
        async with harness(handler) as h:
            with pytest.raises(
                httpx.RemoteProtocolError, match="closed the connection before sending the answer"
            ):
                await h.send(request(h.server, "/x"))
            assert len(h.server.requests) == 1
            assert h.transport._open == 0

    run(scenario)


# -- 6. broken answers and connections ----------------------------------------------------------


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_server_closes_mid_body(run: Callable[[Scenario], None], framing: str) -> None:
    async def handler(conn: ServerConnection, req: SeenRequest) -> None:
        if framing == "chunked":
            await conn.send(
                answer(headers=(("transfer-encoding", "chunked"),), length=False) + chunked(b"part")
            )
        else:
            await conn.send(answer(headers=(("content-length", "100"),), length=False) + b"part")
        conn.close()

    async def scenario() -> None:
        async with harness(handler) as h:
            response = await h.send(request(h.server, "/x"))
            assert response.status_code == 200
            received: list[bytes] = []

            async def consume() -> None:
                async for chunk in response.aiter_raw():
                    received.append(chunk)

            with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
                await consume()
            assert b"".join(received) == b"part"
            await response.aclose()
            assert h.transport._open == 0

    run(scenario)


@pytest.mark.parametrize(
    "garbage",
    [
        b"SSH-2.0-OpenSSH_9.6\r\n\r\n",
        b"HTTP/1.1 abc OK\r\n\r\n",
        b"HTTP/1.1 200 OK\r\ncontent-length: x\r\n\r\n",
    ],
    ids=["not-http", "bad-status", "bad-length"],
)
def test_garbage_instead_of_http(run: Callable[[Scenario], None], garbage: bytes) -> None:
    async def handler(conn: ServerConnection, req: SeenRequest) -> None:
        await conn.send(garbage)
        await conn.wait_disconnect()

    async def scenario() -> None:
        async with harness(handler) as h:
            with pytest.raises(httpx.RemoteProtocolError, match="invalid HTTP answer"):
                await h.send(request(h.server, "/x"))
            assert h.transport._open == 0
            await eventually(lambda: h.server.connections[0].disconnected, "the client to close")

    run(scenario)


@pytest.mark.parametrize("when", ["with-headers", "streamed"])
def test_bytes_after_the_answer_are_not_taken_as_body(run: Callable[[Scenario], None], when: str) -> None:
    """A server that sends a second, unsolicited answer: the first body stays what its framing
    says, the second answer's headers and body go nowhere, and the connection is not reused."""
    unsolicited = answer(b"evil", headers=(("x-evil", "1"),))

    async def handler(conn: ServerConnection, req: SeenRequest) -> None:
        if req.target != "/two-answers":
            await echo_path(conn, req)
        elif when == "with-headers":
            await conn.send(answer(b"held", headers=(("x-good", "1"),)) + unsolicited)
        else:
            await conn.send(answer(headers=(("content-length", "4"), ("x-good", "1")), length=False) + b"he")
            await eventually(lambda: reading.is_set(), "the client to read")
            await conn.send(b"ld" + unsolicited)

    async def scenario() -> None:
        async with harness(handler) as h:
            response = await h.send(request(h.server, "/two-answers"))
            reading.set()
            assert response.status_code == 200
            assert response.headers["x-good"] == "1"
            assert "x-evil" not in response.headers
            assert await read_all(response) == b"held"
            _, body = await h.get("/next")
            assert body == b"/next"
            assert len(h.server.connections) == 2

    reading = asyncio.Event()
    run(scenario)


def test_switching_protocols_is_a_protocol_error(run: Callable[[Scenario], None]) -> None:
    async def handler(conn: ServerConnection, req: SeenRequest) -> None:
        await conn.send(
            b"HTTP/1.1 101 Switching Protocols\r\nconnection: upgrade\r\nupgrade: websocket\r\n\r\n"
        )
        await conn.wait_disconnect()

    async def scenario() -> None:
        async with harness(handler) as h:
            with pytest.raises(httpx.RemoteProtocolError, match="switched protocols"):
                await h.send(request(h.server, "/x"))
            assert h.transport._open == 0

    run(scenario)


def test_connection_refused_and_unsupported_scheme(run: Callable[[Scenario], None]) -> None:
    async def scenario() -> None:
        async with harness(echo_path) as h:
            refused_port = h.server.port
            await h.server.stop()
            with pytest.raises(httpx.ConnectError):
                await h.send(
                    httpx.Request(
                        "GET", f"http://127.0.0.1:{refused_port}/", extensions={"timeout": TIMEOUTS}
                    )
                )
            assert h.transport._open == 0
            with pytest.raises(httpx.UnsupportedProtocol):
                await h.send(httpx.Request("GET", "ftp://127.0.0.1/file"))
            assert h.clock.history("upstream.connect") == ["armed", "cancelled"]

    run(scenario)


# -- 7. timeouts on the manual clock ------------------------------------------------------------


def test_read_timeout_waiting_for_headers(run: Callable[[Scenario], None]) -> None:
    async def handler(conn: ServerConnection, req: SeenRequest) -> None:
        await conn.wait_disconnect()  # never answers

    async def scenario() -> None:
        async with harness(handler) as h:
            task = asyncio.ensure_future(
                h.send(request(h.server, "/slow", timeout={**TIMEOUTS, "read": 30.0}))
            )
            timer = await h.clock.wait_for_timer("upstream.read")
            assert timer.deadline - timer.armed_at == 30.0
            assert h.clock.advance(29.9) == []
            await asyncio.sleep(0)
            assert not task.done()
            assert h.clock.advance(0.1) == ["upstream.read"]
            with pytest.raises(httpx.ReadTimeout):
                await task
            assert h.clock.pending() == []
            assert h.transport._open == 0
            await eventually(lambda: h.server.connections[0].disconnected, "the client to close")

    run(scenario)


def test_read_timeout_between_body_chunks_counts_from_the_last_byte(run: Callable[[Scenario], None]) -> None:
    async def scenario() -> None:
        more = asyncio.Event()

        async def handler(conn: ServerConnection, req: SeenRequest) -> None:
            await conn.send(
                answer(headers=(("transfer-encoding", "chunked"),), length=False) + chunked(b"one")
            )
            await more.wait()
            await conn.send(chunked(b"two"))
            await conn.wait_disconnect()

        async with harness(handler) as h:
            response = await h.send(request(h.server, "/stream", timeout={**TIMEOUTS, "read": 10.0}))
            chunks = response.aiter_raw()
            assert await chunks.__anext__() == b"one"
            nxt = asyncio.ensure_future(chunks.__anext__())
            await h.clock.wait_for_timer("upstream.read")
            h.clock.advance(9)
            more.set()
            assert await nxt == b"two"  # data within the timeout: the wait starts over
            nxt = asyncio.ensure_future(chunks.__anext__())
            timer = await h.clock.wait_for_timer("upstream.read")
            assert timer.deadline == h.clock.monotonic() + 10.0
            h.clock.advance(10)
            with pytest.raises(httpx.ReadTimeout):
                await nxt
            await response.aclose()
            assert h.transport._open == 0
            assert h.clock.pending() == []
            await eventually(lambda: h.server.connections[0].disconnected, "the client to close")

    run(scenario)


def test_pool_timeout_while_the_only_connection_is_held(run: Callable[[Scenario], None]) -> None:
    async def scenario() -> None:
        finish = asyncio.Event()

        async def handler(conn: ServerConnection, req: SeenRequest) -> None:
            if req.target == "/held":
                await conn.send(answer(headers=(("content-length", "4"),), length=False) + b"he")
                await finish.wait()
                await conn.send(b"ld")
            else:
                await echo_path(conn, req)

        async with harness(handler, max_connections=1) as h:
            held = await h.send(request(h.server, "/held"))
            waiting = asyncio.ensure_future(
                h.send(request(h.server, "/w", timeout={**TIMEOUTS, "pool": 3.0}))
            )
            await h.clock.wait_for_timer("upstream.pool")
            h.clock.advance(3)
            with pytest.raises(httpx.PoolTimeout):
                await waiting
            finish.set()
            assert await read_all(held) == b"held"
            _, body = await h.get("/after")
            assert body == b"/after"
            assert len(h.server.connections) == 1
            assert h.clock.history("upstream.pool") == ["armed", "fired"]

    run(scenario)


def test_connect_timeout(run: Callable[[Scenario], None]) -> None:
    async def scenario() -> None:
        async with harness(echo_path) as h:
            loop = asyncio.get_running_loop()
            started = asyncio.Event()
            cancelled = asyncio.Event()

            async def never(*args: Any, **kwargs: Any) -> Any:
                started.set()
                try:
                    await asyncio.Event().wait()
                finally:
                    cancelled.set()

            loop.create_connection = never  # type: ignore[method-assign]
            try:
                task = asyncio.ensure_future(
                    h.send(request(h.server, "/x", timeout={**TIMEOUTS, "connect": 2.0}))
                )
                await h.clock.wait_for_timer("upstream.connect")
                await started.wait()
                h.clock.advance(2)
                with pytest.raises(httpx.ConnectTimeout):
                    await task
                await asyncio.wait_for(cancelled.wait(), 10)
            finally:
                del loop.create_connection
            assert h.transport._open == 0
            assert h.clock.pending() == []
            assert h.clock.history() == ["armed", "fired"]
            _, body = await h.get("/after")  # the slot was given back
            assert body == b"/after"

    run(scenario)


def test_cancelled_while_connecting(run: Callable[[Scenario], None]) -> None:
    async def scenario() -> None:
        async with harness(echo_path, max_connections=1) as h:
            loop = asyncio.get_running_loop()
            cancelled = asyncio.Event()

            async def never(*args: Any, **kwargs: Any) -> Any:
                try:
                    await asyncio.Event().wait()
                finally:
                    cancelled.set()

            loop.create_connection = never  # type: ignore[method-assign]
            try:
                task = asyncio.ensure_future(h.send(request(h.server, "/x")))
                await h.clock.wait_for_timer("upstream.connect")
                task.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await task
                await asyncio.wait_for(cancelled.wait(), 10)
            finally:
                del loop.create_connection
            assert h.transport._open == 0
            assert h.clock.history() == ["armed", "cancelled"]
            _, body = await h.get("/after")
            assert body == b"/after"

    run(scenario)


def test_cancelled_just_as_the_connection_opened(run: Callable[[Scenario], None]) -> None:
    """The connection is made, but the caller is cancelled before it resumes: the new connection
    is closed at once, not leaked or counted."""

    async def scenario() -> None:
        async with harness(echo_path, max_connections=1) as h:
            loop = asyncio.get_running_loop()
            real = loop.create_connection
            made: list[asyncio.BaseTransport] = []

            async def then_cancel(*args: Any, **kwargs: Any) -> Any:
                transport, protocol = await real(*args, **kwargs)
                made.append(transport)
                loop.call_soon(task.cancel)  # runs before the caller learns the connection is made
                return transport, protocol

            loop.create_connection = then_cancel  # type: ignore[method-assign]
            try:
                task = asyncio.ensure_future(h.send(request(h.server, "/x")))
                with pytest.raises(asyncio.CancelledError):
                    await task
            finally:
                del loop.create_connection
            assert len(made) == 1
            assert h.transport._open == 0
            await eventually(lambda: made[0].is_closing(), "the orphan connection to close")
            await eventually(lambda: h.server.gone == 1, "the server to see it close")
            assert h.server.requests == []
            _, body = await h.get("/after")
            assert body == b"/after"

    run(scenario)


# -- 8. the pool ----------------------------------------------------------------------------------


def test_one_connection_two_requests_the_second_waits_for_the_first(run: Callable[[Scenario], None]) -> None:
    async def scenario() -> None:
        finish = asyncio.Event()

        async def handler(conn: ServerConnection, req: SeenRequest) -> None:
            if req.target == "/first":
                await conn.send(answer(headers=(("content-length", "5"),), length=False) + b"fir")
                await finish.wait()
                await conn.send(b"st")
            else:
                await echo_path(conn, req)

        async with harness(handler, max_connections=1) as h:
            first = await h.send(request(h.server, "/first"))
            second = asyncio.ensure_future(h.send(request(h.server, "/second")))
            await h.clock.wait_for_timer("upstream.pool")
            assert len(h.server.requests) == 1
            assert not second.done()
            finish.set()
            assert await read_all(first) == b"first"
            response = await second
            assert await read_all(response) == b"/second"
            assert [r.connection for r in h.server.requests] == [0, 0]

    run(scenario)


def test_abandoned_stream_closes_its_connection_and_frees_the_slot(run: Callable[[Scenario], None]) -> None:
    async def handler(conn: ServerConnection, req: SeenRequest) -> None:
        if req.target == "/endless":
            await conn.send(
                answer(headers=(("transfer-encoding", "chunked"),), length=False) + chunked(b"tick")
            )
            await conn.wait_disconnect()
        else:
            await echo_path(conn, req)

    async def scenario() -> None:
        async with harness(handler, max_connections=1) as h:
            response = await h.send(request(h.server, "/endless"))
            async for chunk in response.aiter_raw():
                assert chunk == b"tick"
                break
            await response.aclose()
            assert h.transport._open == 0
            await eventually(lambda: h.server.connections[0].disconnected, "the server to see the client go")
            _, body = await h.get("/next")
            assert body == b"/next"
            assert len(h.server.connections) == 2

    run(scenario)


def test_cancelled_while_waiting_for_headers_frees_the_slot(run: Callable[[Scenario], None]) -> None:
    async def handler(conn: ServerConnection, req: SeenRequest) -> None:
        if req.target == "/hang":
            await conn.wait_disconnect()
        else:
            await echo_path(conn, req)

    async def scenario() -> None:
        async with harness(handler, max_connections=1) as h:
            task = asyncio.ensure_future(h.send(request(h.server, "/hang")))
            await h.clock.wait_for_timer("upstream.read")
            await eventually(lambda: len(h.server.requests) == 1, "the request to arrive")
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert h.transport._open == 0
            assert h.clock.pending() == []
            await eventually(lambda: h.server.connections[0].disconnected, "the server to see the client go")
            _, body = await h.get("/next")
            assert body == b"/next"

    run(scenario)


def test_cancelled_while_waiting_for_a_slot(run: Callable[[Scenario], None]) -> None:
    async def scenario() -> None:
        finish = asyncio.Event()

        async def handler(conn: ServerConnection, req: SeenRequest) -> None:
            if req.target == "/held":
                await conn.send(answer(headers=(("content-length", "2"),), length=False))
                await finish.wait()
                await conn.send(b"ok")
            else:
                await echo_path(conn, req)

        async with harness(handler, max_connections=1) as h:
            held = await h.send(request(h.server, "/held"))
            waiting = asyncio.ensure_future(h.send(request(h.server, "/never")))
            await h.clock.wait_for_timer("upstream.pool")
            waiting.cancel()
            with pytest.raises(asyncio.CancelledError):
                await waiting
            assert h.clock.pending("upstream.pool") == []
            finish.set()
            assert await read_all(held) == b"ok"
            _, body = await h.get("/next")
            assert body == b"/next"
            assert [r.target for r in h.server.requests] == ["/held", "/next"]

    run(scenario)


def test_keepalive_expiry_opens_a_new_connection(run: Callable[[Scenario], None]) -> None:
    async def scenario() -> None:
        async with harness(echo_path, keepalive_expiry=5.0) as h:
            await h.get("/a")
            h.clock.advance(5.0)
            await h.get("/b")  # idle exactly the expiry: still used
            assert len(h.server.connections) == 1
            h.clock.advance(5.1)
            await h.get("/c")
            assert [r.connection for r in h.server.requests] == [0, 0, 1]
            await eventually(lambda: h.server.connections[0].disconnected, "the expired connection to close")
            assert h.transport._open == 1

    run(scenario)


def test_idle_connections_past_their_keepalive_are_closed_when_another_comes_back(
    run: Callable[[Scenario], None],
) -> None:
    """Idle connections are reused newest first; the older ones are closed once expired, not
    left holding a slot until the server gives up on them."""

    async def scenario() -> None:
        both = asyncio.Event()

        async def handler(conn: ServerConnection, req: SeenRequest) -> None:
            if len(h.server.requests) == 2:
                both.set()
            await both.wait()
            await echo_path(conn, req)

        async with harness(handler, keepalive_expiry=30.0) as h:
            await asyncio.gather(h.get("/a"), h.get("/b"))
            assert h.transport._open == 2
            h.clock.advance(20.0)
            await h.get("/c")  # the newest idle connection; the other stays idle since t=0
            h.clock.advance(15.0)
            await h.get("/d")  # back in the pool at t=35: the one idle since t=0 is past 30 s
            await eventually(lambda: h.server.gone == 1, "the expired idle connection to close")
            assert h.transport._open == 1
            assert len(h.idle()) == 1
            assert len(h.server.connections) == 2  # nothing new was opened

    run(scenario)


def test_oversized_answer_headers_are_refused(run: Callable[[Scenario], None]) -> None:
    async def handler(conn: ServerConnection, req: SeenRequest) -> None:
        huge = tuple((f"x-h{i}", "v" * 1000) for i in range(70))
        await conn.send(answer(b"ok", headers=huge))
        await conn.wait_disconnect()

    async def scenario() -> None:
        async with harness(handler) as h:
            with pytest.raises(httpx.RemoteProtocolError, match="headers exceed 64 KiB"):
                await h.send(request(h.server, "/x"))
            assert h.transport._open == 0

    run(scenario)


def test_aclose_closes_idle_connections(run: Callable[[Scenario], None]) -> None:
    async def scenario() -> None:
        both = asyncio.Event()

        async def handler(conn: ServerConnection, req: SeenRequest) -> None:
            if len(h.server.requests) == 2:
                both.set()
            await both.wait()
            await echo_path(conn, req)

        async with harness(handler) as h:
            await asyncio.gather(h.get("/a"), h.get("/b"))
            assert len(h.idle()) == 2
            assert h.transport._open == 2
            await h.transport.aclose()
            await eventually(lambda: h.server.gone == 2, "the server to see both connections close")
            await eventually(lambda: h.transport._open == 0, "the pool to count nothing")
            with pytest.raises(httpx.ConnectError, match="closed"):
                await h.send(request(h.server, "/late"))

    run(scenario)


def test_aclose_with_a_response_open_and_a_request_waiting(run: Callable[[Scenario], None]) -> None:
    async def scenario() -> None:
        finish = asyncio.Event()

        async def handler(conn: ServerConnection, req: SeenRequest) -> None:
            await conn.send(answer(headers=(("content-length", "2"),), length=False))
            await finish.wait()
            await conn.send(b"ok")

        async with harness(handler, max_connections=1) as h:
            held = await h.send(request(h.server, "/held"))
            waiting = asyncio.ensure_future(h.send(request(h.server, "/waiting")))
            await h.clock.wait_for_timer("upstream.pool")
            await h.transport.aclose()
            with pytest.raises(httpx.ConnectError, match="closed"):
                await waiting
            finish.set()
            assert await read_all(held) == b"ok"  # the open response still reads to its end
            assert h.idle() == []  # and its connection is closed, not pooled
            assert h.transport._open == 0
            await eventually(lambda: h.server.connections[0].disconnected, "the client to close")
            assert len(h.server.requests) == 1

    run(scenario)


# -- 9. through httpx.AsyncClient ---------------------------------------------------------------


def test_through_async_client(run: Callable[[Scenario], None]) -> None:
    payload = random.Random(3).randbytes(300_000)
    packed = gzip.compress(b"compressed text " * 100)

    async def handler(conn: ServerConnection, req: SeenRequest) -> None:
        if req.target == "/big":
            await conn.send(answer(headers=(("content-length", str(len(payload))),), length=False))
            for start in range(0, len(payload), 50_000):
                await conn.send(payload[start : start + 50_000])
        elif req.target == "/gzip":
            await conn.send(answer(packed, headers=(("content-encoding", "gzip"),)))
        else:
            await conn.send(answer(req.body or req.target.encode(), headers=(("x-method", req.method),)))

    async def scenario() -> None:
        async with harness(handler) as h:
            async with httpx.AsyncClient(transport=h.transport, base_url=h.server.url()) as client:
                response = await client.post("/echo?q=1", json={"a": 1})
                assert response.status_code == 200
                assert response.headers["x-method"] == "POST"
                assert response.json() == {"a": 1}
                assert response.http_version == "HTTP/1.1"

                response = await client.get("/big")
                assert response.content == payload

                async with client.stream("GET", "/big") as streamed:
                    pieces = [piece async for piece in streamed.aiter_bytes()]
                assert b"".join(pieces) == payload

                async with client.stream("GET", "/big") as streamed:
                    assert await streamed.aread() == payload

                response = await client.get("/gzip")
                assert response.content == b"compressed text " * 100

                seen = h.server.requests[0]
                assert seen.target == "/echo?q=1"
                assert seen.header("host") == [f"127.0.0.1:{h.server.port}"]
                assert seen.header("content-length") == [str(len(seen.body))]
                assert seen.header("transfer-encoding") == []
            assert len(h.server.connections) == 1
            assert h.clock.pending() == []
            # The client's own closing closed the transport.
            await eventually(lambda: h.transport._open == 0, "the pool to close with the client")

    run(scenario)


# -- TLS ----------------------------------------------------------------------------------------


def test_https_with_a_trusted_self_signed_certificate(run: Callable[[Scenario], None]) -> None:
    server_tls, client_tls = self_signed_contexts()
    payload = random.Random(11).randbytes(1 << 20)

    async def handler(conn: ServerConnection, req: SeenRequest) -> None:
        if req.target == "/big":
            await conn.send(answer(headers=(("content-length", str(len(payload))),), length=False))
            for start in range(0, len(payload), 64 * 1024):
                await conn.send(payload[start : start + 64 * 1024])
        else:
            await echo_path(conn, req)

    async def scenario() -> None:
        async with harness(handler, ssl_server=server_tls, ssl_context=client_tls) as h:
            assert h.server.url().startswith("https://127.0.0.1:")
            for path in ("/one", "/two?x=1"):
                response, body = await h.get(path, method="POST", content=b"secret")
                assert response.status_code == 200
                assert body == path.encode()
            # A large body over TLS, with back-pressure on the TLS transport.
            response = await h.send(request(h.server, "/big"))
            assert not isinstance(response.stream, httpx.ByteStream)
            assert await response.aread() == payload
            assert len(h.server.connections) == 1
            assert [r.body for r in h.server.requests] == [b"secret", b"secret", b""]

            # The default trust (certifi's roots) does not know this certificate.
            untrusting = Http11Transport(h.clock)
            try:
                with pytest.raises(httpx.ConnectError, match=r"TLS handshake with 127\.0\.0\.1:\d+ failed"):
                    await untrusting.handle_async_request(request(h.server, "/x"))
                assert untrusting._open == 0
            finally:
                await untrusting.aclose()

    run(scenario)
