"""The combining writer: what an answer writes in one turn of the loop leaves in one write, and
nothing written waits past the end of that turn (a whole answer not even past its last send);
and the same writer as the request's disconnect
hook. Bytes are fed straight to the protocol; each ``write`` the transport receives is recorded
on its own."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from uvicorn.server import ServerState

from gateway.api.asgi import DISCONNECT_HOOK, cancel_on_disconnect
from gateway.exchange import ClientDisconnected
from gateway.server.combining import CombiningHttpProtocol, CombiningWriter
from gateway.server.http import GatewayConfig, HttpLimits
from tests.unit.server.transport import Transport

POST = b"POST /x HTTP/1.1\r\nhost: gw\r\ncontent-length: 2\r\n\r\nhi"
App = Callable[[dict[str, Any], Any, Any], Awaitable[None]]


def serve(app: App, request: bytes = POST) -> tuple[CombiningHttpProtocol, Transport]:
    config = GatewayConfig(app, limits=HttpLimits(), lifespan="off", log_level="warning")
    config.load()
    protocol = CombiningHttpProtocol(config, ServerState(), {}, _loop=asyncio.get_running_loop())
    transport = Transport()
    protocol.connection_made(transport)
    protocol.data_received(request)
    return protocol, transport


async def turns(n: int = 5) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


def head(writes: list[bytes]) -> bytes:
    return writes[0].split(b"\r\n\r\n", 1)[0]


async def _json(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await receive()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"7")]})
    await send({"type": "http.response.body", "body": b'{"a":1}'})


def test_a_json_answer_is_one_write() -> None:
    async def scenario() -> None:
        _, transport = serve(_json)
        await turns()
        assert len(transport.writes) == 1
        assert transport.writes[0].startswith(b"HTTP/1.1 200 OK\r\n")
        assert transport.writes[0].endswith(b'\r\n\r\n{"a":1}')

    asyncio.run(scenario())


def test_a_whole_answer_leaves_before_its_handler_finishes_the_step() -> None:
    """The settlement and metrics a handler records after its answer do not delay the answer."""

    async def scenario() -> None:
        seen: list[int] = []

        async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
            await _json(scope, receive, send)
            seen.append(len(transport.writes))  # the closing work, in the same step

        _, transport = serve(app)
        await turns()
        assert seen == [1]
        assert len(transport.writes) == 1
        assert transport.writes[0].endswith(b'\r\n\r\n{"a":1}')

    asyncio.run(scenario())


def test_a_stream_writes_once_per_turn() -> None:
    async def stream(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"one", "more_body": True})
        await asyncio.sleep(0)  # a wait for the upstream: what came before leaves now
        await send({"type": "http.response.body", "body": b"two", "more_body": True})
        await asyncio.sleep(0)
        await send({"type": "http.response.body", "body": b"three", "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def scenario() -> None:
        _, transport = serve(stream)
        await turns()
        assert len(transport.writes) == 3
        assert b"transfer-encoding: chunked" in head(transport.writes)
        assert transport.writes[0].endswith(b"\r\n\r\n3\r\none\r\n")
        assert transport.writes[1] == b"3\r\ntwo\r\n"
        assert transport.writes[2] == b"5\r\nthree\r\n0\r\n\r\n"

    asyncio.run(scenario())


def test_a_head_waits_for_no_body_past_its_turn() -> None:
    async def scenario() -> None:
        later = asyncio.Event()

        async def slow(scope: dict[str, Any], receive: Any, send: Any) -> None:
            await receive()
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await later.wait()
            await send({"type": "http.response.body", "body": b"late", "more_body": False})

        _, transport = serve(slow)
        await turns()
        assert len(transport.writes) == 1  # the head alone, at the end of the turn that wrote it
        assert transport.writes[0].endswith(b"\r\n\r\n")
        later.set()
        await turns()
        assert transport.writes[1:] == [b"4\r\nlate\r\n0\r\n\r\n"]

    asyncio.run(scenario())


def test_close_writes_what_is_kept_first() -> None:
    async def scenario() -> None:
        transport = Transport()
        writer = CombiningWriter(transport, asyncio.get_running_loop())
        writer.write(b"a")
        writer.write(b"")
        writer.write(b"b")
        assert transport.writes == []
        writer.close()
        assert transport.writes == [b"ab"]
        assert transport.closed
        await turns()
        assert transport.writes == [b"ab"]  # the scheduled flush finds nothing left

    asyncio.run(scenario())


def test_bytes_for_a_closed_connection_are_dropped() -> None:
    async def scenario() -> None:
        transport = Transport()
        writer = CombiningWriter(transport, asyncio.get_running_loop())
        writer.write(b"a")
        transport.close()
        await turns()
        assert transport.writes == []

    asyncio.run(scenario())


@pytest.mark.parametrize("keep_alive", [True, False])
def test_a_connection_close_answer_is_written_before_the_close(keep_alive: bool) -> None:
    request = POST if keep_alive else POST.replace(b"host: gw\r\n", b"host: gw\r\nconnection: close\r\n")

    async def scenario() -> None:
        _, transport = serve(_json, request)
        await turns()
        assert len(transport.writes) == 1
        assert transport.writes[0].endswith(b'{"a":1}')
        assert transport.closed is not keep_alive

    asyncio.run(scenario())


# -- the disconnect hook --------------------------------------------------------------------------


def _waiting_handler(seen: list[str], hook_seen: list[object]) -> App:
    """Answers nothing: waits inside cancel_on_disconnect and records how the wait ended."""

    async def handler(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        hook_seen.append(scope["extensions"][DISCONNECT_HOOK])
        try:
            async with cancel_on_disconnect(receive, scope):
                await asyncio.Event().wait()
        except ClientDisconnected:
            seen.append("client gone")
        except asyncio.CancelledError:
            seen.append("cancelled")
            raise

    return handler


def test_a_lost_connection_cancels_the_watched_handler_without_a_watcher_task() -> None:
    async def scenario() -> None:
        seen: list[str] = []
        hooks: list[object] = []
        protocol, _ = serve(_waiting_handler(seen, hooks))
        await turns()
        assert isinstance(hooks[0], CombiningWriter)
        running = {t for t in asyncio.all_tasks() if t is not asyncio.current_task()}
        assert len(running) == 1  # the handler alone: nothing waits on receive for it
        protocol.connection_lost(None)
        await turns()
        assert seen == ["client gone"]
        assert hooks[0].gone

    asyncio.run(scenario())


def test_a_connection_lost_before_the_block_cancels_at_its_first_wait() -> None:
    async def scenario() -> None:
        seen: list[str] = []
        writer = CombiningWriter(Transport(), asyncio.get_running_loop())
        writer.lost()
        scope = {"extensions": {DISCONNECT_HOOK: writer}}

        async def receive() -> dict[str, Any]:
            raise AssertionError("the hook is used, not receive")

        async def handler() -> None:
            try:
                async with cancel_on_disconnect(receive, scope):  # type: ignore[arg-type]
                    await asyncio.sleep(0)
            except ClientDisconnected:
                seen.append("client gone")

        await handler()
        assert seen == ["client gone"]

    asyncio.run(scenario())


def test_a_cancellation_from_elsewhere_is_not_a_disconnect() -> None:
    async def scenario() -> None:
        seen: list[str] = []
        hooks: list[object] = []
        protocol, _ = serve(_waiting_handler(seen, hooks))
        await turns()
        (task,) = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        task.cancel()  # a drain ending the request, say
        await turns()
        assert seen == ["cancelled"]
        protocol.connection_lost(None)  # after the block: nothing to cancel
        await turns()
        assert seen == ["cancelled"]

    asyncio.run(scenario())


def test_without_the_hook_a_watcher_task_waits_for_http_disconnect() -> None:
    async def scenario() -> None:
        seen: list[str] = []
        gone = asyncio.Event()

        async def receive() -> dict[str, Any]:
            await gone.wait()
            return {"type": "http.disconnect"}

        async def handler() -> None:
            try:
                async with cancel_on_disconnect(receive, {"type": "http"}):  # type: ignore[arg-type]
                    await asyncio.Event().wait()
            except ClientDisconnected:
                seen.append("client gone")

        task = asyncio.ensure_future(handler())
        await turns()
        assert len(asyncio.all_tasks()) == 3  # this test, the handler and its watcher
        gone.set()
        await task
        assert seen == ["client gone"]
        await turns()
        assert len(asyncio.all_tasks()) == 1

    asyncio.run(scenario())


@pytest.mark.parametrize("closing", ["shutdown", "expire"])
def test_an_answer_written_in_the_turn_of_a_close_still_goes_out_first(closing: str) -> None:
    async def started(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"one", "more_body": True})
        await asyncio.Event().wait()

    async def scenario() -> None:
        protocol, transport = serve(started)
        await asyncio.sleep(0)  # the app ran: its head and first chunk are kept for the end of the turn
        assert transport.writes == []
        getattr(protocol, closing)()  # the server ends the connection in that same turn
        # (a graceful shutdown lets the unfinished answer end first: the connection stays open)
        assert transport.closed is (closing == "expire")
        assert len(transport.writes) == 1
        assert transport.writes[0].endswith(b"\r\n\r\n3\r\none\r\n")

    asyncio.run(scenario())
