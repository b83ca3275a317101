"""Real upstream error answers, in-band stream errors and exceptions."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from gateway.errors import (
    ClassifiedError,
    ErrorKind,
    UpstreamError,
    build_error,
    classify_exception,
    classify_response,
    classify_stream_error,
    startup_timeout_error,
    stream_idle_timeout_error,
    stream_truncated_error,
)

NOW = 1_800_000_000.0

OPENAI_RATE_LIMIT = (
    b'{"error": {"message": "Rate limit reached for gpt-4o in organization org-abc on tokens per min (TPM): '
    b"Limit 30000, Used 14567, Requested 24754. Please try again in 18.642s. Visit "
    b'https://platform.openai.com/account/rate-limits to learn more.", "type": "tokens", "param": null, '
    b'"code": "rate_limit_exceeded"}}'
)
OPENAI_FREE_TIER_RATE_LIMIT = (
    b'{"error": {"message": "Rate limit reached for default-gpt-3.5-turbo in organization org-abc on requests '
    b"per min. Limit: 3 / min. Please try again in 20s. Please add a payment method to your account to increase "
    b'your rate limit. Visit https://platform.openai.com/account/billing to add a payment method.", '
    b'"type": "requests", "param": null, "code": "rate_limit_exceeded"}}'
)
OPENAI_QUOTA = (
    b'{"error": {"message": "You exceeded your current quota, please check your plan and billing details.", '
    b'"type": "insufficient_quota", "param": null, "code": "insufficient_quota"}}'
)
OPENAI_BAD_KEY = (
    b'{"error": {"message": "Incorrect API key provided: sk-VKMI***wjh3. You can find your API key at '
    b'https://platform.openai.com/account/api-keys.", "type": "invalid_request_error", "param": null, '
    b'"code": "invalid_api_key"}}'
)
OPENAI_NO_MODEL = (
    b'{"error": {"message": "The model `gpt-4o-2024-11-20` does not exist or you do not have access to it.", '
    b'"type": "invalid_request_error", "param": null, "code": "model_not_found"}}'
)
OPENAI_CONTEXT = (
    b'{"error": {"message": "This model\'s maximum context length is 4097 tokens. However, your messages '
    b'resulted in 4294 tokens. Please reduce the length of the messages.", "type": "invalid_request_error", '
    b'"param": "messages", "code": "context_length_exceeded"}}'
)
OPENAI_500 = (
    b'{"error": {"message": "The server had an error while processing your request. Sorry about that!", '
    b'"type": "server_error", "param": null, "code": null}}'
)
OPENAI_503 = (
    b'{"error": {"message": "Our servers are currently overloaded. Please try again later.", '
    b'"type": "service_unavailable_error", "param": null, "code": "server_is_overloaded"}}'
)
OPENAI_503_OLD = (
    b'{"error": {"message": "That model is currently overloaded with other requests. You can retry your '
    b'request.", "type": "server_error", "param": null, "code": null}}'
)
OPENAI_TOOL_ORDER = (
    b'{"error": {"message": "Messages with role \'tool\' must be a response to a preceding message with '
    b'\'tool_calls\'.", "type": "invalid_request_error", "param": "messages.[2].role", "code": null}}'
)
OPENAI_BAD_TIMEOUT_PARAM = (
    b'{"error": {"message": "Invalid type for \'timeout\': expected a number, but got a string.", '
    b'"type": "invalid_request_error", "param": "timeout", "code": "invalid_type"}}'
)
OPENAI_PREVIOUS = (
    b'{"error": {"message": "Previous response with id \'resp_abc\' not found.", '
    b'"type": "invalid_request_error", "param": "previous_response_id", "code": "previous_response_not_found"}}'
)
ANTHROPIC_OVERLOADED = (
    b'{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"},"request_id":"req_1"}'
)
ANTHROPIC_RATE_LIMIT = (
    b'{"type":"error","error":{"type":"rate_limit_error","message":"This request would exceed the rate limit '
    b'for your organization of 50,000 input tokens per minute."},"request_id":"req_2"}'
)
ANTHROPIC_BAD_KEY = b'{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"},"request_id":"req_3"}'
ANTHROPIC_TOO_LONG = (
    b'{"type":"error","error":{"type":"invalid_request_error","message":"prompt is too long: 208656 tokens > '
    b'200000 maximum"},"request_id":"req_4"}'
)
ANTHROPIC_CREDIT = (
    b'{"type":"error","error":{"type":"invalid_request_error","message":"Your credit balance is too low to '
    b'access the Anthropic API. Please go to Plans & Billing to upgrade or purchase credits."}}'
)
ANTHROPIC_NO_MODEL = b'{"type":"error","error":{"type":"not_found_error","message":"model: claude-9-opus"}}'
ANTHROPIC_PERMISSION = (
    b'{"type":"error","error":{"type":"permission_error","message":"Your API key does not have permission '
    b'to use the specified resource."}}'
)
GOOGLE_IN_500 = (
    b'{"error": {"code": 429, "message": "Resource has been exhausted (e.g. check quota).", '
    b'"status": "RESOURCE_EXHAUSTED"}}'
)
NGINX_502 = (
    b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1>"
    b"</center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
)

Row = tuple[ErrorKind, bool, bool, int, str | None, str | None]


def _row(ce: ClassifiedError) -> Row:
    return (ce.kind, ce.retryable, ce.failover, ce.status_code, ce.code, ce.upstream_type)


@pytest.mark.parametrize(
    ("status", "body", "provider", "expected"),
    [
        pytest.param(429, OPENAI_RATE_LIMIT, "openai", (ErrorKind.RATE_LIMIT, True, True, 429, "rate_limit_exceeded", "tokens"), id="openai-429"),
        pytest.param(429, OPENAI_FREE_TIER_RATE_LIMIT, "openai", (ErrorKind.RATE_LIMIT, True, True, 429, "rate_limit_exceeded", "requests"), id="openai-429-mentions-billing"),
        pytest.param(429, OPENAI_QUOTA, "openai", (ErrorKind.AUTH, False, True, 429, "insufficient_quota", "insufficient_quota"), id="openai-quota"),
        pytest.param(401, OPENAI_BAD_KEY, "openai", (ErrorKind.AUTH, False, True, 401, "invalid_api_key", "invalid_request_error"), id="openai-401"),
        pytest.param(404, OPENAI_NO_MODEL, "openai", (ErrorKind.CONFIG, False, True, 404, "model_not_found", "invalid_request_error"), id="openai-404-model"),
        pytest.param(400, OPENAI_CONTEXT, "openai", (ErrorKind.CONFIG, False, True, 400, "context_length_exceeded", "invalid_request_error"), id="openai-context"),
        pytest.param(500, OPENAI_500, "openai", (ErrorKind.GENERIC, True, True, 500, None, "server_error"), id="openai-500"),
        pytest.param(503, OPENAI_503, "openai", (ErrorKind.OVERLOADED, True, True, 503, "server_is_overloaded", "service_unavailable_error"), id="openai-503"),
        pytest.param(503, OPENAI_503_OLD, "openai", (ErrorKind.OVERLOADED, True, True, 503, None, "server_error"), id="openai-503-old"),
        pytest.param(400, OPENAI_TOOL_ORDER, "openai", (ErrorKind.GENERIC, False, False, 400, None, "invalid_request_error"), id="openai-400-client"),
        pytest.param(400, OPENAI_BAD_TIMEOUT_PARAM, "openai", (ErrorKind.GENERIC, False, False, 400, "invalid_type", "invalid_request_error"), id="openai-400-timeout-param"),
        pytest.param(400, OPENAI_PREVIOUS, "openai", (ErrorKind.GENERIC, False, False, 400, "previous_response_not_found", "invalid_request_error"), id="openai-previous-response"),
        pytest.param(529, ANTHROPIC_OVERLOADED, "anthropic", (ErrorKind.OVERLOADED, True, True, 529, None, "overloaded_error"), id="anthropic-529"),
        pytest.param(429, ANTHROPIC_RATE_LIMIT, "anthropic", (ErrorKind.RATE_LIMIT, True, True, 429, None, "rate_limit_error"), id="anthropic-429"),
        pytest.param(401, ANTHROPIC_BAD_KEY, "anthropic", (ErrorKind.AUTH, False, True, 401, None, "authentication_error"), id="anthropic-401"),
        pytest.param(403, ANTHROPIC_PERMISSION, "anthropic", (ErrorKind.AUTH, False, True, 403, None, "permission_error"), id="anthropic-403"),
        pytest.param(400, ANTHROPIC_TOO_LONG, "anthropic", (ErrorKind.CONFIG, False, True, 400, "context_length_exceeded", "invalid_request_error"), id="anthropic-too-long"),
        pytest.param(400, ANTHROPIC_CREDIT, "anthropic", (ErrorKind.AUTH, False, True, 400, "insufficient_quota", "invalid_request_error"), id="anthropic-credit"),
        pytest.param(402, b'{"type":"error","error":{"type":"billing_error","message":"Billing issue."}}', "anthropic", (ErrorKind.AUTH, False, True, 402, "insufficient_quota", "billing_error"), id="anthropic-402"),
        pytest.param(404, ANTHROPIC_NO_MODEL, "anthropic", (ErrorKind.CONFIG, False, True, 404, "model_not_found", "not_found_error"), id="anthropic-404-model"),
        pytest.param(500, GOOGLE_IN_500, "", (ErrorKind.RATE_LIMIT, True, True, 429, None, "RESOURCE_EXHAUSTED"), id="429-hidden-in-500"),
        pytest.param(503, b'{"error": {"message": "Too Many Requests"}}', "openai-compatible", (ErrorKind.RATE_LIMIT, True, True, 503, None, None), id="rate-limit-text-in-503"),
        pytest.param(502, NGINX_502, "openai-compatible", (ErrorKind.TIMEOUT, True, True, 502, None, None), id="nginx-502"),
        pytest.param(504, b"", "openai", (ErrorKind.TIMEOUT, True, True, 504, None, None), id="empty-504"),
        pytest.param(404, b'{"detail": "Not Found"}', "openai-compatible", (ErrorKind.GENERIC, False, True, 404, None, None), id="route-404-fails-over"),
        pytest.param(422, b'{"detail": "field required"}', "openai-compatible", (ErrorKind.GENERIC, False, False, 422, None, None), id="422-client"),
        pytest.param(200, b'{"error": {"code": 502, "message": "Provider returned error"}}', "openrouter", (ErrorKind.TIMEOUT, True, True, 502, None, None), id="200-with-error-body"),
        pytest.param(200, b'{"error": {"message": "upstream failed", "type": "server_error"}}', "openai", (ErrorKind.GENERIC, True, True, 0, None, "server_error"), id="200-without-status"),
        pytest.param(501, b"Not Implemented", "openai-compatible", (ErrorKind.GENERIC, False, True, 501, None, None), id="501"),
    ],
)  # fmt: skip
def test_real_upstream_answers(status: int, body: bytes, provider: str, expected: Row) -> None:
    assert _row(classify_response(status, {}, body, provider=provider, now=NOW)) == expected


def test_openai_rate_limit_in_full() -> None:
    ce = classify_response(
        429, {"retry-after-ms": "18642", "retry-after": "19"}, OPENAI_RATE_LIMIT, provider="openai", now=NOW
    )
    assert ce == build_error(
        ErrorKind.RATE_LIMIT,
        provider="openai",
        status_code=429,
        retryable=True,
        retry_after=18.642,
        detail=(
            "Rate limit reached for gpt-4o in organization org-abc on tokens per min (TPM): Limit 30000, "
            "Used 14567, Requested 24754. Please try again in 18.642s. Visit "
            "https://platform.openai.com/account/rate-limits to learn more."
        ),
        code="rate_limit_exceeded",
        upstream_type="tokens",
    )
    assert ce.message == "OpenAI is rate limiting requests (HTTP 429)."
    assert ce.retry_message == "OpenAI is rate limiting requests."


def test_anthropic_overload_in_full() -> None:
    ce = classify_response(
        529, {"x-should-retry": "true"}, ANTHROPIC_OVERLOADED, provider="anthropic", now=NOW
    )
    assert (ce.message, ce.retry_message, ce.detail) == (
        "Anthropic is temporarily overloaded (HTTP 529).",
        "Anthropic is temporarily overloaded.",
        "Overloaded",
    )


def test_context_length_keeps_param_and_detail() -> None:
    ce = classify_response(400, {}, OPENAI_CONTEXT, provider="openai", now=NOW)
    assert ce.param == "messages"
    assert ce.detail.startswith("This model's maximum context length is 4097 tokens.")
    assert (
        ce.message
        == "OpenAI rejected the model configuration. Check the selected model and provider settings."
    )


def test_provider_key_is_normalised_and_detected_without_hint() -> None:
    assert (
        classify_response(429, {}, b"{}", provider="openai-compatible", now=NOW).provider == "openai-compat"
    )
    assert classify_response(401, {}, ANTHROPIC_BAD_KEY, provider="", now=NOW).provider == ""
    body = b'{"error": {"message": "Claude is overloaded"}}'
    assert classify_response(500, {}, body, provider="", now=NOW).provider == "anthropic"


def test_http_date_retry_after_on_a_response() -> None:
    headers = {"Retry-After": "Fri, 15 Jan 2027 08:00:07 GMT"}
    ce = classify_response(429, headers, ANTHROPIC_RATE_LIMIT, provider="anthropic", now=NOW)
    assert ce.retry_after == 7.0


# -- in-band stream errors -------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "provider", "status", "expected"),
    [
        pytest.param(
            {"error": {"message": "The server had an error processing your request.", "type": "server_error", "param": None, "code": None}},
            "openai", 200, (ErrorKind.GENERIC, True, True, 0, None, "server_error"), id="chat-server-error",
        ),
        pytest.param(
            {"error": {"message": "Invalid 'tools[0].function.name'", "type": "invalid_request_error", "param": "tools", "code": None}},
            "openai", 200, (ErrorKind.GENERIC, False, False, 0, None, "invalid_request_error"), id="chat-client-error",
        ),
        pytest.param(
            {"type": "error", "sequence_number": 2, "error": {"type": "invalid_request_error", "code": "context_length_exceeded", "message": "Your input exceeds the context window of this model. Please adjust your input and try again.", "param": "input"}},
            "openai", 200, (ErrorKind.CONFIG, False, True, 0, "context_length_exceeded", "invalid_request_error"), id="responses-nested",
        ),
        pytest.param(
            {"type": "error", "status": 400, "sequence_number": 1, "error": {"type": "invalid_request_error", "code": "previous_response_not_found", "message": "Previous response with id 'resp_abc' not found.", "param": "previous_response_id"}},
            "openai", 200, (ErrorKind.GENERIC, False, False, 400, "previous_response_not_found", "invalid_request_error"), id="responses-nested-with-status",
        ),
        pytest.param(
            {"type": "error", "code": "server_is_overloaded", "message": "Our servers are currently overloaded.", "param": None, "sequence_number": 3},
            "openai", 0, (ErrorKind.OVERLOADED, True, True, 0, "server_is_overloaded", None), id="responses-flat",
        ),
        pytest.param(
            {"type": "error", "sequence_number": 2, "error": {"type": "insufficient_quota", "code": "insufficient_quota", "message": "You exceeded your current quota."}},
            "openai", 200, (ErrorKind.AUTH, False, True, 0, "insufficient_quota", "insufficient_quota"), id="responses-quota-after-created",
        ),
        pytest.param(
            {"type": "response.failed", "sequence_number": 9, "response": {"id": "resp_1", "status": "failed", "error": {"code": "rate_limit_exceeded", "message": "Rate limit reached."}}},
            "openai", 200, (ErrorKind.RATE_LIMIT, True, True, 0, "rate_limit_exceeded", None), id="responses-failed",
        ),
        pytest.param(
            {"type": "response.failed", "response": {"id": "resp_1", "status": "failed", "error": {"code": "server_error", "message": "The server had an error."}}},
            "openai", 200, (ErrorKind.GENERIC, True, True, 0, "server_error", None), id="responses-failed-server-error",
        ),
        pytest.param(
            {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
            "anthropic", 200, (ErrorKind.OVERLOADED, True, True, 0, None, "overloaded_error"), id="anthropic-event-error",
        ),
        pytest.param(
            {"error": {"code": 429, "message": "Rate limit exceeded: free-models-per-day"}},
            "openrouter", 200, (ErrorKind.RATE_LIMIT, True, True, 429, None, None), id="openrouter-embedded-status",
        ),
        pytest.param(
            {"error": {"message": "boom"}}, "openai", 502, (ErrorKind.TIMEOUT, True, True, 502, None, None), id="explicit-status",
        ),
    ],
)  # fmt: skip
def test_in_band_errors(payload: dict[str, object], provider: str, status: int, expected: Row) -> None:
    assert _row(classify_stream_error(payload, provider=provider, status_code=status)) == expected


def test_in_band_anthropic_overload_message() -> None:
    payload = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    ce = classify_stream_error(payload, provider="anthropic")
    assert (ce.message, ce.detail, ce.provider) == (
        "Anthropic is temporarily overloaded.",
        "Overloaded",
        "anthropic",
    )


def test_in_band_param_is_kept() -> None:
    payload = {
        "type": "error",
        "error": {
            "type": "invalid_request_error",
            "code": "context_length_exceeded",
            "message": "x",
            "param": "input",
        },
    }
    assert classify_stream_error(payload, provider="openai").param == "input"


def test_empty_in_band_error_is_an_unexpected_failure() -> None:
    ce = classify_stream_error({"type": "error"}, provider="openai")
    assert (ce.kind, ce.retryable, ce.message) == (
        ErrorKind.GENERIC,
        False,
        "The chat request failed unexpectedly.",
    )


# -- the gateway's own timers ---------------------------------------------------------


def test_startup_timeout() -> None:
    ce = startup_timeout_error("openai")
    assert (ce.kind, ce.retryable, ce.failover, ce.status_code) == (ErrorKind.STARTUP_TIMEOUT, True, True, 0)
    assert ce.message == "OpenAI did not start responding in time."
    assert ce.retry_message == "OpenAI did not start responding in time."
    assert startup_timeout_error("").message == "The AI provider did not start responding in time."


def test_stream_idle_and_truncated() -> None:
    idle = stream_idle_timeout_error("anthropic", idle_seconds=30)
    assert (idle.kind, idle.retryable, idle.code, idle.detail) == (
        ErrorKind.TIMEOUT,
        True,
        "stream_idle_timeout",
        "No stream data for 30 s.",
    )
    assert idle.message == "Anthropic stopped sending data before the response completed."
    cut = stream_truncated_error("openai-compatible")
    assert (cut.kind, cut.retryable, cut.code) == (ErrorKind.TIMEOUT, True, "stream_truncated")
    assert cut.message == "OpenAI Compatible stream closed unexpectedly before the response completed."


# -- exceptions ------------------------------------------------------------------------

REQUEST = httpx.Request("POST", "https://api.anthropic.com/v1/messages")


@pytest.mark.parametrize(
    ("exc", "kind", "retryable", "failover"),
    [
        (httpx.ConnectError("All connection attempts failed", request=REQUEST), ErrorKind.TIMEOUT, True, True),
        (httpx.ConnectTimeout("", request=REQUEST), ErrorKind.TIMEOUT, True, True),
        (httpx.ReadTimeout("", request=REQUEST), ErrorKind.TIMEOUT, True, True),
        (httpx.PoolTimeout("", request=REQUEST), ErrorKind.TIMEOUT, True, True),
        (httpx.ReadError("", request=REQUEST), ErrorKind.TIMEOUT, True, True),
        (httpx.RemoteProtocolError("Server disconnected without sending a response.", request=REQUEST), ErrorKind.TIMEOUT, True, True),
        (httpx.LocalProtocolError("Illegal header value b'Bearer sk\\n'"), ErrorKind.CONFIG, False, True),
        (httpx.UnsupportedProtocol("Request URL is missing an 'http://' or 'https://' protocol."), ErrorKind.CONFIG, False, True),
        (ConnectionResetError(104, "Connection reset by peer"), ErrorKind.TIMEOUT, True, True),
        (TimeoutError(), ErrorKind.TIMEOUT, False, False),
        (asyncio.CancelledError(), ErrorKind.CANCELED, False, False),
        (ValueError("something odd"), ErrorKind.GENERIC, False, True),
        (RuntimeError("internal server error from sdk"), ErrorKind.GENERIC, True, True),
    ],
)  # fmt: skip
def test_exceptions(exc: BaseException, kind: ErrorKind, retryable: bool, failover: bool) -> None:
    ce = classify_exception(exc, provider="anthropic")
    assert (ce.kind, ce.retryable, ce.failover, ce.provider) == (kind, retryable, failover, "anthropic")


def test_exception_detail_and_url_detection() -> None:
    ce = classify_exception(httpx.ReadTimeout("", request=REQUEST), provider="")
    assert (ce.detail, ce.provider, ce.message) == (
        "ReadTimeout",
        "anthropic",
        "Anthropic is temporarily unavailable.",
    )
    refused = classify_exception(
        httpx.ConnectError("[Errno 111] Connection refused", request=REQUEST), provider=""
    )
    assert refused.detail == "[Errno 111] Connection refused"


def test_deadline_message() -> None:
    ce = classify_exception(TimeoutError(), provider="openai")
    assert ce.message == "The request timed out before it completed."


def test_http_status_error_uses_its_response() -> None:
    response = httpx.Response(429, headers={"retry-after": "3"}, content=OPENAI_QUOTA, request=REQUEST)
    exc = httpx.HTTPStatusError("429", request=REQUEST, response=response)
    ce = classify_exception(exc, provider="openai", now=NOW)
    assert (ce.kind, ce.code, ce.retry_after, ce.status_code) == (
        ErrorKind.AUTH,
        "insufficient_quota",
        3.0,
        429,
    )


def test_carried_classification_wins_anywhere_in_the_chain() -> None:
    carried = startup_timeout_error("")
    try:
        try:
            raise UpstreamError(carried)
        except UpstreamError as inner:
            raise RuntimeError("context canceled") from inner
    except RuntimeError as outer:
        ce = classify_exception(outer, provider="openai")
    assert ce == startup_timeout_error("openai")
    assert classify_exception(UpstreamError(carried), provider="") is carried


def test_exception_groups_use_their_first_member() -> None:
    group = ExceptionGroup("tasks", [httpx.ConnectError("refused", request=REQUEST), ValueError("x")])
    assert classify_exception(group, provider="openai").kind is ErrorKind.TIMEOUT
