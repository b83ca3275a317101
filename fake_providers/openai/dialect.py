"""OpenAI's headers, HTTP errors and in-band stream errors, one entry per fault error."""

from __future__ import annotations

import math
from typing import NamedTuple

import msgspec

from fake_providers.dialect import ErrorAnswer
from fake_providers.durations import go_duration
from fake_providers.exchange import Exchange
from fake_providers.faults import ERROR_STATUS, ErrorKind
from fake_providers.openai.errors import KEYS_URL, ErrorDetail, ErrorEnvelope, encode_error, mask_key
from fake_providers.sse import data_frame

_ENCODER = msgspec.json.Encoder()

OPENAI_VERSION = "2020-10-01"
ORGANIZATION = "org-fakeproviders"
LIMIT_REQUESTS = 5000  # per minute
LIMIT_TOKENS = 160000  # per minute
RATE_LIMIT_RETRY_SECONDS = 1

JSON = "application/json"
EVENT_STREAM = "text/event-stream; charset=utf-8"


class _Spec(NamedTuple):
    message: str  # may use {model}, {key}, {window}, {tokens}
    type: str
    code: str | None
    param: str | None = None


_SPECS: dict[ErrorKind, _Spec] = {
    ErrorKind.RATE_LIMIT: _Spec(
        "Rate limit reached for {model} in organization " + ORGANIZATION + " on requests per min (RPM): "
        f"Limit {LIMIT_REQUESTS}, Used {LIMIT_REQUESTS}, Requested 1. Please try again in "
        f"{RATE_LIMIT_RETRY_SECONDS}s. Visit https://platform.openai.com/account/rate-limits to learn more.",
        "requests",
        "rate_limit_exceeded",
    ),
    ErrorKind.QUOTA: _Spec(
        "You exceeded your current quota, please check your plan and billing details. For more information "
        "on this error, read the docs: https://platform.openai.com/docs/guides/error-codes/api-errors.",
        "insufficient_quota",
        "insufficient_quota",
    ),
    ErrorKind.AUTH: _Spec(
        "Incorrect API key provided: {key}. You can find your API key at " + KEYS_URL + ".",
        "invalid_request_error",
        "invalid_api_key",
    ),
    ErrorKind.FORBIDDEN: _Spec(
        "Country, region, or territory not supported",
        "request_forbidden",
        "unsupported_country_region_territory",
    ),
    ErrorKind.MODEL_NOT_FOUND: _Spec(
        "The model `{model}` does not exist or you do not have access to it.",
        "invalid_request_error",
        "model_not_found",
    ),
    ErrorKind.CONTEXT_LENGTH: _Spec(
        "This model's maximum context length is {window} tokens. However, your messages resulted in "
        "{tokens} tokens. Please reduce the length of the messages.",
        "invalid_request_error",
        "context_length_exceeded",
        "messages",
    ),
    ErrorKind.SERVER_ERROR: _Spec(
        "The server had an error while processing your request. Sorry about that!", "server_error", None
    ),
    ErrorKind.BAD_GATEWAY: _Spec("Bad gateway.", "cf_bad_gateway", None),
    ErrorKind.UNAVAILABLE: _Spec(
        "Our servers are currently overloaded. Please try again later.",
        "service_unavailable_error",
        "server_is_overloaded",
    ),
    ErrorKind.OVERLOADED: _Spec("Overloaded", "overloaded_error", None),
    ErrorKind.HIDDEN_RATE_LIMIT: _Spec(
        "Upstream request failed: 429 Too Many Requests (rate limit exceeded), please retry later.",
        "server_error",
        None,
    ),
}

# A context-length fault on a model outside the catalogue reports this window.
FAULT_CONTEXT_WINDOW = 4097


