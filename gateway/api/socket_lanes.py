"""The ``response.create`` messages of one Responses WebSocket, run in lanes.

A message may name a lane (``stream_id``). The turns of one lane run one after the other, in the
order sent; turns of different lanes run at the same time, and every message a turn sends
carries its lane's ``stream_id``. Messages without one share the unnamed lane: a client that
never names lanes sees its turns run strictly in order, and a message that is no valid create
is answered in its place in that order. At most :data:`TURNS_HELD` turns are held at once
(running or waiting in a lane); past them the socket's messages wait to be taken
(:data:`~gateway.api.socket.WAITING_MESSAGES`), then the socket itself is not read.

``generate: false`` prepares the request's state without model output
(:mod:`gateway.responses.prepared`). ``stream_id`` and ``generate`` belong to the socket: neither
reaches an upstream.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from typing import Any

import msgspec

from gateway.api.socket import Socket, SocketTurn, error_event
from gateway.errors.client import GatewayError, InternalError, InvalidRequest
from gateway.exchange import ClientDisconnected
from gateway.exchange.body import invalid_type, optional_bool
from gateway.responses import endpoint
from gateway.responses.session import LastResponse
from gateway.services import Services

log = logging.getLogger("gateway.api")
CREATE = "response.create"
TURNS_HELD = 8
_OBJECT = msgspec.json.Decoder(dict[str, Any])
_ENCODER = msgspec.json.Encoder()


class Create(msgspec.Struct, frozen=True):
    """One message: its lane, and either a create body or the refusal that answers it."""

    lane: bytes | None  # the ``stream_id`` as JSON
    body: bytes = b""
    previous: str | None = None
    generate: bool = True
    refusal: GatewayError | None = None


def parse_create(text: str) -> Create:
    """A ``response.create`` message as the body of a streamed ``POST /v1/responses``."""
    try:
        message = _OBJECT.decode(text)
    except (msgspec.DecodeError, RecursionError, OverflowError):
        refusal = InvalidRequest("The message is not a JSON object.", param=None, code="invalid_json")
        return Create(None, refusal=refusal)
    stream_id = message.pop("stream_id", None)
    lane = _ENCODER.encode(stream_id) if isinstance(stream_id, str) else None
    if stream_id is not None and lane is None:
        return Create(None, refusal=invalid_type("stream_id", "a string", stream_id))
    kind = message.pop("type", None)
    if kind != CREATE:
        refusal = InvalidRequest(
            f"Unsupported message type {kind!r}: send 'response.create' messages.",
            param="type",
            code="unsupported_event_type",
        )
        return Create(lane, refusal=refusal)
    if message.get("background") is True:
        refusal = InvalidRequest(
            "Background responses are not available over a WebSocket; use POST /v1/responses.",
            param="background",
            code="unsupported_parameter",
        )
        return Create(lane, refusal=refusal)
    try:
        generate = optional_bool(message, "generate", True)
    except InvalidRequest as refusal:
        return Create(lane, refusal=refusal)
    message.pop("generate", None)
    message["stream"] = True
    previous = message.get("previous_response_id")
    return Create(
        lane, _ENCODER.encode(message), previous if isinstance(previous, str) else None, generate=generate
    )


class Lanes:
    """The turns of one socket, by lane."""

    def __init__(self, services: Services, socket: Socket, key: str | None) -> None:
        self._services = services
        self._socket = socket
        self._key = key
        self._last = LastResponse()
        self._lanes: dict[bytes | None, deque[Create]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._room = asyncio.Semaphore(TURNS_HELD)

    async def take(self, text: str) -> None:
        """Put the message's turn in its lane (waits while :data:`TURNS_HELD` are held)."""
        await self._room.acquire()
        create = parse_create(text)
        waiting = self._lanes.get(create.lane)
        if waiting is not None:
            waiting.append(create)
            return
        self._lanes[create.lane] = deque((create,))
        task = asyncio.get_running_loop().create_task(self._run(create.lane), name="responses-socket-lane")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, lane: bytes | None) -> None:
        waiting = self._lanes[lane]
        try:
            while waiting:
                try:
                    await self._turn(waiting[0])
                finally:
                    waiting.popleft()
                    self._room.release()
        finally:
            if self._lanes.get(lane) is waiting:
                del self._lanes[lane]

    async def close(self) -> None:
        """End every lane (the client is gone, or the connection is being closed)."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _turn(self, create: Create) -> None:
        socket = self._socket
        if socket.gone:
            return
        if create.refusal is not None:
            with contextlib.suppress(ClientDisconnected):
                await socket.send_texts((error_event(create.refusal, create.lane),))
            return
        channel = SocketTurn(socket, self._key, create.body, create.lane)
        last = self._last
        try:
            turn = await endpoint.respond(self._services, channel, last=last, generate=create.generate)
        except Exception:
            log.exception("unhandled error in a Responses WebSocket turn")
            channel.failed = True
            if not socket.gone:
                with contextlib.suppress(Exception):
                    internal = InternalError("The server had an error while processing your request.")
                    await socket.send_texts((error_event(internal, create.lane),))
            turn = None
        finished = turn.finished if turn is not None else None
        if channel.failed or finished is None or finished[0].status == "failed":
            last.forget(create.previous)
        elif turn is not None and not turn.request.store:
            last.remember(*finished)
