"""One accepted Responses WebSocket on raw ASGI (:class:`Socket`) and one turn on it as a
request-cycle channel (:class:`SocketTurn`).

The framing is the ASGI server's; the gateway's own (:mod:`gateway.server.websocket`) offers a
direct path, :data:`TEXT_SENDER`, that takes a relay flush's events as ``bytes`` and writes them
in one go (no ASGI message per event, no ``str`` round trip). Under another ASGI server each
event is a ``websocket.send``. A disconnect is seen by the socket's reader, which cancels the
turns running (no watcher task per turn).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable, Sequence
from typing import Any, Protocol

import msgspec
from litestar.types import Receive, Scope, Send

from gateway.api import asgi
from gateway.errors.client import GatewayError, PayloadTooLarge
from gateway.exchange import ClientDisconnected
from gateway.responses.frames import FrameSplitter

KEY_SUBPROTOCOL = "openai-insecure-api-key."
STEER = "response.steer"
# The scope extension of the gateway's WebSocket server: its direct path for text messages.
TEXT_SENDER = "gateway.websocket"
# Messages read ahead of the turns; each holds up to a request body's limit of memory.
WAITING_MESSAGES = 8
_FAILURES = (b'{"type":"error"', b'{"type":"response.failed"')
_OBJECT = msgspec.json.Decoder(dict[str, Any])
_ENCODER = msgspec.json.Encoder()


class TextSender(Protocol):
    """What the gateway's WebSocket server offers under ``scope["extensions"]["gateway.websocket"]``."""

    writable: asyncio.Event  # clear while the connection's send buffer is over its high-water mark

    def send_texts(self, messages: Sequence[bytes]) -> bool:
        """Send each message (UTF-8 text) as a text message, written with the rest of this turn
        of the loop; False (nothing sent) once the connection is closing or gone."""
        ...


def _offered(scope: Scope) -> list[str]:
    found: Any = scope.get("subprotocols") or ()
    return [str(protocol) for protocol in found]


def socket_key(scope: Scope) -> str | None:
    """The key of the handshake: its headers, else the key subprotocol."""
    found = asgi.presented_key_from_scope(scope)
    if found:
        return found
    for protocol in _offered(scope):
        if protocol.startswith(KEY_SUBPROTOCOL):
            return protocol[len(KEY_SUBPROTOCOL) :]
    return None


def chosen_subprotocol(scope: Scope) -> str | None:
    """A subprotocol the client offered (browsers require one back): any but the key's first."""
    offered = _offered(scope)
    plain = [p for p in offered if not p.startswith(KEY_SUBPROTOCOL)]
    chosen = plain or offered
    return chosen[0] if chosen else None


def in_lane(message: bytes, lane: bytes | None) -> bytes:
    """``message`` (a JSON object) with the ``stream_id`` of its lane (``lane``: the id as JSON)."""
    if lane is None or not message.endswith(b"}"):
        return message
    return message[:-1] + b',"stream_id":' + lane + b"}"


def _error_message(status: int, body: bytes) -> bytes:
    """An error answer (OpenAI's error body) as a WebSocket ``error`` message."""
    payload = _OBJECT.decode(body).get("error") or {}
    if not isinstance(payload.get("code"), str):
        payload["code"] = str(payload.get("type") or "error")
    return _ENCODER.encode({"type": "error", "status": status, "error": payload})


def error_event(error: GatewayError, lane: bytes | None = None) -> bytes:
    """A refusal as a WebSocket ``error`` message: its status and OpenAI's error object."""
    return in_lane(_error_message(error.status_code, error.body()), lane)


def steer_refusal(text: str) -> bytes | None:
    """The ``response.steer.failed`` answer to a ``response.steer`` message; None for any other."""
    try:
        message = _OBJECT.decode(text)
    except (msgspec.DecodeError, RecursionError, OverflowError):
        return None
    if message.get("type") != STEER:
        return None
    target, given = message.get("previous_response_id"), message.get("input")
    if not isinstance(target, str) or not given:
        code, why = "invalid_input", "response.steer needs a previous_response_id and a non-empty input."
    else:
        code = "steering_not_supported"
        why = "Steering is not supported by this gateway; send the input in a new response.create."
    return _ENCODER.encode(
        {
            "type": "response.steer.failed",
            "sequence_number": 0,
            "steer": {"previous_response_id": target, "input": given},
            "error": {"type": "invalid_request_error", "code": code, "message": why},
        }
    )


