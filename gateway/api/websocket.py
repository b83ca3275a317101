"""The Responses API's WebSocket mode: ``GET /v1/responses`` upgraded to a WebSocket.

The client sends ``response.create`` messages (the body of ``POST /v1/responses`` with a
``type``; ``stream`` is implicit). Each runs like a streamed ``POST /v1/responses`` through the
same request cycle, on a :class:`~gateway.api.socket.SocketTurn` channel: every event the HTTP
stream would carry goes out as one text message, and a refusal before the stream (a bad request,
an unknown ``previous_response_id``, a limit) is one ``error`` message ``{"type": "error",
"status": <HTTP status>, "error": {...}}``. Turns run in lanes (:mod:`gateway.api.socket_lanes`):
one after the other within a lane (``stream_id``), lanes at the same time. The connection keeps
its last unstored responses (:class:`~gateway.responses.session.LastResponse`) so a ``store:
false`` chain continues without the store.

``response.steer`` (input queued into a running response) is answered at once, even during a
turn, with ``response.steer.failed``: code ``steering_not_supported`` and the client's input
returned, which OpenAI's clients carry into their next ``response.create`` (``invalid_input``
for a steer without a ``previous_response_id`` or ``input``).

The key is the gateway key, presented at the handshake as ``Authorization: Bearer <key>`` (or
``api-key``/``x-api-key``), or, from a browser, as the subprotocol
``openai-insecure-api-key.<key>`` (OpenAI SDKs' form). A handshake without a valid key is
refused with the usual 401 body when the server can send an HTTP answer to an upgrade request,
else the socket is closed with code 1008 (policy violation).

The connection is served on raw ASGI in front of Litestar (:mod:`gateway.api.hot_routes`); the
socket itself is :mod:`gateway.api.socket`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from litestar.types import Receive, Scope, Send

from gateway.api.socket import WAITING_MESSAGES, Socket, error_event, socket_key
from gateway.api.socket_lanes import Lanes
from gateway.errors.client import GatewayError, NotFound
from gateway.exchange import ClientDisconnected
from gateway.services import Services

log = logging.getLogger("gateway.api")
POLICY_VIOLATION = 1008
INTERNAL_ERROR = 1011


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
    lanes = Lanes(services, socket, key)
    try:
        # A turn that found the client gone ends the connection: the messages left wait in vain.
        while (text := await messages.get()) is not None and not socket.gone:
            await lanes.take(text)
    finally:
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader
        await lanes.close()
        if not socket.gone:
            with contextlib.suppress(Exception):
                await socket.close()