def error_detail(error: ErrorKind, exchange: Exchange) -> ErrorDetail:
    spec = _SPECS[error]
    window = exchange.context_window or FAULT_CONTEXT_WINDOW
    tokens = exchange.input_tokens if exchange.input_tokens > window else window + exchange.input_tokens
    message = spec.message.format(
        model=exchange.model, key=mask_key(exchange.api_key), window=window, tokens=tokens
    )
    return ErrorDetail(message=message, type=spec.type, param=spec.param, code=spec.code)


def ratelimit_headers(input_tokens: int, *, requests_left: bool = True) -> list[tuple[str, str]]:
    """Go-style reset durations; the token window resets in whole milliseconds."""
    used_tokens = min(input_tokens, LIMIT_TOKENS)
    return [
        ("x-ratelimit-limit-requests", str(LIMIT_REQUESTS)),
        ("x-ratelimit-limit-tokens", str(LIMIT_TOKENS)),
        ("x-ratelimit-remaining-requests", str(LIMIT_REQUESTS - 1 if requests_left else 0)),
        ("x-ratelimit-remaining-tokens", str(LIMIT_TOKENS - used_tokens)),
        (
            "x-ratelimit-reset-requests",
            go_duration(60 / LIMIT_REQUESTS) if requests_left else go_duration(RATE_LIMIT_RETRY_SECONDS),
        ),
        ("x-ratelimit-reset-tokens", go_duration(math.ceil(used_tokens * 60_000 / LIMIT_TOKENS) / 1000)),
    ]


class OpenAIDialect:
    """The OpenAI flavour of every fault: also used by the OpenAI-compatible prefixes."""

    inband_head = 1  # the `{"role": "assistant", "content": ""}` chunk
    default_inband_error = ErrorKind.SERVER_ERROR
    default_200_error = ErrorKind.SERVER_ERROR

    def base_headers(self, exchange: Exchange, *, requests_left: bool = True) -> list[tuple[str, str]]:
        return [
            ("x-request-id", exchange.request_id),
            ("openai-organization", ORGANIZATION),
            ("openai-processing-ms", str(exchange.elapsed_ms())),
            ("openai-version", OPENAI_VERSION),
            *ratelimit_headers(exchange.input_tokens, requests_left=requests_left),
        ]

    def success_headers(self, exchange: Exchange, *, stream: bool) -> list[tuple[str, str]]:
        return [("content-type", EVENT_STREAM if stream else JSON), *self.base_headers(exchange)]

    def error_with(self, status: int, detail: ErrorDetail, exchange: Exchange) -> ErrorAnswer:
        return ErrorAnswer(
            status, [("content-type", JSON), *self.base_headers(exchange)], encode_error(detail)
        )

    def error_answer(self, error: ErrorKind, exchange: Exchange) -> ErrorAnswer:
        status = ERROR_STATUS[error]
        detail = error_detail(error, exchange)
        if error is ErrorKind.BAD_GATEWAY:
            # Cloudflare answers this one, in its own key order and with a numeric code.
            body = {"error": {"code": status, "message": detail.message, "param": None, "type": detail.type}}
            return ErrorAnswer(
                status, [("content-type", JSON), ("x-request-id", exchange.request_id)], _ENCODER.encode(body)
            )
        headers = [
            ("content-type", JSON),
            *self.base_headers(exchange, requests_left=error is not ErrorKind.RATE_LIMIT),
        ]
        if error is ErrorKind.RATE_LIMIT:
            headers += [
                ("retry-after", str(RATE_LIMIT_RETRY_SECONDS)),
                ("retry-after-ms", str(RATE_LIMIT_RETRY_SECONDS * 1000)),
            ]
        if error is ErrorKind.OVERLOADED:
            headers.append(("x-should-retry", "true"))
        return ErrorAnswer(status, headers, encode_error(detail))

    def inband_frames(self, error: ErrorKind, exchange: Exchange, *, sent: int) -> list[bytes]:
        return [data_frame(ErrorEnvelope(error=error_detail(error, exchange)))]
