"""The policy's refusals, in OpenAI's error shape."""

from __future__ import annotations

import math

from gateway.errors.client import GatewayError, NotFound, PermissionDenied, RateLimited, ServiceUnavailable


class TokensRateLimited(RateLimited):
    error_type = "tokens"


class QuotaExceeded(GatewayError):
    status_code = 429
    error_type = "insufficient_quota"


def go_duration(seconds: float) -> str:
    """Go's ``time.Duration`` text, as OpenAI's ``x-ratelimit-reset-*`` headers use it."""
    ms = max(0, round(seconds * 1000))
    if ms == 0:
        return "0s"
    if ms < 1000:
        return f"{ms}ms"
    minutes, rest_ms = divmod(ms, 60_000)
    secs = f"{rest_ms / 1000:.3f}".rstrip("0").rstrip(".") + "s"
    if minutes == 0:
        return secs
    hours, minutes = divmod(minutes, 60)
    return (f"{hours}h" if hours else "") + f"{minutes}m{secs}"


def retry_headers(ms: int, *, should_retry: bool = True) -> dict[str, str]:
    return {
        "retry-after": str(max(1, math.ceil(ms / 1000))),
        "retry-after-ms": str(max(1, ms)),
        "x-should-retry": "true" if should_retry else "false",
    }


def model_not_allowed(model: str) -> PermissionDenied:
    return PermissionDenied(
        f"This API key is not allowed to use the model `{model}`.", param="model", code="model_not_allowed"
    )


def model_not_found(model: str) -> NotFound:
    """OpenAI's answer for a model that does not exist (or is hidden from the caller)."""
    return NotFound(
        f"The model `{model}` does not exist or you do not have access to it.", code="model_not_found"
    )


def store_unavailable() -> ServiceUnavailable:
    return ServiceUnavailable(
        "The gateway cannot check this request's limits right now. Please try again shortly.",
        code="policy_store_unavailable",
        headers={"retry-after": "1", "x-should-retry": "true"},
    )
