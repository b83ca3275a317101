"""The Responses API's WebSocket mode: ``GET /v1/responses`` upgraded to a WebSocket.

The client sends ``response.create`` messages (the body of ``POST /v1/responses`` with a
``type``; ``stream`` is implicit). Each runs like a streamed ``POST /v1/responses`` through the
same request cycle, on a :class:`SocketTurn` channel: every event the HTTP stream would carry goes
out as one text message, and a refusal before the stream (a bad request, an unknown
``previous_response_id``, a limit) is one ``error`` message ``{"type": "error", "status": <HTTP
status>, "error": {...}}``. Turns run one after the other; a message sent while one runs waits.
At most :data:`WAITING_MESSAGES` wait: past them the gateway stops reading the socket until a
turn ends (the client's sends then wait on TCP's flow control; nothing is refused or dropped).
The connection keeps its last unstored response (:class:`~gateway.responses.session.LastResponse`)
so a ``store: false`` chain continues without the store.

``response.steer`` (input queued into a running response) is answered at once, even during a
turn, with ``response.steer.failed``: code ``steering_not_supported`` and the client's input
returned, which OpenAI's clients carry into their next ``response.create`` (``invalid_input``
for a steer without a ``previous_response_id`` or ``input``).

The key is the gateway key, presented at the handshake as ``Authorization: Bearer <key>`` (or
``api-key``/``x-api-key``), or, from a browser, as the subprotocol
``openai-insecure-api-key.<key>`` (OpenAI SDKs' form). A handshake without a valid key is
refused with the usual 401 body when the server can send an HTTP answer to an upgrade request,
else the socket is closed with code 1008 (policy violation).

The connection is served on raw ASGI in front of Litestar (:mod:`gateway.api.hot_routes`). The
framing is the ASGI server's; the gateway's own (:mod:`gateway.server.websocket`) offers a direct
path, :data:`TEXT_SENDER`, that takes a relay flush's events as ``bytes`` and writes them in one go
(no ASGI message per event, no ``str`` round trip). Under another ASGI server each event is a
``websocket.send``. A disconnect is seen by the connection's reader, which cancels the turn
running (no watcher task per turn).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable, Sequence
from typing import Any, Protocol

import msgspec
from litestar.types import Receive, Scope, Send

from gateway.api import asgi
from gateway.errors.client import GatewayError, InternalError, InvalidRequest, NotFound, PayloadTooLarge
from gateway.exchange import ClientDisconnected
from gateway.responses import endpoint
from gateway.responses.frames import FrameSplitter
from gateway.responses.session import LastResponse
from gateway.services import Services

log = logging.getLogger("gateway.api")
KEY_SUBPROTOCOL = "openai-insecure-api-key."
CREATE = "response.create"
STEER = "response.steer"
POLICY_VIOLATION = 1008
INTERNAL_ERROR = 1011
# The scope extension of the gateway's WebSocket server: its direct path for text messages.
TEXT_SENDER = "gateway.websocket"
# Messages read ahead while a turn runs; each holds up to a request body's limit of memory.
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


def socket_key(scope: Scope) -> str | None:
    """The key of the handshake: its headers, else the key subprotocol."""
    found = asgi.presented_key_from_scope(scope)
    if found:
        return found
    for protocol in _offered(scope):
        if protocol.startswith(KEY_SUBPROTOCOL):
            return protocol[len(KEY_SUBPROTOCOL) :]
    return None


def _offered(scope: Scope) -> list[str]:
    found: Any = scope.get("subprotocols") or ()
    return [str(protocol) for protocol in found]


def chosen_subprotocol(scope: Scope) -> str | None:
    """A subprotocol the client offered (browsers require one back): any but the key's first."""
    offered = _offered(scope)
    plain = [p for p in offered if not p.startswith(KEY_SUBPROTOCOL)]
    chosen = plain or offered
    return chosen[0] if chosen else None


def _error_message(status: int, body: bytes) -> bytes:
    """An error answer (OpenAI's error body) as a WebSocket ``error`` message."""
    payload = _OBJECT.decode(body).get("error") or {}
    if not isinstance(payload.get("code"), str):
        payload["code"] = str(payload.get("type") or "error")
    return _ENCODER.encode({"type": "error", "status": status, "error": payload})


def error_event(error: GatewayError) -> bytes:
    """A refusal as a WebSocket ``error`` message: its status and OpenAI's error object."""
    return _error_message(error.status_code, error.body())


class Socket:
    """One accepted WebSocket on raw ASGI: its messages in and out, and the disconnect hook
    (:class:`~gateway.api.asgi.DisconnectHook`) of the turn running on it."""

    __slots__ = ("_receive", "_send", "_sender", "_watched", "gone", "loop", "scope")

    def __init__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.scope = scope
        self._receive = receive
        self._send = send
        extensions: Any = scope.get("extensions") or {}
        self._sender: TextSender | None = extensions.get(TEXT_SENDER)
        self._watched: asyncio.Task[Any] | None = None
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
        """``task`` runs the turn: :meth:`read` cancels it if the client goes (at once if gone)."""
        if self.gone:
            task.cancel()
        self._watched = task

    def unwatch(self) -> None:
        self._watched = None

    async def read(self, messages: asyncio.Queue[str | None]) -> None:
        """Queue the client's messages until it goes (then None), and end the turn running. A
        full queue stops the reading (the server then stops reading the socket)."""
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
            if self._watched is not None:
                self._watched.cancel()
            # Nobody is left to answer the messages still waiting.
            while not messages.empty():
                messages.get_nowait()
            messages.put_nowait(None)


