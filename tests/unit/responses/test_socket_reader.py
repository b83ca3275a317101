"""The Responses WebSocket's reader: how many messages it reads ahead of the turns running, and
what it leaves when the client goes; a create message's lane and ``generate``."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from gateway.api.socket import WAITING_MESSAGES, Socket, in_lane
from gateway.api.socket_lanes import parse_create


class Client:
    """An ASGI ``receive`` with ``count`` text messages, then a disconnect; it counts what was taken."""

    def __init__(self, count: int) -> None:
        self.left = count
        self.taken = 0

    async def receive(self) -> Any:
        self.taken += 1
        if self.left == 0:
            return {"type": "websocket.disconnect", "code": 1000}
        self.left -= 1
        return {"type": "websocket.receive", "text": f"message {self.taken}"}


async def _settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


async def _send(message: Any) -> None:
    raise AssertionError("the reader sends nothing")


async def test_the_reader_stops_reading_when_its_queue_is_full_and_goes_on_as_turns_take_messages() -> None:
    client = Client(50)
    socket = Socket({"type": "websocket"}, client.receive, _send)
    messages: asyncio.Queue[str | None] = asyncio.Queue(WAITING_MESSAGES)
    reader = asyncio.create_task(socket.read(messages))
    await _settle()
    # The queue is full and one more message is read, waiting for room: the socket is not read on.
    assert client.taken == WAITING_MESSAGES + 1
    assert messages.get_nowait() == "message 1"
    await _settle()
    assert client.taken == WAITING_MESSAGES + 2
    assert [messages.get_nowait() for _ in range(3)] == ["message 2", "message 3", "message 4"]
    await _settle()
    assert client.taken == WAITING_MESSAGES + 5
    assert not socket.gone
    reader.cancel()
    await asyncio.gather(reader, return_exceptions=True)


async def test_a_client_that_goes_drops_the_messages_waiting_and_cancels_the_turn() -> None:
    client = Client(3)
    socket = Socket({"type": "websocket"}, client.receive, _send)
    messages: asyncio.Queue[str | None] = asyncio.Queue(WAITING_MESSAGES)
    turn = asyncio.create_task(asyncio.sleep(3600))
    socket.watch(turn)
    await socket.read(messages)
    assert socket.gone
    assert messages.get_nowait() is None and messages.empty()
    await asyncio.gather(turn, return_exceptions=True)
    assert turn.cancelled()


def test_a_create_message_keeps_its_lane_and_generate_to_the_socket() -> None:
    create = parse_create(
        '{"type": "response.create", "model": "m", "input": "x", "stream_id": "lane-1", "generate": false}'
    )
    assert (create.lane, create.generate, create.refusal) == (b'"lane-1"', False, None)
    assert json.loads(create.body) == {"model": "m", "input": "x", "stream": True}
    plain = parse_create(
        '{"type": "response.create", "model": "m", "input": "x", "previous_response_id": "r"}'
    )
    assert (plain.lane, plain.generate, plain.previous) == (None, True, "r")
    refused = parse_create('{"type": "response.cancel", "stream_id": "lane-2"}')
    assert refused.lane == b'"lane-2"' and refused.refusal is not None
    assert parse_create("not json").refusal is not None
    numbered = parse_create('{"type": "response.create", "model": "m", "stream_id": 7}')
    assert numbered.lane is None and numbered.refusal is not None
    assert (
        numbered.refusal.message
        == "Invalid type for 'stream_id': expected a string, but got an integer instead."
    )
    worded = parse_create('{"type": "response.create", "model": "m", "stream_id": "a", "generate": "no"}')
    assert worded.lane == b'"a"' and worded.refusal is not None and worded.refusal.param == "generate"


def test_every_message_of_a_lane_names_it() -> None:
    assert in_lane(b'{"type":"error"}', b'"a"') == b'{"type":"error","stream_id":"a"}'
    assert in_lane(b'{"type":"error"}', None) == b'{"type":"error"}'
