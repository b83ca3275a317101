"""The Responses API routes: create is raw ASGI (it decides when headers go out); the rest are
plain handlers over the gateway's records."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from litestar import Request, Response, delete, get, post
from litestar.handlers import asgi as asgi_route
from litestar.params import PathParameter
from litestar.response import Stream
from litestar.types import Receive, Scope, Send
from redis.exceptions import RedisError

from gateway.api import asgi, websocket
from gateway.api.hot_routes import Handler, guarded
from gateway.api.openai import services_of
from gateway.errors.client import GatewayError, MethodNotAllowed
from gateway.exchange import new_request_id
from gateway.policy.auth import Principal
from gateway.responses import background, compact, endpoint, input_tokens, service
from gateway.services import Services

Read = Callable[[Services, Principal], Awaitable[bytes]]
ResponseId = Annotated[str, PathParameter()]


def method_not_allowed(scope: Scope) -> MethodNotAllowed:
    return MethodNotAllowed(f"Invalid URL ({scope.get('method')} {scope['path']})", code="method_not_allowed")


@asgi_route("/v1/responses", copy_scope=False)
async def create_response(scope: Scope, receive: Receive, send: Send) -> None:
    if str(scope["type"]) == "websocket":  # WebSocket mode
        await websocket.serve_socket(services_of(scope), scope, receive, send)
        return
    if scope.get("method") != "POST":
        await asgi.send_error(send, method_not_allowed(scope))
        return
    await guarded(endpoint.create, services_of(scope), scope, receive, send)


def _post_only(path: str, handler: Handler) -> Any:
    @asgi_route(path, copy_scope=False)
    async def route(scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("method") != "POST":
            await asgi.send_error(send, method_not_allowed(scope))
            return
        await guarded(handler, services_of(scope), scope, receive, send)

    return route


compact_response = _post_only(compact.ROUTE, compact.compact)
count_input_tokens = _post_only(input_tokens.ROUTE, input_tokens.count_input_tokens)

# Served by gateway.api.hot_routes before Litestar (the routes above answer other methods, and
# the WebSocket upgrade of GET /v1/responses).
HOT_ROUTES: dict[str, Handler] = {
    "/v1/responses": endpoint.create,
    compact.ROUTE: compact.compact,
    input_tokens.ROUTE: input_tokens.count_input_tokens,
}


async def _events(request: Request[Any, Any, Any], response_id: str) -> Response[bytes] | Stream | None:
    """A background run's events from ``starting_after`` on (None: not a background response)."""
    headers = {"x-request-id": new_request_id()}
    services = services_of(request.scope)
    try:
        caller = await services.policy.authenticate(asgi.presented_key_from_scope(request.scope))
        events = await background.stream_run(
            services, caller.principal.key_id, response_id, request.query_params.get("starting_after")
        )
    except GatewayError as exc:
        return _error(exc, headers)
    except RedisError:
        return _error(service.store_unavailable(), headers)
    if events is None:
        return None
    return Stream(
        events,
        media_type="text/event-stream; charset=utf-8",
        headers={**headers, "cache-control": "no-cache", "x-accel-buffering": "no"},
    )


def _error(exc: GatewayError, headers: dict[str, str]) -> Response[bytes]:
    return Response(
        exc.body(),
        status_code=exc.status_code,
        media_type="application/json",
        headers={**exc.headers, **headers},
    )


async def _answer(request: Request[Any, Any, Any], read: Read) -> Response[bytes]:
    headers = {"x-request-id": new_request_id()}
    services = services_of(request.scope)
    try:
        caller = await services.policy.authenticate(asgi.presented_key_from_scope(request.scope))
        body = await read(services, caller.principal)
    except GatewayError as exc:
        return _error(exc, headers)
    except RedisError:
        return _error(service.store_unavailable(), headers)
    return Response(body, status_code=200, media_type="application/json", headers=headers)


@get("/v1/responses/{response_id:str}")
async def retrieve_response(
    request: Request[Any, Any, Any], response_id: ResponseId
) -> Response[bytes] | Stream:
    streamed = request.query_params.get("stream")
    if streamed is not None and streamed.lower() == "true":
        events = await _events(request, response_id)
        if events is not None:
            return events
    return await _answer(
        request,
        lambda services, principal: service.retrieve(services, principal, response_id, stream=streamed),
    )


@delete("/v1/responses/{response_id:str}", status_code=200)
async def delete_response(request: Request[Any, Any, Any], response_id: ResponseId) -> Response[bytes]:
    return await _answer(
        request, lambda services, principal: service.delete(services, principal, response_id)
    )


@get("/v1/responses/{response_id:str}/input_items")
async def list_input_items(request: Request[Any, Any, Any], response_id: ResponseId) -> Response[bytes]:
    query = request.query_params
    return await _answer(
        request,
        lambda services, principal: service.list_input_items(
            services,
            principal,
            response_id,
            limit=query.get("limit"),
            order=query.get("order"),
            after=query.get("after"),
        ),
    )


@post("/v1/responses/{response_id:str}/cancel", status_code=200)
async def cancel_response(request: Request[Any, Any, Any], response_id: ResponseId) -> Response[bytes]:
    return await _answer(
        request, lambda services, principal: service.cancel(services, principal, response_id)
    )


ROUTES = [
    create_response,
    compact_response,
    count_input_tokens,
    retrieve_response,
    delete_response,
    list_input_items,
    cancel_response,
]
