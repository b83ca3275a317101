"""Anthropic's error envelope: types by status, the gateway's refusals, classified failures."""

from __future__ import annotations

import msgspec
import pytest

from gateway.errors import ClassifiedError, ErrorKind
from gateway.errors.anthropic import (
    anthropic_error_type,
    anthropic_refusal,
    anthropic_stream_error_frame,
    anthropic_upstream_error,
)
from gateway.errors.client import AuthenticationFailed, InvalidRequest, PayloadTooLarge, RateLimited
from gateway.policy.errors import model_not_allowed, model_not_found, retry_headers


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, "invalid_request_error"),
        (401, "authentication_error"),
        (403, "permission_error"),
        (404, "not_found_error"),
        (405, "invalid_request_error"),
        (413, "request_too_large"),
        (429, "rate_limit_error"),
        (500, "api_error"),
        (502, "api_error"),
        (504, "api_error"),
        (529, "overloaded_error"),
    ],
)
def test_types_by_status(status: int, kind: str) -> None:
    assert anthropic_error_type(status) == kind


@pytest.mark.parametrize(
    ("error", "status", "kind", "retry"),
    [
        (InvalidRequest("max_tokens: Field required"), 400, "invalid_request_error", "false"),
        (AuthenticationFailed("Incorrect API key provided."), 401, "authentication_error", "false"),
        (model_not_allowed("claude"), 403, "permission_error", "false"),
        (model_not_found("nope"), 404, "not_found_error", "false"),
        (PayloadTooLarge("too big"), 413, "request_too_large", "false"),
        (RateLimited("slow down", headers=retry_headers(1500)), 429, "rate_limit_error", "true"),
    ],
)
def test_refusals(error: InvalidRequest, status: int, kind: str, retry: str) -> None:
    got_status, headers, body = anthropic_refusal(error, "req_1")
    assert got_status == status
    assert msgspec.json.decode(body) == {
        "type": "error",
        "error": {"type": kind, "message": error.message},
        "request_id": "req_1",
    }
    assert headers["x-should-retry"] == retry and headers["content-type"] == "application/json"
    if status == 429:
        assert headers["retry-after"] == "2"


def test_classified_failures() -> None:
    overloaded = ClassifiedError(
        kind=ErrorKind.OVERLOADED,
        provider="anthropic",
        status_code=529,
        retryable=True,
        message="Overloaded.",
    )
    status, headers, body = anthropic_upstream_error(overloaded, "req_2")
    assert status == 529 and headers["x-should-retry"] == "true"
    assert msgspec.json.decode(body)["error"]["type"] == "overloaded_error"
    limited = ClassifiedError(
        kind=ErrorKind.RATE_LIMIT,
        provider="openai",
        status_code=429,
        retryable=True,
        retry_after=2.5,
        message="Rate limited.",
    )
    status, headers, body = anthropic_upstream_error(limited)
    assert (status, headers["retry-after"]) == (429, "3") and "retry-after-ms" not in headers
    assert msgspec.json.decode(body) == {
        "type": "error",
        "error": {"type": "rate_limit_error", "message": "Rate limited."},
        "request_id": None,
    }
    frame = anthropic_stream_error_frame(overloaded)
    assert frame.startswith(b"event: error\ndata: ") and frame.endswith(b"\n\n")
    assert msgspec.json.decode(frame[len(b"event: error\ndata: ") :]) == {
        "type": "error",
        "error": {"type": "overloaded_error", "message": "Overloaded."},
    }
