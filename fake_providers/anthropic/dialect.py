"""Anthropic's headers, HTTP errors and in-band stream errors, one entry per fault error.

Error types and statuses are Anthropic's documented ones (`invalid_request_error` 400,
`authentication_error` 401, `permission_error` 403, `not_found_error` 404, `rate_limit_error` 429,
`api_error` 500, `overloaded_error` 529); messages marked "captured" are quoted from real bodies,
the others are our wording in Anthropic's style.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import NamedTuple

import msgspec

from fake_providers.anthropic.wire import ErrorBody, ErrorDetail, StreamError
from fake_providers.dialect import ErrorAnswer
from fake_providers.exchange import Exchange
from fake_providers.faults import ERROR_STATUS, ErrorKind
from fake_providers.sse import event_frame

_ENCODER = msgspec.json.Encoder()
JSON = "application/json"
EVENT_STREAM = "text/event-stream; charset=utf-8"
ORGANIZATION_ID = "00000000-0000-4000-8000-00000000fa4e"
LIMIT_REQUESTS = 4000  # per minute
LIMIT_INPUT_TOKENS = 2_000_000
LIMIT_OUTPUT_TOKENS = 400_000
RATE_LIMIT_RETRY_SECONDS = 1
# A context-length fault on a model outside the catalogue reports this window.
FAULT_CONTEXT_WINDOW = 200000


class _Spec(NamedTuple):
    status: int
    type: str
    message: str  # may use {model}, {tokens}, {window}


_SPECS: dict[ErrorKind, _Spec] = {
    ErrorKind.RATE_LIMIT: _Spec(
        429,
        "rate_limit_error",
        "This request would exceed the rate limit for your organization of "
        f"{LIMIT_REQUESTS} requests per minute. For details, refer to: "
        "https://docs.claude.com/en/api/rate-limits. You can see the response headers for current usage.",
    ),
    ErrorKind.QUOTA: _Spec(
        400,
        "invalid_request_error",
        "Your credit balance is too low to access the Anthropic API. Please go to Plans & Billing to upgrade "
        "or purchase credits.",
    ),
    ErrorKind.AUTH: _Spec(401, "authentication_error", "invalid x-api-key"),
    ErrorKind.FORBIDDEN: _Spec(
        403, "permission_error", "Your API key does not have permission to use the specified resource."
    ),
    ErrorKind.MODEL_NOT_FOUND: _Spec(404, "not_found_error", "model: {model}"),
    # captured from a real answer
    ErrorKind.CONTEXT_LENGTH: _Spec(
        400, "invalid_request_error", "prompt is too long: {tokens} tokens > {window} maximum"
    ),
    ErrorKind.SERVER_ERROR: _Spec(500, "api_error", "Internal server error"),
    ErrorKind.BAD_GATEWAY: _Spec(502, "api_error", "Bad gateway"),
    ErrorKind.UNAVAILABLE: _Spec(503, "api_error", "Service unavailable"),
    # captured from real answers (also sent in-band, as an `error` event of a stream)
    ErrorKind.OVERLOADED: _Spec(529, "overloaded_error", "Overloaded"),
    ErrorKind.HIDDEN_RATE_LIMIT: _Spec(
        ERROR_STATUS[ErrorKind.HIDDEN_RATE_LIMIT],
        "api_error",
        "Upstream request failed: 429 Too Many Requests (rate limit exceeded), please retry later.",
    ),
}


def error_detail(error: ErrorKind, exchange: Exchange) -> ErrorDetail:
    spec = _SPECS[error]
    window = exchange.context_window or FAULT_CONTEXT_WINDOW
    tokens = exchange.input_tokens if exchange.input_tokens > window else window + exchange.input_tokens
    return ErrorDetail(
        type=spec.type, message=spec.message.format(model=exchange.model, tokens=tokens, window=window)
    )


def rfc3339(seconds: float) -> str:
    return datetime.fromtimestamp(int(seconds), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class AnthropicDialect:
    inband_head = 1  # message_start
    default_inband_error = ErrorKind.OVERLOADED
    default_200_error = ErrorKind.OVERLOADED

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock

    def base_headers(self, exchange: Exchange, *, limited: bool = False) -> list[tuple[str, str]]:
        reset = rfc3339(self._clock() + (RATE_LIMIT_RETRY_SECONDS if limited else 60))
        used = min(exchange.input_tokens, LIMIT_INPUT_TOKENS)
        headers = [("request-id", exchange.request_id), ("anthropic-organization-id", ORGANIZATION_ID)]
        for name, limit, left in (
            ("requests", LIMIT_REQUESTS, 0 if limited else LIMIT_REQUESTS - 1),
            ("input-tokens", LIMIT_INPUT_TOKENS, LIMIT_INPUT_TOKENS - used),
            ("output-tokens", LIMIT_OUTPUT_TOKENS, LIMIT_OUTPUT_TOKENS),
            (
                "tokens",
                LIMIT_INPUT_TOKENS + LIMIT_OUTPUT_TOKENS,
                LIMIT_INPUT_TOKENS + LIMIT_OUTPUT_TOKENS - used,
            ),
        ):
            headers += [
                (f"anthropic-ratelimit-{name}-limit", str(limit)),
                (f"anthropic-ratelimit-{name}-remaining", str(left)),
                (f"anthropic-ratelimit-{name}-reset", reset),
            ]
        return headers

    def success_headers(self, exchange: Exchange, *, stream: bool) -> list[tuple[str, str]]:
        return [("content-type", EVENT_STREAM if stream else JSON), *self.base_headers(exchange)]

    def error_with(self, status: int, detail: ErrorDetail, exchange: Exchange) -> ErrorAnswer:
        body = ErrorBody(type="error", error=detail, request_id=exchange.request_id)
        headers = [("content-type", JSON), *self.base_headers(exchange)]
        if status == 401:
            headers = [("content-type", JSON), ("request-id", exchange.request_id)]
        return ErrorAnswer(status, headers, _ENCODER.encode(body))

    def error_answer(self, error: ErrorKind, exchange: Exchange) -> ErrorAnswer:
        spec = _SPECS[error]
        limited = error is ErrorKind.RATE_LIMIT
        headers = [("content-type", JSON), *self.base_headers(exchange, limited=limited)]
        if limited:
            headers.append(("retry-after", str(RATE_LIMIT_RETRY_SECONDS)))
        if error is ErrorKind.OVERLOADED:
            headers.append(("x-should-retry", "true"))
        body = ErrorBody(type="error", error=error_detail(error, exchange), request_id=exchange.request_id)
        return ErrorAnswer(spec.status, headers, _ENCODER.encode(body))

    def inband_frames(self, error: ErrorKind, exchange: Exchange, *, sent: int) -> list[bytes]:
        return [event_frame("error", StreamError(type="error", error=error_detail(error, exchange)))]
