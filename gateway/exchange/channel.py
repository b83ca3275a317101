"""The client side of a request, as the exchange sees it: the seam between HTTP and the gateway.

A :class:`ClientChannel` reads the request body and the presented key and sends the answer:
a whole JSON body, or a stream (start, chunks, end). The ASGI layer implements it over
``scope``/``receive``/``send`` (``gateway.api.asgi``); tests use :class:`MemoryChannel`
(``gateway.exchange.memory``). Nothing below the HTTP layer knows which one it talks to.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from contextlib import AbstractAsyncContextManager
from typing import Protocol

from gateway.errors.client import GatewayError

Headers = Iterable[tuple[str, str]]


class ClientDisconnected(Exception):
    """The client went away before the answer was complete."""


def new_request_id() -> str:
    """``req_`` and 32 random hex digits (a uuid4's worth of randomness without its object)."""
    return "req_" + os.urandom(16).hex()


class ClientChannel(Protocol):
    @property
    def started(self) -> bool:
        """The answer's status line and headers are out (nothing else can be answered now)."""
        ...

    def presented_key(self) -> str | None:
        """The gateway key the client presented (``Authorization: Bearer``, ``api-key``, ``x-api-key``)."""
        ...

    def header(self, name: bytes) -> str | None:
        """A request header (``name`` in lower case), or None when absent."""
        ...

    async def read_body(self, limit: int) -> bytes:
        """The whole request body. Raises ``PayloadTooLarge`` beyond ``limit`` bytes and
        :class:`ClientDisconnected` when the client goes away."""
        ...

    async def send_json(self, status: int, body: bytes, headers: Headers = ()) -> None:
        """A whole JSON answer (``headers`` override the default content type)."""
        ...

    async def start_stream(self, headers: Headers = ()) -> None:
        """A 200 event stream's status line and headers."""
        ...

    async def send_chunk(self, chunk: bytes) -> None: ...

    async def end_stream(self) -> None: ...

    def cancel_on_disconnect(self) -> AbstractAsyncContextManager[None]:
        """Cancel the enclosed work when the client disconnects; it then raises
        :class:`ClientDisconnected`."""
        ...


async def send_error(channel: ClientChannel, error: GatewayError, headers: Headers = ()) -> None:
    """An error in OpenAI's shape; every answer carries an ``x-request-id`` (SDKs read it)."""
    extra = [*error.headers.items(), *headers]
    if not any(name == "x-request-id" for name, _ in extra):
        extra.append(("x-request-id", new_request_id()))
    await channel.send_json(error.status_code, error.body(), extra)
