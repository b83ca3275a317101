"""What the client receives for each classification (gateway/errors/STATUS_MAPPING.md)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from gateway.errors import (
    ClassifiedError,
    ErrorKind,
    build_error,
    chat_event_error,
    chat_stream_error_frame,
    classify_response,
    error_object,
    error_response,
    startup_timeout_error,
    stream_idle_timeout_error,
    stream_truncated_error,
)

NOW = 1_800_000_000.0


def _answer(ce: ClassifiedError, api: Any = "chat") -> tuple[int, dict[str, str], dict[str, Any]]:
    status, headers, body = error_response(ce, api=api)
    return status, headers, json.loads(body)


def _response(
    status: int, body: bytes, provider: str, headers: dict[str, str] | None = None
) -> ClassifiedError:
    return classify_response(status, headers or {}, body, provider=provider, now=NOW)


def test_rate_limit_answer_in_full() -> None:
    body = b'{"error": {"message": "Rate limit reached.", "type": "tokens", "param": null, "code": "rate_limit_exceeded"}}'
    ce = _response(429, body, "openai", {"retry-after-ms": "1500"})
    assert _answer(ce) == (
        429,
        {
            "content-type": "application/json",
            "x-should-retry": "true",
            "retry-after": "2",
            "retry-after-ms": "1500",
        },
        {
            "error": {
                "message": "OpenAI is rate limiting requests (HTTP 429).",
                "type": "tokens",
                "param": None,
                "code": "rate_limit_exceeded",
                "kind": "rate_limit",
                "provider": "openai",
                "retryable": True,
                "status_code": 429,
                "detail": "Rate limit reached.",
            }
        },
    )


@pytest.mark.parametrize(
    ("ce", "status", "type_", "code", "should_retry"),
    [
        pytest.param(build_error(ErrorKind.RATE_LIMIT, provider="anthropic", status_code=429, retryable=True, upstream_type="rate_limit_error"), 429, "requests", "rate_limit_exceeded", "true", id="rate_limit-anthropic"),
        pytest.param(build_error(ErrorKind.AUTH, provider="openai", status_code=429, code="insufficient_quota"), 429, "insufficient_quota", "insufficient_quota", "false", id="quota"),
        pytest.param(build_error(ErrorKind.AUTH, provider="openai", status_code=401, code="invalid_api_key"), 502, "server_error", "upstream_authentication_failed", "false", id="auth"),
        pytest.param(build_error(ErrorKind.OVERLOADED, provider="anthropic", status_code=529, retryable=True), 503, "service_unavailable_error", "server_is_overloaded", "true", id="overloaded"),
        pytest.param(build_error(ErrorKind.TIMEOUT, provider="openai", retryable=True), 504, "server_error", "upstream_timeout", "true", id="timeout"),
        pytest.param(build_error(ErrorKind.TIMEOUT, provider="openai", status_code=503, retryable=True), 503, "service_unavailable_error", "upstream_unavailable", "true", id="timeout-503"),
        pytest.param(build_error(ErrorKind.TIMEOUT, provider="openai"), 504, "server_error", "upstream_timeout", "false", id="deadline"),
        pytest.param(startup_timeout_error("openai"), 504, "server_error", "upstream_startup_timeout", "true", id="startup_timeout"),
        pytest.param(stream_idle_timeout_error("openai"), 504, "server_error", "stream_idle_timeout", "true", id="stream-idle"),
        pytest.param(stream_truncated_error("openai"), 504, "server_error", "stream_truncated", "true", id="stream-truncated"),
        pytest.param(build_error(ErrorKind.CONFIG, provider="openai", status_code=404, code="model_not_found"), 502, "server_error", "upstream_model_not_found", "false", id="model-not-found"),
        pytest.param(build_error(ErrorKind.CONFIG, provider="openai"), 502, "server_error", "upstream_configuration_error", "false", id="config"),
        pytest.param(build_error(ErrorKind.GENERIC, provider="openai", status_code=500, retryable=True), 502, "server_error", "upstream_error", "true", id="generic-500"),
        pytest.param(build_error(ErrorKind.GENERIC, provider="openai", status_code=404), 502, "server_error", "upstream_error", "false", id="generic-404-route"),
        pytest.param(build_error(ErrorKind.GENERIC), 502, "server_error", "upstream_error", "false", id="generic-unknown"),
        pytest.param(build_error(ErrorKind.CANCELED), 499, "server_error", "request_canceled", "false", id="canceled"),
    ],
)  # fmt: skip
def test_status_mapping(ce: ClassifiedError, status: int, type_: str, code: str, should_retry: str) -> None:
    got_status, headers, body = _answer(ce)
    error = body["error"]
    assert (got_status, error["type"], error["code"], headers["x-should-retry"]) == (
        status,
        type_,
        code,
        should_retry,
    )
    assert error["message"] == ce.message
    assert error["kind"] == str(ce.kind)
    assert "retry-after" not in headers


def test_provider_credentials_never_look_like_the_clients_key() -> None:
    body = b'{"error": {"message": "Incorrect API key provided: sk-x.", "type": "invalid_request_error", "param": null, "code": "invalid_api_key"}}'
    status, headers, answer = _answer(_response(401, body, "openai"))
    assert status not in (401, 403)
    assert answer["error"]["code"] != "invalid_api_key"
    assert answer["error"]["message"] == (
        "Authentication with OpenAI failed. Check the API key, permissions, and billing settings."
    )
    assert answer["error"]["detail"] == "Incorrect API key provided: sk-x."
    assert headers["x-should-retry"] == "false"


@pytest.mark.parametrize(("api", "param"), [("chat", "messages"), ("responses", "input")])
def test_context_length_without_upstream_param(api: str, param: str) -> None:
    body = b'{"type":"error","error":{"type":"invalid_request_error","message":"prompt is too long: 208656 tokens > 200000 maximum"}}'
    status, headers, answer = _answer(_response(400, body, "anthropic"), api)
    assert status == 400
    assert headers["x-should-retry"] == "false"
    assert answer["error"] == {
        "message": "prompt is too long: 208656 tokens > 200000 maximum",
        "type": "invalid_request_error",
        "param": param,
        "code": "context_length_exceeded",
        "kind": "config",
        "provider": "anthropic",
        "retryable": False,
        "status_code": 400,
        "detail": "prompt is too long: 208656 tokens > 200000 maximum",
    }


def test_context_length_keeps_the_upstream_param() -> None:
    ce = build_error(
        ErrorKind.CONFIG, provider="openai", status_code=400, code="context_length_exceeded", param="input"
    )
    assert _answer(ce)[2]["error"]["param"] == "input"
    assert _answer(ce)[2]["error"]["message"] == "The input exceeds the context window of this model."


def test_client_caused_errors_pass_through() -> None:
    body = b'{"error": {"message": "Messages with role \'tool\' must be a response to a preceding message with \'tool_calls\'.", "type": "invalid_request_error", "param": "messages.[2].role", "code": null}}'
    status, headers, answer = _answer(_response(400, body, "openai"))
    assert status == 400
    assert headers == {"content-type": "application/json", "x-should-retry": "false"}
    error = answer["error"]
    assert (error["message"], error["type"], error["param"], error["code"]) == (
        "Messages with role 'tool' must be a response to a preceding message with 'tool_calls'.",
        "invalid_request_error",
        "messages.[2].role",
        None,
    )
    assert (error["kind"], error["retryable"], error["status_code"]) == ("generic", False, 400)


def test_previous_response_not_found_passes_through() -> None:
    body = b'{"error": {"message": "Previous response with id \'resp_abc\' not found.", "type": "invalid_request_error", "param": "previous_response_id", "code": "previous_response_not_found"}}'
    status, _, answer = _answer(_response(400, body, "openai"), "responses")
    assert status == 400
    assert (answer["error"]["param"], answer["error"]["code"]) == (
        "previous_response_id",
        "previous_response_not_found",
    )


def test_upstream_409_and_413_keep_their_status_and_veto_sdk_retries() -> None:
    conflict = _answer(
        _response(409, b'{"error": {"message": "conflict", "type": "invalid_request_error"}}', "openai")
    )
    assert (conflict[0], conflict[1]["x-should-retry"]) == (409, "false")
    too_large = _answer(
        _response(
            413,
            b'{"type":"error","error":{"type":"request_too_large","message":"Request exceeds the maximum allowed number of bytes."}}',
            "anthropic",
        )
    )
    assert (too_large[0], too_large[2]["error"]["type"]) == (413, "request_too_large")


def test_in_band_client_error_without_status_is_a_400() -> None:
    ce = build_error(
        ErrorKind.GENERIC, provider="openai", upstream_type="invalid_request_error", detail="bad tool"
    )
    status, _, answer = _answer(ce)
    assert (status, answer["error"]["message"], answer["error"]["type"]) == (
        400,
        "bad tool",
        "invalid_request_error",
    )


def test_retry_after_headers_only_for_retryable_errors() -> None:
    retryable = build_error(ErrorKind.OVERLOADED, status_code=529, retryable=True, retry_after=0.2)
    headers = error_response(retryable)[1]
    assert (headers["retry-after"], headers["retry-after-ms"]) == ("1", "200")
    final = build_error(ErrorKind.AUTH, status_code=429, code="insufficient_quota", retry_after=30)
    assert "retry-after" not in error_response(final)[1]


def test_unknowns_are_null_in_the_body() -> None:
    error = error_object(build_error(ErrorKind.GENERIC))
    assert (error["provider"], error["status_code"], error["detail"]) == (None, None, None)


def test_chat_stream_error_frame() -> None:
    ce = stream_truncated_error("openai")
    frame = chat_stream_error_frame(ce)
    assert frame.startswith(b'data: {"error":{"message":"OpenAI stream closed unexpectedly')
    assert frame.endswith(b"}}\n\n")
    assert frame.count(b"\n") == 2
    assert json.loads(frame[len(b"data: ") :]) == {"error": error_object(ce)}


def test_chat_event_error_payload_omits_empty_fields() -> None:
    assert chat_event_error(startup_timeout_error("")) == {
        "message": "The AI provider did not start responding in time.",
        "kind": "startup_timeout",
        "retryable": True,
    }
    full = build_error(
        ErrorKind.RATE_LIMIT, provider="openai", status_code=429, retryable=True, detail="slow"
    )
    assert chat_event_error(full) == {
        "message": "OpenAI is rate limiting requests (HTTP 429).",
        "detail": "slow",
        "kind": "rate_limit",
        "provider": "openai",
        "retryable": True,
        "status_code": 429,
    }