class Socket:
    """One accepted WebSocket on raw ASGI: its messages in and out, and the disconnect hook
    (:class:`~gateway.api.asgi.DisconnectHook`) of the turns running on it."""

    __slots__ = ("_receive", "_send", "_sender", "_watched", "gone", "loop", "scope")

    def __init__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.scope = scope
        self._receive = receive
        self._send = send
        extensions: Any = scope.get("extensions") or {}
        self._sender: TextSender | None = extensions.get(TEXT_SENDER)
        self._watched: set[asyncio.Task[Any]] = set()
        self.gone = False
        self.loop = asyncio.get_running_loop()

    async def accept(self) -> None:
        await self._receive()  # websocket.connect
        accept: Any = {
            "type": "websocket.accept",
            "subprotocol": chosen_subprotocol(self.scope),
            "headers": [],
        }
        await self._send(accept)

    async def receive_text(self) -> str | None:
        """The next message's text ("" for a binary one); None once the client is gone."""
        message: Any = await self._receive()
        if message["type"] == "websocket.disconnect":
            return None
        text: str = message.get("text") or ""
        return text

    async def send_texts(self, messages: Sequence[bytes]) -> None:
        """Send text messages; :class:`ClientDisconnected` when the client is gone."""
        if self.gone:
            raise ClientDisconnected
        sender = self._sender
        if sender is not None:
            if not sender.writable.is_set():
                await sender.writable.wait()
            if not sender.send_texts(messages):
                self.gone = True
                raise ClientDisconnected
            return
        try:
            for message in messages:
                event: Any = {"type": "websocket.send", "text": message.decode()}
                await self._send(event)
        except (RuntimeError, OSError):
            self.gone = True
            raise ClientDisconnected from None

    async def close(self, code: int = 1000) -> None:
        event: Any = {"type": "websocket.close", "code": code, "reason": ""}
        await self._send(event)

    # -- the disconnect hook -----------------------------------------------------------------
    def cancel_on_disconnect(self) -> asgi.CancelOnDisconnect:
        """Cancel the enclosed work when the client goes away; it then raises
        :class:`ClientDisconnected`. The connection's reader cancels it: no watcher task."""
        return asgi.CancelOnDisconnect(self._receive, self)

    def watch(self, task: asyncio.Task[Any]) -> None:
        """``task`` runs a turn: :meth:`read` cancels it if the client goes (at once if gone)."""
        if self.gone:
            task.cancel()
        self._watched.add(task)

    def unwatch(self) -> None:
        """The current task's turn is over (the hook's protocol names no task: it is this one)."""
        task = asyncio.current_task(self.loop)
        if task is not None:
            self._watched.discard(task)

    async def read(self, messages: asyncio.Queue[str | None]) -> None:
        """Queue the client's messages until it goes (then None), and end the turns running. A
        full queue stops the reading (the server then stops reading the socket). A
        ``response.steer`` is answered at once (:func:`steer_refusal`)."""
        try:
            while (text := await self.receive_text()) is not None:
                if STEER in text and (refusal := steer_refusal(text)) is not None:
                    await self.send_texts((refusal,))
                    continue
                await messages.put(text)
        except (RuntimeError, OSError, ClientDisconnected):
            pass
        finally:
            self.gone = True
            for task in self._watched:
                task.cancel()
            # Nobody is left to answer the messages still waiting.
            while not messages.empty():
                messages.get_nowait()
            messages.put_nowait(None)


class SocketTurn:
    """One ``response.create`` message as a :class:`~gateway.exchange.ClientChannel`; every
    message it sends carries the ``stream_id`` of its lane, when the client named one."""

    __slots__ = ("_body", "_frames", "_key", "_lane", "_socket", "failed", "started")

    def __init__(self, socket: Socket, key: str | None, body: bytes, lane: bytes | None = None) -> None:
        self._socket = socket
        self._key = key
        self._body = body
        self._lane = lane
        self._frames = FrameSplitter()
        self.started = False
        self.failed = False  # an error reached the client

    def presented_key(self) -> str | None:
        return self._key

    def header(self, name: bytes) -> str | None:
        return asgi.header(self._socket.scope, name)

    async def read_body(self, limit: int) -> bytes:
        if len(self._body) > limit:
            raise PayloadTooLarge(
                f"Request body is larger than the limit of {limit} bytes.", code="request_too_large"
            )
        return self._body

    async def send_json(self, status: int, body: bytes, headers: Iterable[tuple[str, str]] = ()) -> None:
        self.started = True
        if status == 200:
            await self._socket.send_texts((in_lane(body, self._lane),))
            return
        self.failed = True
        await self._socket.send_texts((in_lane(_error_message(status, body), self._lane),))

    async def start_stream(self, headers: Iterable[tuple[str, str]] = ()) -> None:
        self.started = True

    async def send_chunk(self, chunk: bytes) -> None:
        messages = self._frames.feed(chunk)
        if not messages:
            return
        for data in messages:
            if data.startswith(_FAILURES):
                self.failed = True
        lane = self._lane
        if lane is not None:
            messages = [in_lane(data, lane) for data in messages]
        await self._socket.send_texts(messages)

    async def end_stream(self) -> None:
        return None

    def cancel_on_disconnect(self) -> contextlib.AbstractAsyncContextManager[None]:
        return self._socket.cancel_on_disconnect()
