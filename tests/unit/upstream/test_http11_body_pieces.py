"""Large request bodies on the HTTP/1.1 transport: written after the head as they are (a body in
:class:`BodyPieces` piece by piece, never joined), a slice at a time as the socket takes it.

Each scenario runs on asyncio's selector loop and on uvloop, as the transport's other tests do.
"""

from __future__ import annotations

import asyncio
import functools
import random
from collections.abc import Callable, Coroutine
from typing import Any

import httpx
import pytest

from gateway.clock import ManualClock
from gateway.config import ProviderKind, ProviderSettings
from gateway.upstream.http11_connection import WRITE_SLICE, Http11Connection
from gateway.upstream.http11_transport import BodyPieces, Http11Transport
from gateway.upstream.provider import Upstream
from tests.unit.upstream.servers import (
    LOOPS,
    answer,
    echo_path,
    eventually,
    harness,
    read_all,
    request,
    run_on,
)

Scenario = Callable[[], Coroutine[Any, Any, None]]
MB = 1024 * 1024


@pytest.fixture(params=sorted(LOOPS))
def run(request: pytest.FixtureRequest) -> Callable[[Scenario], None]:
    return functools.partial(run_on, request.param)


def pieces_of(body: bytes) -> BodyPieces:
    """``body`` as three pieces: a view, a new small value, a view (an upload rewritten in place)."""
    view = memoryview(body)
    return BodyPieces([view[: len(body) // 3], b"<new value>", view[len(body) // 3 :]])


def test_pieces_reach_the_server_as_one_body_with_its_length(run: Callable[[Scenario], None]) -> None:
    body = random.Random(3).randbytes(3 * MB + 17)
    pieces = pieces_of(body)
    expected = body[: len(body) // 3] + b"<new value>" + body[len(body) // 3 :]
    assert pieces.size == len(expected)

    async def scenario() -> None:
        async with harness(echo_path) as h:
            settings = ProviderSettings(name="p", kind=ProviderKind.OPENAI, base_url=h.server.url("/v1"))
            upstream = Upstream(settings, h.transport)
            req = upstream.request("POST", "/up", pieces, headers={"content-type": "multipart/form-data"})
            response = await upstream.send(req, stream=False)
            assert response.content == b"/v1/up"
            [seen] = h.server.requests
            assert seen.body == expected
            assert seen.header("content-length") == [str(len(expected))]
            assert seen.header("host") == [f"127.0.0.1:{h.server.port}"]
            assert seen.header("transfer-encoding") == []
            # The connection carries the next request as usual.
            _, again = await h.get("/after")
            assert again == b"/after"
            assert len(h.server.connections) == 1

    run(scenario)


def test_a_large_plain_body_goes_after_its_head_and_a_small_one_with_it(
    run: Callable[[Scenario], None],
) -> None:
    large = random.Random(5).randbytes(MB)

    async def scenario() -> None:
        async with harness(echo_path) as h:
            await read_all(await h.send(request(h.server, "/large", "POST", large)))
            await read_all(await h.send(request(h.server, "/small", "POST", b"{}")))
            first, second = h.server.requests
            assert first.body == large and first.header("content-length") == [str(MB)]
            assert second.raw.endswith(b"\r\n\r\n{}")

    run(scenario)


def test_a_slow_reader_pauses_the_writer_and_the_buffer_stays_small(
    run: Callable[[Scenario], None], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server reads the head, then nothing for a while: the writer waits for the socket to
    drain instead of handing the whole body to the transport's buffer."""
    body = random.Random(9).randbytes(8 * MB)
    buffered: list[int] = []
    pause = Http11Connection.pause_writing

    def noting(self: Http11Connection) -> None:
        assert self.transport is not None
        buffered.append(self.transport.get_write_buffer_size())
        pause(self)

    monkeypatch.setattr(Http11Connection, "pause_writing", noting)
    received = asyncio.Event()

    async def scenario() -> None:
        async def slow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            head = await reader.readuntil(b"\r\n\r\n")
            await eventually(lambda: len(buffered) > 0, "the writer to pause")
            got = await reader.readexactly(len(body))
            assert b"content-length: %d" % len(body) in head.lower()
            assert got == body
            received.set()
            writer.write(answer(b"ok"))
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(slow, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        transport = Http11Transport(ManualClock())
        try:
            req = httpx.Request(
                "POST",
                f"http://127.0.0.1:{port}/slow",
                stream=BodyPieces([body]),
                headers={"host": f"127.0.0.1:{port}", "content-length": str(len(body))},
                extensions={"timeout": {"connect": 5.0, "read": 5.0, "write": 5.0, "pool": 5.0}},
            )
            response = await transport.handle_async_request(req)
            assert await read_all(response) == b"ok"
            assert received.is_set()
        finally:
            await transport.aclose()
            server.close()
            await server.wait_closed()
        # Whenever the writer paused, the transport held at most about one slice.
        assert buffered and max(buffered) <= 2 * WRITE_SLICE, buffered

    run(scenario)


def test_an_answer_before_the_whole_body_stops_the_upload_and_drops_the_connection(
    run: Callable[[Scenario], None],
) -> None:
    """An upstream may refuse an upload from its head (413): the answer is the caller's, the
    rest of the body is not written, and the connection (a request half sent) is not reused."""
    body = random.Random(11).randbytes(16 * MB)

    async def scenario() -> None:
        async def refusing(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(answer(b"too large", status="413 Payload Too Large"))
            await writer.drain()
            with_eof = await reader.read(64 * 1024)  # some of the body, then the client goes
            while with_eof:
                with_eof = await reader.read(MB)
            writer.close()

        server = await asyncio.start_server(refusing, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        transport = Http11Transport(ManualClock())
        try:
            req = httpx.Request(
                "POST",
                f"http://127.0.0.1:{port}/up",
                stream=BodyPieces([body]),
                headers={"host": f"127.0.0.1:{port}", "content-length": str(len(body))},
                extensions={"timeout": {"connect": 5.0, "read": 5.0, "write": 5.0, "pool": 5.0}},
            )
            response = await transport.handle_async_request(req)
            assert response.status_code == 413
            assert await read_all(response) == b"too large"
            await eventually(lambda: transport._open == 0, "the half-sent connection to be dropped")
            assert transport._idle.get(("http", "127.0.0.1", port), []) == []
        finally:
            await transport.aclose()
            server.close()
            await server.wait_closed()

    run(scenario)


def test_cancelled_while_the_upstream_does_not_read_frees_the_slot(run: Callable[[Scenario], None]) -> None:
    body = random.Random(13).randbytes(16 * MB)

    async def scenario() -> None:
        stalled = asyncio.Event()

        async def stalling(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.readuntil(b"\r\n\r\n")
            stalled.set()
            await reader.read()  # nothing more until the client goes
            writer.close()

        server = await asyncio.start_server(stalling, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        transport = Http11Transport(ManualClock())
        try:
            req = httpx.Request(
                "POST",
                f"http://127.0.0.1:{port}/up",
                stream=BodyPieces([body]),
                headers={"host": f"127.0.0.1:{port}", "content-length": str(len(body))},
                extensions={"timeout": {"connect": 5.0, "read": 5.0, "write": 5.0, "pool": 5.0}},
            )
            sending = asyncio.ensure_future(transport.handle_async_request(req))
            await stalled.wait()
            for _ in range(20):
                await asyncio.sleep(0)
            assert not sending.done()
            sending.cancel()
            with pytest.raises(asyncio.CancelledError):
                await sending
            assert transport._open == 0
        finally:
            await transport.aclose()
            server.close()
            await server.wait_closed()

    run(scenario)