class SocketTurn:
    """One ``response.create`` message as a :class:`~gateway.exchange.ClientChannel`."""

    __slots__ = ("_body", "_frames", "_key", "_socket", "failed", "started")

    def __init__(self, socket: Socket, key: str | None, body: bytes) -> None:
        self._socket = socket
        self._key = key
        self._body = body
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
            await self._socket.send_texts((body,))
            return
        self.failed = True
        await self._socket.send_texts((_error_message(status, body),))

    async def start_stream(self, headers: Iterable[tuple[str, str]] = ()) -> None:
        self.started = True

    async def send_chunk(self, chunk: bytes) -> None:
        messages = self._frames.feed(chunk)
        if not messages:
            return
        for data in messages:
            if data.startswith(_FAILURES):
                self.failed = True
        await self._socket.send_texts(messages)

    async def end_stream(self) -> None:
        return None

    def cancel_on_disconnect(self) -> contextlib.AbstractAsyncContextManager[None]:
        return self._socket.cancel_on_disconnect()


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


def _create_body(text: str | bytes) -> tuple[bytes, str | None]:
    """The create body of a ``response.create`` message (streamed) and the response it continues;
    a refusal otherwise."""
    try:
        message = _OBJECT.decode(text)
    except (msgspec.DecodeError, RecursionError, OverflowError):
        raise InvalidRequest("The message is not a JSON object.", param=None, code="invalid_json") from None
    kind = message.pop("type", None)
    if kind != CREATE:
        raise InvalidRequest(
            f"Unsupported message type {kind!r}: send 'response.create' messages.",
            param="type",
            code="unsupported_event_type",
        )
    if message.get("background") is True:
        raise InvalidRequest(
            "Background responses are not available over a WebSocket; use POST /v1/responses.",
            param="background",
            code="unsupported_parameter",
        )
    message["stream"] = True
    previous = message.get("previous_response_id")
    return _ENCODER.encode(message), previous if isinstance(previous, str) else None


async def _deny(scope: Scope, receive: Receive, send: Send, error: GatewayError) -> None:
    if "websocket.http.response" in (scope.get("extensions") or {}):
        body = error.body()
        start: Any = {
            "type": "websocket.http.response.start",
            "status": error.status_code,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
        await send(start)
        end: Any = {"type": "websocket.http.response.body", "body": body}
        await send(end)
        return
    socket = Socket(scope, receive, send)
    await socket.accept()
    with contextlib.suppress(ClientDisconnected):
        await socket.send_texts((error_event(error),))
    await socket.close(code=POLICY_VIOLATION)


async def no_socket_here(scope: Scope, receive: Receive, send: Send) -> None:
    """A WebSocket handshake on a path that serves none (``/v1/realtime``...): OpenAI's 404 for
    an unknown URL, not the server's bare 403 for a socket the app did not accept."""
    await _deny(scope, receive, send, NotFound(f"Invalid URL (GET {scope['path']})"))


async def serve_socket(services: Services, scope: Scope, receive: Receive, send: Send) -> None:
    """A Responses WebSocket connection, from its handshake to its close. A bug ends the
    connection with code 1011 (internal error), logged."""
    try:
        await _serve(services, scope, receive, send)
    except Exception:
        log.exception("unhandled error in a Responses WebSocket")
        with contextlib.suppress(Exception):
            close: Any = {"type": "websocket.close", "code": INTERNAL_ERROR, "reason": ""}
            await send(close)


async def _serve(services: Services, scope: Scope, receive: Receive, send: Send) -> None:
    key = socket_key(scope)
    try:
        await services.policy.authenticate(key)
    except GatewayError as refused:
        await _deny(scope, receive, send, refused)
        return
    socket = Socket(scope, receive, send)
    await socket.accept()
    messages: asyncio.Queue[str | None] = asyncio.Queue(WAITING_MESSAGES)
    reader = asyncio.create_task(socket.read(messages), name="responses-socket")
    last = LastResponse()
    try:
        # A turn that found the client gone ends the connection: the messages left wait in vain.
        while (text := await messages.get()) is not None and not socket.gone:
            await _turn(services, socket, key, text, last)
    finally:
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader
        if not socket.gone:
            with contextlib.suppress(Exception):
                await socket.close()


async def _turn(services: Services, socket: Socket, key: str | None, text: str, last: LastResponse) -> None:
    try:
        body, previous = _create_body(text)
    except GatewayError as refused:
        with contextlib.suppress(ClientDisconnected):
            await socket.send_texts((error_event(refused),))
        return
    channel = SocketTurn(socket, key, body)
    try:
        turn = await endpoint.respond(services, channel, last=last)
    except Exception:
        log.exception("unhandled error in a Responses WebSocket turn")
        channel.failed = True
        if not socket.gone:
            with contextlib.suppress(Exception):
                await socket.send_texts(
                    (error_event(InternalError("The server had an error while processing your request.")),)
                )
        turn = None
    finished = turn.finished if turn is not None else None
    if channel.failed or finished is None or finished[0].status == "failed":
        last.forget(previous)
    elif turn is not None and not turn.request.store:
        last.remember(*finished)
