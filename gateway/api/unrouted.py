"""Litestar's own refusals in the route's error shape.

Litestar answers what no handler takes (an unknown path, another method, a path or query value
it cannot read, a body over its limit) as ``{"status_code": 404, "detail": "Not Found"}``, which
no OpenAI SDK reads as an error body. These handlers, installed on the app (so on every route
and controller), answer the same refusals in OpenAI's shape, and under ``/api/v1/chats`` in the
chat API's ``{"message", "detail"}``. An exception no handler expected is a bug: a 500 in the
same shape (``gateway.app`` logs its traceback), never Litestar's plain text.
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request, Response
from litestar.exceptions import (
    HTTPException,
    MethodNotAllowedException,
    NotFoundException,
    ValidationException,
)

from gateway.errors.client import (
    GatewayError,
    InternalError,
    InvalidRequest,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    ServiceUnavailable,
)
from gateway.exchange import new_request_id

CHATS = "/api/v1/chats"
_ENCODER = msgspec.json.Encoder()
_INTERNAL = "The server had an error while processing your request."
AnyRequest = Request[Any, Any, Any]


class _ChatError(msgspec.Struct, omit_defaults=True):
    message: str
    detail: str | None = None


def _answer(request: AnyRequest, error: GatewayError) -> Response[bytes]:
    headers = {**error.headers, "x-request-id": new_request_id()}
    body = _ENCODER.encode(_ChatError(error.message)) if request.url.path.startswith(CHATS) else error.body()
    return Response(body, status_code=error.status_code, media_type="application/json", headers=headers)


def _invalid_url(request: AnyRequest) -> str:
    return f"Invalid URL ({request.method} {request.url.path})"


def not_found(request: AnyRequest, _: NotFoundException) -> Response[bytes]:
    return _answer(request, NotFound(_invalid_url(request)))


def method_not_allowed(request: AnyRequest, _: MethodNotAllowedException) -> Response[bytes]:
    return _answer(request, MethodNotAllowed(_invalid_url(request), code="method_not_allowed"))


def invalid(request: AnyRequest, exc: ValidationException) -> Response[bytes]:
    return _answer(request, InvalidRequest(str(exc.detail) or "Invalid request."))


class _Refusal(GatewayError):
    """A Litestar refusal of any other status, kept as it is."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status_code = status
        self.error_type = "server_error" if status >= 500 else "invalid_request_error"


def http_error(request: AnyRequest, exc: HTTPException) -> Response[bytes]:
    status = exc.status_code
    detail = str(exc.detail or "")
    error: GatewayError
    if status == 413:
        error = PayloadTooLarge(detail or "Request body is too large.", code="request_too_large")
    elif status == 503:
        error = ServiceUnavailable(detail or "Service unavailable.", headers={"retry-after": "1"})
    elif status >= 500:
        error = InternalError(_INTERNAL)  # never a detail from inside
    else:
        error = _Refusal(status, detail or "Invalid request.")
    error.headers.update(exc.headers or {})
    return _answer(request, error)


def gateway_error(request: AnyRequest, exc: GatewayError) -> Response[bytes]:
    return _answer(request, exc)


def internal(request: AnyRequest, _: Exception) -> Response[bytes]:
    return _answer(request, InternalError(_INTERNAL))


EXCEPTION_HANDLERS: dict[int | type[Exception], Any] = {
    NotFoundException: not_found,
    MethodNotAllowedException: method_not_allowed,
    ValidationException: invalid,
    HTTPException: http_error,
    GatewayError: gateway_error,
    Exception: internal,
}
