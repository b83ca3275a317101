"""The proxy's hot routes, served in front of Litestar.

``POST /v1/chat/completions`` and ``POST /v1/responses`` decide when headers go out, so they run
on raw ASGI behind an :class:`~gateway.api.asgi.AsgiChannel`. Reaching them through Litestar's
router and exception middleware cost a fifth of the gateway's CPU per streamed request, mostly
in the depth of the coroutine chain every upstream read resumes (measured with ``make bench``:
0.43 -> 0.31 ms per stream). So the gateway's ASGI app is this small dispatcher: an exact path
and method match goes straight to its handler, everything else (other methods on those paths
included, lifespan too) to Litestar, which keeps serving the listings, the admin API, chats,
health and metrics.

The Responses API's WebSocket mode (``GET /v1/responses`` upgraded) is served here too, for the
same reason: its turns stream like a streamed ``POST`` and every upstream read resumed through
Litestar's layers (and its wrapped ``send`` per event) cost the same.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from types import MappingProxyType
from typing import Any

from litestar import Litestar
from litestar.types import Receive, Scope, Send

from gateway.api import websocket
from gateway.api.asgi import AsgiChannel
from gateway.errors.client import InternalError
from gateway.exchange import ClientChannel, send_error
from gateway.services import Services

log = logging.getLogger("gateway.api")
Handler = Callable[[Services, ClientChannel], Awaitable[None]]
SocketHandler = Callable[[Services, Scope, Receive, Send], Awaitable[None]]
# The WebSocket routes served before Litestar (a handler answers its own failures).
SOCKET_ROUTES: Mapping[str, SocketHandler] = MappingProxyType({"/v1/responses": websocket.serve_socket})


async def guarded(handler: Handler, services: Services, scope: Scope, receive: Receive, send: Send) -> None:
    """Run a proxy handler; a bug becomes a logged 500 in OpenAI's shape, never a bare crash
    (once the answer has started, the connection ends without a clean end instead)."""
    channel = AsgiChannel(scope, receive, send)
    try:
        await handler(services, channel)
    except Exception:
        log.exception("unhandled error in %s", scope["path"])
        if not channel.started:
            await send_error(channel, InternalError("The server had an error while processing your request."))


class GatewayApp:
    """The gateway's ASGI application: hot routes (``POST`` on ``routes``, WebSockets on
    ``sockets``) first, then Litestar."""

    __slots__ = ("_routes", "_sockets", "litestar")

    def __init__(
        self,
        litestar: Litestar,
        routes: Mapping[str, Handler],
        sockets: Mapping[str, SocketHandler] = SOCKET_ROUTES,
    ) -> None:
        self.litestar = litestar
        self._routes = dict(routes)
        self._sockets = dict(sockets)

    @property
    def services(self) -> Services:
        """The running gateway's services (set by the lifespan)."""
        services: Services = self.litestar.state.services
        return services

    async def __call__(self, scope: Any, receive: Receive, send: Send) -> None:
        # ``scope`` is the server's plain dict (Litestar's TypedDicts describe it per type).
        if scope["type"] == "http" and scope["method"] == "POST":
            handler = self._routes.get(scope["path"])
            if handler is not None:
                await guarded(handler, self.litestar.state.services, scope, receive, send)
                return
        elif scope["type"] == "websocket":
            socket = self._sockets.get(scope["path"])
            if socket is not None:
                await socket(self.litestar.state.services, scope, receive, send)
            else:  # Litestar serves no WebSockets
                await websocket.no_socket_here(scope, receive, send)
            return
        await self.litestar(scope, receive, send)
