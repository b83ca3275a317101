"""The OpenAI-compatible surface. Proxy routes are raw ASGI (see ``asgi``); listings are plain."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Request, Response, get
from litestar.handlers import asgi as asgi_route
from litestar.params import PathParameter
from litestar.types import Receive, Scope, Send

from gateway.api import asgi
from gateway.api.hot_routes import Handler, guarded
from gateway.chat_completions import endpoint as chat_completions
from gateway.errors.client import GatewayError, MethodNotAllowed
from gateway.exchange import new_request_id
from gateway.policy.engine import Caller
from gateway.policy.errors import model_not_found
from gateway.services import Services

_ENCODER = msgspec.json.Encoder()


def services_of(scope: Scope) -> Services:
    services: Services = scope["litestar_app"].state.services
    return services


class ModelCard(msgspec.Struct):
    id: str
    object: str = "model"
    created: int = 0
    owned_by: str = "gateway"
    context_window: int | None = None


class ModelList(msgspec.Struct):
    data: list[ModelCard]
    object: str = "list"


def _card(services: Services, name: str) -> ModelCard:
    deployments = services.router.deployments(name)
    windows = [w for w in (services.catalog.window(d) for d in deployments) if w]
    return ModelCard(
        id=name,
        owned_by=deployments[0].settings.owned_by or deployments[0].provider,
        # Several deployments: the smallest window is the one every attempt can honour.
        context_window=min(windows) if windows else None,
    )


def _json(status: int, value: object, request_id: str) -> Response[bytes]:
    return Response(
        _ENCODER.encode(value),
        status_code=status,
        media_type="application/json",
        headers={"x-request-id": request_id},
    )


def _error(exc: GatewayError, request_id: str) -> Response[bytes]:
    return Response(
        exc.body(),
        status_code=exc.status_code,
        media_type="application/json",
        headers={**exc.headers, "x-request-id": request_id},
    )


async def _caller(request: Request[Any, Any, Any]) -> Caller:
    """The same authentication as the proxy routes: config keys and admin-created keys, with
    blocks, deletions and rotations seen at once."""
    policy = services_of(request.scope).policy
    return await policy.authenticate(asgi.presented_key_from_scope(request.scope), fresh=True)


@get("/v1/models")
async def list_models(request: Request[Any, Any, Any]) -> Response[bytes]:
    """The configured models this key may use (its and its team's allow-lists)."""
    request_id = new_request_id()
    services = services_of(request.scope)
    try:
        caller = await _caller(request)
    except GatewayError as exc:
        return _error(exc, request_id)
    cards = [_card(services, m) for m in services.router.models if services.policy.may_use(caller, m)]
    return _json(200, ModelList(data=cards), request_id)


@get("/v1/models/{model_id:path}")
async def get_model(
    request: Request[Any, Any, Any], model_id: Annotated[str, PathParameter()]
) -> Response[bytes]:
    request_id = new_request_id()
    services = services_of(request.scope)
    model_id = model_id.lstrip("/")
    try:
        caller = await _caller(request)
        # A model the key may not use is answered like one that does not exist (as OpenAI does).
        if not services.router.knows(model_id) or not services.policy.may_use(caller, model_id):
            raise model_not_found(model_id)
    except GatewayError as exc:
        return _error(exc, request_id)
    return _json(200, _card(services, model_id), request_id)


@asgi_route("/v1/chat/completions", copy_scope=False)
async def chat_completions_route(scope: Scope, receive: Receive, send: Send) -> None:
    if scope.get("method") != "POST":
        await asgi.send_error(send, _method_not_allowed(scope))
        return
    await guarded(chat_completions.handle, services_of(scope), scope, receive, send)


# Served by gateway.api.hot_routes before Litestar (the route above answers other methods).
HOT_ROUTES: dict[str, Handler] = {"/v1/chat/completions": chat_completions.handle}


def _method_not_allowed(scope: Scope) -> MethodNotAllowed:
    return MethodNotAllowed(f"Invalid URL ({scope.get('method')} {scope['path']})", code="method_not_allowed")


ROUTES = [list_models, get_model, chat_completions_route]
