"""Answers for requests no route takes, in OpenAI's error shape (Litestar's own would be
``{"status_code": 404, "detail": "Not Found"}``, which no OpenAI SDK reads as an error body)."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response
from litestar.exceptions import MethodNotAllowedException, NotFoundException, ValidationException

from gateway.errors.client import GatewayError, InvalidRequest, MethodNotAllowed, NotFound
from gateway.exchange import new_request_id


def _answer(error: GatewayError) -> Response[bytes]:
    return Response(
        error.body(),
        status_code=error.status_code,
        media_type="application/json",
        headers={**error.headers, "x-request-id": new_request_id()},
    )


def _invalid_url(request: Request[Any, Any, Any]) -> str:
    return f"Invalid URL ({request.method} {request.url.path})"


def not_found(request: Request[Any, Any, Any], _: NotFoundException) -> Response[bytes]:
    return _answer(NotFound(_invalid_url(request)))


def method_not_allowed(request: Request[Any, Any, Any], _: MethodNotAllowedException) -> Response[bytes]:
    return _answer(MethodNotAllowed(_invalid_url(request), code="method_not_allowed"))


def invalid(request: Request[Any, Any, Any], exc: ValidationException) -> Response[bytes]:
    return _answer(InvalidRequest(str(exc.detail) or "Invalid request."))


EXCEPTION_HANDLERS: dict[int | type[Exception], Any] = {
    NotFoundException: not_found,
    MethodNotAllowedException: method_not_allowed,
    ValidationException: invalid,
}
