"""The gateway's WebSocket protocol: the app's direct path for text messages (its frames the same
as ``websockets``' own), what a turn of the loop writes leaving in one write and in order, the
connection's state respected, the send buffer's pause, and permessage-deflate only when the
setting asks for it. Bytes go straight to the protocol; a ``websockets`` client protocol reads
what it writes."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from uvicorn.server import ServerState
from websockets.client import ClientProtocol
from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.uri import parse_uri

from gateway.api.socket import TEXT_SENDER, Socket
from gateway.config import settings_from_mapping
from gateway.exchange import ClientDisconnected
from gateway.server.http import GatewayConfig, HttpLimits
from gateway.server.websocket import GatewayWebSocketProtocol, text_frame_head
from gateway.server.worker import worker_config
from tests.unit.server.transport import Transport

App = Callable[[dict[str, Any], Any, Any], Awaitable[None]]


class Connection:
    """A protocol fed a client's handshake; ``read`` parses what it wrote since the last read."""

    def __init__(
        self,
        app: App,
        *,
        compression: bool = False,
        client_offers: bool | ClientPerMessageDeflateFactory = False,
    ) -> None:
        config = GatewayConfig(
            app,
            limits=HttpLimits(),
            lifespan="off",
            log_level="warning",
            ws=GatewayWebSocketProtocol,
            ws_per_message_deflate=compression,
        )
        config.load()
        self.protocol = GatewayWebSocketProtocol(config, ServerState(), {}, _loop=asyncio.get_running_loop())
        self.transport = Transport()
        self.protocol.connection_made(self.transport)
        offer = client_offers if isinstance(client_offers, ClientPerMessageDeflateFactory) else None
        extensions = [offer or ClientPerMessageDeflateFactory()] if client_offers else None
        self.client = ClientProtocol(parse_uri("ws://gw/v1/responses"), extensions=extensions)
        self.client.send_request(self.client.connect())
        self.protocol.data_received(b"".join(self.client.data_to_send()))
        self._read = 0

    def read(self) -> list[Any]:
        """The handshake's response and the frames written since the last read."""
        new = self.transport.writes[self._read :]
        self._read = len(self.transport.writes)
        self.client.receive_data(b"".join(new))
        return list(self.client.events_received())

    def send_from_client(self, frame_bytes: list[bytes]) -> None:
        self.protocol.data_received(b"".join(frame_bytes))

    async def lose(self) -> None:
        """The connection is lost: the app's pending receive gets the disconnect and it ends."""
        self.protocol.connection_lost(None)
        await turns()


async def turns(n: int = 5) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


def texts(events: list[Any]) -> list[bytes]:
    return [bytes(e.data) for e in events if isinstance(e, Frame) and e.opcode is Opcode.TEXT]


@pytest.mark.parametrize("size", [0, 1, 125, 126, 65535, 65536, 70000])
def test_a_text_frame_is_the_one_websockets_builds(size: int) -> None:
    payload = b"x" * size
    expected = Frame(Opcode.TEXT, payload).serialize(mask=False, extensions=[])
    assert text_frame_head(size) + payload == expected


def _sending(*batches: list[bytes], wait: bool = False) -> tuple[App, list[bool]]:
    """Accepts, then sends each batch with the direct path (a turn of the loop between batches
    when ``wait``); the results of the sends go in the list."""
    results: list[bool] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        sender = scope["extensions"][TEXT_SENDER]
        for batch in batches:
            results.append(sender.send_texts(batch))
            if wait:
                await asyncio.sleep(0)
        await receive()  # until the client goes

    return app, results


def test_the_messages_of_one_turn_leave_with_the_handshake_in_one_write() -> None:
    async def scenario() -> None:
        app, results = _sending([b'{"n":1}', b'{"n":2}'], ["é".encode() * 100])
        connection = Connection(app)
        await turns()
        assert len(connection.transport.writes) == 1
        events = connection.read()
        assert isinstance(events[0], Response) and events[0].status_code == 101
        assert texts(events) == [b'{"n":1}', b'{"n":2}', "é".encode() * 100]
        assert results == [True, True]
        await connection.lose()

    asyncio.run(scenario())


def test_each_turn_writes_once() -> None:
    async def scenario() -> None:
        app, _ = _sending([b"a", b"b"], [b"c"], wait=True)
        connection = Connection(app)
        await turns()
        assert len(connection.transport.writes) == 2  # the handshake with a and b; then c
        assert texts(connection.read()) == [b"a", b"b", b"c"]
        await connection.lose()

    asyncio.run(scenario())


def test_messages_and_a_close_in_one_turn_leave_in_order() -> None:
    async def scenario() -> None:
        async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
            await receive()
            await send({"type": "websocket.accept"})
            assert scope["extensions"][TEXT_SENDER].send_texts([b"last"])
            await send({"type": "websocket.close", "code": 1000})
            assert not scope["extensions"][TEXT_SENDER].send_texts([b"after the close"])

        connection = Connection(app)
        await turns()
        assert len(connection.transport.writes) == 1
        events = connection.read()
        frames = [e for e in events if isinstance(e, Frame)]
        assert [(f.opcode, bytes(f.data)) for f in frames[:1]] == [(Opcode.TEXT, b"last")]
        assert frames[1].opcode is Opcode.CLOSE

    asyncio.run(scenario())


