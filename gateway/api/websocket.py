"""The Responses API's WebSocket mode: ``GET /v1/responses`` upgraded to a WebSocket.

The client sends ``response.create`` messages (the body of ``POST /v1/responses`` with a
``type``; ``stream`` is implicit). Each runs like a streamed ``POST /v1/responses`` through the
same request cycle, on a :class:`SocketTurn` channel: every event the HTTP stream would carry goes
out as one text message, and a refusal before the stream (a bad request, an unknown
``previous_response_id``, a limit) is one ``error`` message ``{"type": "error", "status": <HTTP
status>, "error": {...}}``. Turns run one after the other; a message sent while one runs waits.
The connection keeps its last unstored response (:class:`~gateway.responses.session.LastResponse`)
so a ``store: false`` chain continues without the store.

The key is the gateway key, presented at the handshake as ``Authorization: Bearer <key>`` (or
``api-key``/``x-api-key``), or, from a browser, as the subprotocol
``openai-insecure-api-key.<key>`` (OpenAI SDKs' form). A handshake without a valid key is
refused with the usual 401 body when the server can send an HTTP answer to an upgrade request,
else the socket is closed with code 1008 (policy violation). The framing is the ASGI server's
(uvicorn with ``websockets``); this module only speaks ASGI through Litestar's ``WebSocket``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Iterable
from typing import Any

import msgspec
from litestar import WebSocket
from litestar.exceptions import WebSocketDisconnect
from litestar.types import Receive, Scope, Send

from gateway.api import asgi
from gateway.errors.client import GatewayError, InternalError, InvalidRequest, PayloadTooLarge
from gateway.exchange import ClientDisconnected
from gateway.responses import endpoint
from gateway.responses.frames import FrameSplitter
from gateway.responses.session import LastResponse
from gateway.services import Services

log = logging.getLogger("gateway.api")
KEY_SUBPROTOCOL = "openai-insecure-api-key."
CREATE = "response.create"
POLICY_VIOLATION = 1008
_OBJECT = msgspec.json.Decoder(dict[str, Any])
_ENCODER = msgspec.json.Encoder()


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


def error_event(error: GatewayError) -> bytes:
    """A refusal as a WebSocket ``error`` message: its status and OpenAI's error object."""
    payload = _OBJECT.decode(error.body()).get("error") or {}
    if not isinstance(payload.get("code"), str):
        payload["code"] = str(payload.get("type") or "error")
    return _ENCODER.encode({"type": "error", "status": error.status_code, "error": payload})


class SocketTurn:
    """One ``response.create`` message as a :class:`~gateway.exchange.ClientChannel`."""

    def __init__(
        self, socket: WebSocket[Any, Any, Any], key: str | None, body: bytes, gone: asyncio.Event
    ) -> None:
        self._socket = socket
        self._key = key
        self._body = body
        self._gone = gone
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

    async def _send(self, data: bytes) -> None:
        if self._gone.is_set():
            raise ClientDisconnected
        try:
            await self._socket.send_data(data.decode(), mode="text")
        except (WebSocketDisconnect, RuntimeError, OSError):
            raise ClientDisconnected from None

    async def send_json(self, status: int, body: bytes, headers: Iterable[tuple[str, str]] = ()) -> None:
        self.started = True
        if status == 200:
            await self._send(body)
            return
        self.failed = True
        payload = _OBJECT.decode(body).get("error") or {}
        if not isinstance(payload.get("code"), str):
            payload["code"] = str(payload.get("type") or "error")
        await self._send(_ENCODER.encode({"type": "error", "status": status, "error": payload}))

    async def start_stream(self, headers: Iterable[tuple[str, str]] = ()) -> None:
        self.started = True

    async def send_chunk(self, chunk: bytes) -> None:
        for data in self._frames.feed(chunk):
            if data.startswith(b'{"type":"error"') or data.startswith(b'{"type":"response.failed"'):
                self.failed = True
            await self._send(data)

    async def end_stream(self) -> None:
        return None

    @contextlib.asynccontextmanager
    async def cancel_on_disconnect(self) -> AsyncIterator[None]:
        task = asyncio.current_task()
        assert task is not None
        gone = self._gone

        async def watch() -> None:
            await gone.wait()
            task.cancel()

        watcher = asyncio.create_task(watch())
        try:
            yield
        except asyncio.CancelledError:
            if gone.is_set():
                task.uncancel()
                raise ClientDisconnected from None
            raise
        finally:
            watcher.cancel()


def _create_body(text: str | bytes) -> bytes:
    """The create body of a ``response.create`` message (streamed); a refusal otherwise."""
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
    return _ENCODER.encode(message)


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
    socket: WebSocket[Any, Any, Any] = WebSocket(scope, receive, send)
    await socket.accept(subprotocols=chosen_subprotocol(scope))
    await socket.send_data(error_event(error).decode(), mode="text")
    await socket.close(code=POLICY_VIOLATION)


async def serve_socket(services: Services, scope: Scope, receive: Receive, send: Send) -> None:
    """A Responses WebSocket connection, from its handshake to its close."""
    key = socket_key(scope)
    try:
        await services.policy.authenticate(key)
    except GatewayError as refused:
        await _deny(scope, receive, send, refused)
        return
    socket: WebSocket[Any, Any, Any] = WebSocket(scope, receive, send)
    await socket.accept(subprotocols=chosen_subprotocol(scope))
    messages: asyncio.Queue[str | bytes | None] = asyncio.Queue()
    gone = asyncio.Event()

    async def read() -> None:
        try:
            while True:
                messages.put_nowait(await socket.receive_data(mode="text"))
        except (WebSocketDisconnect, RuntimeError):
            pass
        finally:
            gone.set()
            messages.put_nowait(None)

    reader = asyncio.create_task(read(), name="responses-socket")
    last = LastResponse()
    try:
        while (text := await messages.get()) is not None:
            await _turn(services, socket, key, text, last, gone)
    finally:
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader
        if not gone.is_set():
            with contextlib.suppress(Exception):
                await socket.close()


async def _turn(
    services: Services,
    socket: WebSocket[Any, Any, Any],
    key: str | None,
    text: str | bytes,
    last: LastResponse,
    gone: asyncio.Event,
) -> None:
    previous: str | None = None
    try:
        body = _create_body(text)
        found = _OBJECT.decode(body).get("previous_response_id")
        previous = found if isinstance(found, str) else None
    except GatewayError as refused:
        with contextlib.suppress(WebSocketDisconnect, RuntimeError, OSError):
            await socket.send_data(error_event(refused).decode(), mode="text")
        return
    channel = SocketTurn(socket, key, body, gone)
    try:
        turn = await endpoint.respond(services, channel, last=last)
    except Exception:
        log.exception("unhandled error in a Responses WebSocket turn")
        channel.failed = True
        if not gone.is_set():
            with contextlib.suppress(Exception):
                await socket.send_data(
                    error_event(
                        InternalError("The server had an error while processing your request.")
                    ).decode(),
                    mode="text",
                )
        turn = None
    finished = turn.finished if turn is not None else None
    if channel.failed or finished is None or finished[0].status == "failed":
        last.forget(previous)
    elif turn is not None and not turn.request.store:
        last.remember(*finished)
