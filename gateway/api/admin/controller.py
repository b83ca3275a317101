"""What every admin controller shares: the admin-key guard, the one exception handler, the
request id on every answer, and request bodies read no further than the configured limit.

Errors (GatewayError, raised by the guard, the body readers or the operations) are answered
in OpenAI's error shape with an ``x-request-id``; so are bodies over ``server.max_body_bytes``
(413 ``request_too_large``).
"""

from __future__ import annotations

from typing import Any, TypeVar

import msgspec
from litestar import Controller, Request, Response
from litestar.connection import ASGIConnection
from litestar.di import NamedDependency, Provide
from litestar.handlers import BaseRouteHandler

from gateway.errors.client import GatewayError, InvalidRequest, PayloadTooLarge
from gateway.errors.decoding import MALFORMED_JSON
from gateway.exchange import new_request_id
from gateway.exchange.body import parse_count
from gateway.policy.admin import KeyAdmin, Reports, TeamAdmin, admin_name
from gateway.policy.auth import presented_key
from gateway.policy.engine import PolicyService
from gateway.services import Services

T = TypeVar("T")
_READS = frozenset({"GET", "HEAD"})


def services_of(connection: ASGIConnection[Any, Any, Any, Any]) -> Services:
    services: Services = connection.app.state.services
    return services


def presented(connection: ASGIConnection[Any, Any, Any, Any]) -> str | None:
    """The key from ``Authorization: Bearer``, ``api-key`` or ``x-api-key``."""
    headers = connection.headers
    return presented_key(headers.get("authorization"), headers.get("api-key"), headers.get("x-api-key"))


def admin_guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Only the config's admin keys pass; reads (GET) take any of them, writes an ``admin``
    role. The key's name is kept as the actor the audit trail records."""
    write = not (isinstance(connection, Request) and connection.method in _READS)
    keys = services_of(connection).settings.admin.keys
    connection.state.admin_actor = admin_name(keys, presented(connection), write=write)


def gateway_error(_: Request[Any, Any, Any], exc: GatewayError) -> Response[bytes]:
    return Response(
        exc.body(),
        status_code=exc.status_code,
        media_type="application/json",
        headers={**exc.headers, "x-request-id": new_request_id()},
    )


async def with_request_id(response: Response[Any]) -> Response[Any]:
    response.headers["x-request-id"] = new_request_id()
    return response


# What handlers may ask for by these parameter names.
Policy = NamedDependency[PolicyService]  # policy
Keys = NamedDependency[KeyAdmin]  # keys
Teams = NamedDependency[TeamAdmin]  # teams
Reporting = NamedDependency[Reports]  # reports
Actor = NamedDependency[str]  # actor: the admin key's name


def _policy(request: Request[Any, Any, Any]) -> PolicyService:
    return services_of(request).policy


def _actor(request: Request[Any, Any, Any]) -> str:
    actor: str = request.state.admin_actor
    return actor


def _keys(policy: Policy) -> KeyAdmin:
    return KeyAdmin(policy)


def _teams(policy: Policy) -> TeamAdmin:
    return TeamAdmin(policy)


def _reports(policy: Policy) -> Reports:
    return Reports(policy)


class PolicyController(Controller):
    """Answers GatewayErrors in OpenAI's shape; handlers may ask for ``policy``, ``keys``,
    ``teams`` and ``reports`` (the admin operations)."""

    exception_handlers = {GatewayError: gateway_error}
    after_request = staticmethod(with_request_id)
    # Bodies are read by ``body``/``json_body`` against the configured limit instead.
    request_max_body_size = None
    dependencies = {
        "policy": Provide(_policy, sync_to_thread=False),
        "keys": Provide(_keys, sync_to_thread=False),
        "teams": Provide(_teams, sync_to_thread=False),
        "reports": Provide(_reports, sync_to_thread=False),
    }


class AdminController(PolicyController):
    """Admin keys only (see :func:`admin_guard`); ``actor`` is the admin key's name."""

    guards = [admin_guard]
    dependencies = {**PolicyController.dependencies, "actor": Provide(_actor, sync_to_thread=False)}


async def body(request: Request[Any, Any, Any]) -> bytes:
    """The request body, refused with a 413 beyond ``server.max_body_bytes``."""
    limit = services_of(request).settings.server.max_body_bytes
    too_large = PayloadTooLarge(
        f"Request body is larger than the limit of {limit} bytes.", code="request_too_large"
    )
    declared = request.headers.get("content-length")
    size = parse_count(declared) if declared is not None else None
    if size is not None and size > limit:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


async def typed_body(request: Request[Any, Any, Any], kind: type[T]) -> T:
    """The body decoded as ``kind`` (an empty body is ``{}``); 400 ``invalid_body`` naming the
    field, or ``invalid_json``."""
    try:
        return msgspec.json.decode(await body(request) or b"{}", type=kind)
    except msgspec.ValidationError as exc:
        message, _, at = str(exc).partition(" - at `$.")
        raise InvalidRequest(
            f"Invalid request body: {message}", param=at.rstrip("`") or None, code="invalid_body"
        ) from None
    except (msgspec.DecodeError, RecursionError):
        raise InvalidRequest("The request body is not valid JSON.", code="invalid_json") from None


async def json_body(request: Request[Any, Any, Any]) -> object:
    """The body as whatever JSON it holds (an empty body is ``{}``); 400 ``invalid_json``."""
    try:
        decoded: object = msgspec.json.decode(await body(request) or b"{}")
    except MALFORMED_JSON:
        raise InvalidRequest("The request body is not valid JSON.", code="invalid_json") from None
    return decoded


def limit_param(request: Request[Any, Any, Any], default: int = 100) -> int:
    """The ``limit`` query parameter, 1 to 1000."""
    limit = parse_count(request.query_params.get("limit", str(default)))
    if limit is None or not 1 <= limit <= 1000:
        raise InvalidRequest("limit must be an integer from 1 to 1000.", param="limit", code="invalid_limit")
    return limit
