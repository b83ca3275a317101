"""Errors the gateway raises itself, answered in OpenAI's error shape.

These are the client's mistakes (bad JSON, a missing field, an unknown model, a wrong key) and
the gateway's own refusals. Upstream failures are classified separately (see ``classify``).
"""

from __future__ import annotations

from collections.abc import Mapping

import msgspec


class ErrorObject(msgspec.Struct, omit_defaults=False):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorEnvelope(msgspec.Struct):
    error: ErrorObject


_ENCODER = msgspec.json.Encoder()


class GatewayError(Exception):
    """Base of every error the gateway answers itself. Carries the HTTP answer."""

    status_code: int = 500
    error_type: str = "server_error"

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code
        self.headers: dict[str, str] = dict(headers or {})

    def body(self) -> bytes:
        return _ENCODER.encode(
            ErrorEnvelope(
                ErrorObject(message=self.message, type=self.error_type, param=self.param, code=self.code)
            )
        )


class InvalidRequest(GatewayError):
    status_code = 400
    error_type = "invalid_request_error"


class AuthenticationFailed(GatewayError):
    status_code = 401
    error_type = "invalid_request_error"


class PermissionDenied(GatewayError):
    status_code = 403
    error_type = "invalid_request_error"


class NotFound(GatewayError):
    status_code = 404
    error_type = "invalid_request_error"


class Conflict(GatewayError):
    status_code = 409
    error_type = "invalid_request_error"


class PayloadTooLarge(GatewayError):
    status_code = 413
    error_type = "invalid_request_error"


class RateLimited(GatewayError):
    # OpenAI's own values: type `requests` (or `tokens`), code `rate_limit_exceeded`.
    status_code = 429
    error_type = "requests"


class ServiceUnavailable(GatewayError):
    status_code = 503
    error_type = "service_unavailable_error"


class MethodNotAllowed(GatewayError):
    status_code = 405
    error_type = "invalid_request_error"


class InternalError(GatewayError):
    status_code = 500
    error_type = "server_error"
