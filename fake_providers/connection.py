"""Ending a TCP connection from inside an ASGI app: a reset (RST) or an abrupt close (FIN).

ASGI gives an app no handle on the socket, and a real provider's failures include a connection
reset before any response header and a body that stops mid-way. The fake servers are therefore run
with a uvicorn protocol class (`CONTROLLED_HTTP_PROTOCOL`) that puts a `ConnectionControl` into each
HTTP scope under `scope["extensions"]["fake_providers.connection"]["control"]`.
`fake_providers.testing.serve` and the `fake-providers` command use it; under any other server the
extension is absent and the faults fall back to what plain ASGI allows (see `reply.py`).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

CONNECTION_EXTENSION = "fake_providers.connection"

# SO_LINGER on with a zero timeout: close() discards unsent data and sends RST instead of FIN.
_LINGER_ZERO = struct.pack("ii", 1, 0)

_ASGIApp = Callable[[MutableMapping[str, Any], Any, Any], Awaitable[None]]


class ConnectionControl:
    """What the app may do to the connection that carries its request."""

    def __init__(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport

    def reset(self) -> None:
        """Abort with a TCP reset: the client reads ECONNRESET."""
        sock = self._transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_ZERO)
        if isinstance(self._transport, asyncio.WriteTransport):
            self._transport.abort()
        else:  # pragma: no cover - every HTTP transport is a WriteTransport
            self._transport.close()

    def close(self) -> None:
        """Flush what was written, then close: the client sees the body end early."""
        self._transport.close()


def connection_control(scope: MutableMapping[str, Any]) -> ConnectionControl | None:
    extensions = scope.get("extensions") or {}
    entry = extensions.get(CONNECTION_EXTENSION)
    control = entry.get("control") if isinstance(entry, dict) else None
    return control if isinstance(control, ConnectionControl) else None


class _WithConnectionControl:
    """Wraps the served app for one connection, adding the extension to each HTTP scope."""

    def __init__(self, app: _ASGIApp, control: ConnectionControl) -> None:
        self._app = app
        self._control = control

    async def __call__(self, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        if scope.get("type") == "http":
            extensions = dict(scope.get("extensions") or {})
            extensions[CONNECTION_EXTENSION] = {"control": self._control}
            scope = {**scope, "extensions": extensions}
        await self._app(scope, receive, send)


class _ControlMixin:
    app: _ASGIApp

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            # Answers go out in several writes; without this, Nagle and delayed ACKs add ~40 ms.
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().connection_made(transport)  # type: ignore[misc]
        self.app = _WithConnectionControl(self.app, ConnectionControl(transport))


class H11ControlledProtocol(_ControlMixin, H11Protocol):
    """uvicorn's h11 protocol with the connection-control extension."""


CONTROLLED_HTTP_PROTOCOL: type[asyncio.Protocol]

try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
except ImportError:  # pragma: no cover - httptools is a dependency; h11 is the fallback
    CONTROLLED_HTTP_PROTOCOL = H11ControlledProtocol
else:

    class HttpToolsControlledProtocol(_ControlMixin, HttpToolsProtocol):
        """uvicorn's httptools protocol with the connection-control extension."""

    CONTROLLED_HTTP_PROTOCOL = HttpToolsControlledProtocol
