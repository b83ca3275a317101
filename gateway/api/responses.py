"""The Responses API routes: create is raw ASGI (it decides when headers go out); the rest are
plain handlers over the gateway's records."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from litestar import Request, Response, delete, get, post
from litestar.handlers import asgi as asgi_route
from litestar.params import PathParameter
from litestar.types import Receive, Scope, Send
from redis.exceptions import RedisError

from gateway.api import asgi
from gateway.api.hot_routes import Handler, guarded
from gateway.api.openai import services_of
from gateway.errors.client import GatewayError, MethodNotAllowed
from gateway.exchange import new_request_id
from gateway.policy.auth import Principal
from gateway.responses import endpoint, service
from gateway.services import Services

Read = Callable[[Services, Principal], Awaitable[bytes]]
ResponseId = Annotated[str, PathParameter()]


def method_not_allowed(scope: Scope) -> MethodNotAllowed:
    return MethodNotAllowed(f"Invalid URL ({scope.get('method')} {scope['path']})", code="method_not_allowed")


@asgi_route("/v1/responses", copy_scope=False)
async def create_response(scope: Scope, receive: Receive, send: Send) -> None:
    if scope.get("method") != "POST":
        await asgi.send_error(send, method_not_allowed(scope))
        return
    await guarded(endpoint.create, services_of(scope), scope, receive, send)


# Served by gateway.api.hot_routes before Litestar (the route above answers other methods).
HOT_ROUTES: dict[str, Handler] = {"/v1/responses": endpoint.create}


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
async def retrieve_response(request: Request[Any, Any, Any], response_id: ResponseId) -> Response[bytes]:
    streamed = request.query_params.get("stream")
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


ROUTES = [create_response, retrieve_response, delete_response, list_input_items, cancel_response]