def test_nothing_is_sent_once_the_client_closed_or_went_away() -> None:
    async def scenario() -> None:
        app, _ = _sending()
        connection = Connection(app)
        await turns()
        connection.read()
        sender = connection.protocol
        connection.client.send_close(1000)
        connection.send_from_client(connection.client.data_to_send())
        await turns()
        assert not sender.send_texts([b"late"])
        await connection.lose()
        assert not sender.send_texts([b"later"])
        assert b"late" not in b"".join(connection.transport.writes)

    asyncio.run(scenario())


def test_the_app_waits_while_the_send_buffer_is_full() -> None:
    async def scenario() -> None:
        sent = asyncio.Event()

        async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
            socket = Socket(scope, receive, send)
            await socket.accept()
            await socket.send_texts([b"first"])
            await asyncio.sleep(0)
            connection.protocol.pause_writing()  # the transport's buffer went over its mark
            await socket.send_texts([b"second"])
            sent.set()
            await receive()

        connection = Connection(app)
        await turns()
        assert texts(connection.read()) == [b"first"]
        assert not sent.is_set()
        connection.protocol.resume_writing()
        await turns()
        assert sent.is_set()
        assert texts(connection.read()) == [b"second"]
        await connection.lose()

    asyncio.run(scenario())


def test_a_send_after_the_client_went_away_is_a_disconnect() -> None:
    async def scenario() -> None:
        seen: list[str] = []

        async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
            socket = Socket(scope, receive, send)
            await socket.accept()
            await receive()  # the disconnect: the reader's job, not seen by the socket here
            try:
                await socket.send_texts([b"to nobody"])
            except ClientDisconnected:
                seen.append("client gone")

        connection = Connection(app)
        await turns()
        await connection.lose()
        assert seen == ["client gone"]

    asyncio.run(scenario())


def test_a_message_the_app_takes_in_its_turn_does_not_pause_reading() -> None:
    async def scenario() -> None:
        taken: list[str] = []
        go_on = asyncio.Event()

        async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
            await receive()
            await send({"type": "websocket.accept"})
            taken.append((await receive())["text"])  # waiting already: takes it in the same turn
            await go_on.wait()  # busy: the next message waits
            taken.append((await receive())["text"])
            await receive()

        connection = Connection(app)
        await turns()
        connection.read()  # the handshake's answer: the client is open
        connection.client.send_text(b"one")
        connection.send_from_client(connection.client.data_to_send())
        await turns()
        assert taken == ["one"]
        assert connection.transport.reading == []  # neither paused nor resumed
        connection.client.send_text(b"two")
        connection.send_from_client(connection.client.data_to_send())
        await turns()
        assert connection.transport.reading == ["pause"]  # not taken within its turn
        go_on.set()
        await turns()
        assert taken == ["one", "two"]
        assert connection.transport.reading == ["pause", "resume"]
        await connection.lose()

    asyncio.run(scenario())


@pytest.mark.parametrize(
    ("compression", "client_offers", "negotiated"),
    [(False, True, False), (True, True, True), (True, False, False)],
    ids=["off", "on", "on-not-offered"],
)
def test_permessage_deflate_only_when_the_setting_and_the_client_ask(
    compression: bool, client_offers: bool, negotiated: bool
) -> None:
    async def scenario() -> None:
        message = b'{"type":"response.output_text.delta","delta":"hello"}'
        app, _ = _sending([message, message])
        connection = Connection(app, compression=compression, client_offers=client_offers)
        await turns()
        events = connection.read()
        assert isinstance(events[0], Response)
        assert ("Sec-WebSocket-Extensions" in events[0].headers) is negotiated
        assert texts(events) == [message, message]
        compressed_size = len(connection.transport.writes[0]) - len(events[0].serialize())
        plain_size = 2 * (2 + len(message))
        assert (compressed_size < plain_size) is negotiated
        await connection.lose()

    asyncio.run(scenario())


@pytest.mark.parametrize("setting", [None, False, True])
def test_a_worker_serves_websockets_with_this_protocol_and_compression_as_set(setting: bool | None) -> None:
    server = {} if setting is None else {"websocket_compression": setting}
    settings = settings_from_mapping({"server": server})
    config = worker_config(object(), settings, HttpLimits())
    assert config.ws is GatewayWebSocketProtocol
    assert config.ws_per_message_deflate is (setting is True)  # off unless asked for


@pytest.mark.parametrize("context_kept", [True, False], ids=["context-kept", "no-context-takeover"])
def test_deflated_messages_of_every_size_read_back_whole_turn_after_turn(context_kept: bool) -> None:
    async def scenario() -> None:
        sizes = [0, 1, 125, 126, 3000, 70000]
        batches = [[("é" * 7 + str(size)).encode() * (size // 10) for size in sizes] for _ in range(2)]
        app, results = _sending(*batches, wait=True)
        offer = ClientPerMessageDeflateFactory(server_no_context_takeover=not context_kept)
        connection = Connection(app, compression=True, client_offers=offer)
        await turns()
        events = connection.read()
        assert "Sec-WebSocket-Extensions" in events[0].headers
        assert texts(events) == [message for batch in batches for message in batch]
        assert results == [True, True]
        assert len(connection.transport.writes) == 2
        await connection.lose()

    asyncio.run(scenario())
