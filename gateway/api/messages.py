"""The Anthropic-compatible routes: ``POST /v1/messages`` and ``POST /v1/messages/count_tokens``.

Both are hot routes (served before Litestar, see ``hot_routes``); the Litestar routes here only
answer other methods. A bug is answered like every other error on these routes: in Anthropic's
envelope (500 ``api_error``), and logged with its traceback.
"""

from __future__ import annotations

import logging

from litestar.handlers import asgi as asgi_route
from litestar.types import Receive, Scope, Send

from gateway.api import asgi
from gateway.api.hot_routes import Handler
from gateway.errors.anthropic import anthropic_refusal
from gateway.errors.client import GatewayError, InternalError, MethodNotAllowed
from gateway.exchange import ClientChannel, new_request_id
from gateway.messages import count_tokens, endpoint
from gateway.services import Services

log = logging.getLogger("gateway.api")


def _guard(handler: Handler) -> Handler:
    async def guarded(services: Services, channel: ClientChannel) -> None:
        try:
            await handler(services, channel)
        except Exception:
            log.exception("unhandled error in an Anthropic route")
            if not channel.started:
                error = InternalError("The server had an error while processing your request.")
                await _send(channel, error)

    return guarded


async def _send(channel: ClientChannel, error: GatewayError) -> None:
    request_id = new_request_id()
    status, headers, body = anthropic_refusal(error, request_id)
    await channel.send_json(status, body, [*headers.items(), ("x-request-id", request_id)])


async def _method_not_allowed(scope: Scope, receive: Receive, send: Send) -> None:
    request_id = new_request_id()
    error = MethodNotAllowed(f"Invalid URL ({scope.get('method')} {scope['path']})")
    status, headers, body = anthropic_refusal(error, request_id)
    await asgi.send_bytes(send, status, body, headers=[*headers.items(), ("x-request-id", request_id)])


@asgi_route(endpoint.ROUTE, copy_scope=False)
async def messages_route(scope: Scope, receive: Receive, send: Send) -> None:
    await _method_not_allowed(scope, receive, send)


@asgi_route(count_tokens.ROUTE, copy_scope=False)
async def count_tokens_route(scope: Scope, receive: Receive, send: Send) -> None:
    await _method_not_allowed(scope, receive, send)


# Served by gateway.api.hot_routes before Litestar (the routes above answer other methods).
HOT_ROUTES: dict[str, Handler] = {
    endpoint.ROUTE: _guard(endpoint.handle),
    count_tokens.ROUTE: _guard(count_tokens.count_tokens),
}

ROUTES = [messages_route, count_tokens_route]
