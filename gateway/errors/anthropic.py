"""Errors in Anthropic's envelope, for clients of the Anthropic-compatible route.

The body is ``{"type": "error", "error": {"type", "message"}, "request_id"}``; the error types
follow the HTTP status the way Anthropic's API uses them: 400 ``invalid_request_error`` (and
other unlisted 4xx), 401 ``authentication_error``, 403 ``permission_error``, 404
``not_found_error``, 413 ``request_too_large``, 429 ``rate_limit_error``, 529
``overloaded_error``, every other 5xx ``api_error``.

Which status an upstream failure gets is still the classifier's decision (the same table as
the OpenAI-shaped answers); only an overloaded upstream is answered with Anthropic's own 529.
``x-should-retry`` says whether the Anthropic SDK may retry (it retries 408, 409, 429 and 5xx
unless told not to), ``retry-after`` how long to wait.
"""

from __future__ import annotations

from typing import Any

import msgspec

from gateway.errors._model import ClassifiedError, ErrorKind
from gateway.errors._payload import error_object, error_response
from gateway.errors.client import GatewayError

OVERLOADED_STATUS = 529
_ENCODER = msgspec.json.Encoder()
_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    OVERLOADED_STATUS: "overloaded_error",
}


class AnthropicErrorDetail(msgspec.Struct):
    type: str
    message: str


class AnthropicErrorBody(msgspec.Struct):
    type: str
    error: AnthropicErrorDetail
    request_id: str | None = None


def anthropic_error_type(status: int) -> str:
    """Anthropic's ``error.type`` for an HTTP status."""
    known = _TYPES.get(status)
    if known is not None:
        return known
    return "api_error" if status >= 500 else "invalid_request_error"


def anthropic_error_body(status: int, message: str, request_id: str | None = None) -> bytes:
    detail = AnthropicErrorDetail(type=anthropic_error_type(status), message=message)
    return _ENCODER.encode(AnthropicErrorBody(type="error", error=detail, request_id=request_id))


def _status(error: ClassifiedError, openai_status: int) -> int:
    if error.kind is ErrorKind.OVERLOADED:
        return OVERLOADED_STATUS
    return openai_status


def anthropic_upstream_error(
    error: ClassifiedError, request_id: str | None = None
) -> tuple[int, dict[str, str], bytes]:
    """(status, headers, body) of the HTTP answer for an upstream failure."""
    status, headers, _ = error_response(error, api="chat")
    status = _status(error, status)
    message = str(error_object(error, api="chat")["message"])
    headers.pop("retry-after-ms", None)
    return status, headers, anthropic_error_body(status, message, request_id)


def anthropic_refusal(
    error: GatewayError, request_id: str | None = None
) -> tuple[int, dict[str, str], bytes]:
    """(status, headers, body) of the gateway's own refusal (bad request, key, limit...)."""
    headers = dict(error.headers)
    headers["content-type"] = "application/json"
    if "x-should-retry" not in headers:
        retry = error.status_code in (408, 409, 429) or (
            error.status_code >= 500 and error.status_code != 501
        )
        headers["x-should-retry"] = "true" if retry else "false"
    return error.status_code, headers, anthropic_error_body(error.status_code, error.message, request_id)


def anthropic_stream_error(error: ClassifiedError) -> dict[str, Any]:
    """The payload of the ``event: error`` that ends a committed stream."""
    status, _, _ = error_response(error, api="chat")
    message = str(error_object(error, api="chat")["message"])
    return {
        "type": "error",
        "error": {"type": anthropic_error_type(_status(error, status)), "message": message},
    }


def anthropic_stream_error_frame(error: ClassifiedError) -> bytes:
    """``event: error`` with Anthropic's payload, and a blank line."""
    return b"event: error\ndata: " + _ENCODER.encode(anthropic_stream_error(error)) + b"\n\n"
