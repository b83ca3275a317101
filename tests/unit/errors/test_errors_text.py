"""The spec's classification table (chatd-spec §2.3-2.5, §2.9) against ``classify_text``."""

from __future__ import annotations

import pytest

from gateway.errors import ClassifiedError, ErrorKind, build_error, classify_text, with_provider
from gateway.errors._signals import (
    CONFIG_CONTEXT,
    CONFIG_MODEL,
    CONFIG_OTHER,
    GENERIC_RETRYABLE,
    INTERRUPTED,
    OVERLOADED,
    RATE_LIMIT,
    STRONG_AUTH,
    TIMEOUT,
    WEAK_AUTH,
    extract_status_code,
)

AUTH_MESSAGE = (
    "Authentication with the AI provider failed. Check the API key, permissions, and billing settings."
)
CONFIG_MESSAGE = (
    "The AI provider rejected the model configuration. Check the selected model and provider settings."
)


def _summary(ce: ClassifiedError) -> tuple[str, ErrorKind, str, bool, int]:
    return (ce.message, ce.kind, ce.provider, ce.retryable, ce.status_code)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            "status 529 from upstream",
            ("The AI provider is temporarily overloaded (HTTP 529).", ErrorKind.OVERLOADED, "", True, 529),
            id="ambiguous-overload-keeps-provider-unknown",
        ),
        pytest.param(
            "anthropic overloaded_error",
            ("Anthropic is temporarily overloaded.", ErrorKind.OVERLOADED, "anthropic", True, 0),
            id="explicit-anthropic-overload",
        ),
        pytest.param(
            "authentication failed: invalid model",
            (AUTH_MESSAGE, ErrorKind.AUTH, "", False, 0),
            id="auth-beats-config",
        ),
        pytest.param("invalid model", (CONFIG_MESSAGE, ErrorKind.CONFIG, "", False, 0), id="pure-config"),
        pytest.param("forbidden", (AUTH_MESSAGE, ErrorKind.AUTH, "", False, 0), id="bare-forbidden"),
        pytest.param("status 401 from upstream", (AUTH_MESSAGE, ErrorKind.AUTH, "", False, 401), id="401"),
        pytest.param("status 403 from upstream", (AUTH_MESSAGE, ErrorKind.AUTH, "", False, 403), id="403"),
        pytest.param(
            "forbidden: context length exceeded",
            (CONFIG_MESSAGE, ErrorKind.CONFIG, "", False, 0),
            id="forbidden-context-length-is-config",
        ),
        pytest.param(
            "status 429 from upstream",
            ("The AI provider is rate limiting requests (HTTP 429).", ErrorKind.RATE_LIMIT, "", True, 429),
            id="429",
        ),
        pytest.param(
            "status 429: invalid model",
            (CONFIG_MESSAGE, ErrorKind.CONFIG, "", False, 429),
            id="rate-limit-does-not-beat-config",
        ),
        pytest.param(
            "service unavailable",
            ("The AI provider is temporarily unavailable.", ErrorKind.TIMEOUT, "", True, 0),
            id="service-unavailable-is-retryable-timeout",
        ),
        pytest.param(
            "status 503: invalid model",
            (CONFIG_MESSAGE, ErrorKind.CONFIG, "", False, 503),
            id="timeout-status-does-not-beat-config",
        ),
        pytest.param(
            "service unavailable: model not found",
            (CONFIG_MESSAGE, ErrorKind.CONFIG, "", False, 0),
            id="timeout-text-does-not-beat-config",
        ),
        pytest.param(
            "connection refused: unsupported model",
            (CONFIG_MESSAGE, ErrorKind.CONFIG, "", False, 0),
            id="connection-refused-unsupported-model",
        ),
        pytest.param(
            "context deadline exceeded",
            ("The request timed out before it completed.", ErrorKind.TIMEOUT, "", False, 0),
            id="deadline-exceeded-is-not-retryable",
        ),
        pytest.param(
            "received status 429 from upstream",
            ("The AI provider is rate limiting requests (HTTP 429).", ErrorKind.RATE_LIMIT, "", True, 429),
            id="received-status-429-is-retryable",
        ),
    ],
)
def test_spec_classification_table(text: str, expected: tuple[str, ErrorKind, str, bool, int]) -> None:
    assert _summary(classify_text(text)) == expected


def _literal_cases() -> list[object]:
    groups: list[tuple[tuple[str, ...], ErrorKind, bool]] = [
        (OVERLOADED, ErrorKind.OVERLOADED, True),
        (RATE_LIMIT, ErrorKind.RATE_LIMIT, True),
        (TIMEOUT, ErrorKind.TIMEOUT, True),
        (STRONG_AUTH, ErrorKind.AUTH, False),
        (WEAK_AUTH, ErrorKind.AUTH, False),
        (CONFIG_MODEL + CONFIG_CONTEXT + CONFIG_OTHER, ErrorKind.CONFIG, False),
        (GENERIC_RETRYABLE, ErrorKind.GENERIC, True),
        (INTERRUPTED, ErrorKind.CANCELED, False),
    ]
    return [
        pytest.param(literal, kind, retry, id=literal)
        for needles, kind, retry in groups
        for literal in needles
    ]


def test_the_spec_literal_lists_are_complete() -> None:
    """The tables the parametrisation below walks hold exactly the spec's §2.4 literals."""
    assert RATE_LIMIT == ("rate limit", "rate_limit", "rate limited", "rate-limited", "too many requests")
    assert STRONG_AUTH == (
        "authentication",
        "unauthorized",
        "invalid api key",
        "invalid_api_key",
        "quota",
        "billing",
        "insufficient_quota",
        "payment required",
    )
    assert CONFIG_MODEL + CONFIG_CONTEXT + CONFIG_OTHER == (
        "invalid model",
        "model not found",
        "model_not_found",
        "unsupported model",
        "context length exceeded",
        "context_exceeded",
        "maximum context length",
        "malformed config",
        "malformed configuration",
    )
    assert len(TIMEOUT) == 14
    assert INTERRUPTED == ("chat interrupted", "request interrupted", "operation interrupted")


@pytest.mark.parametrize(("literal", "kind", "retryable"), _literal_cases())
def test_every_spec_literal_maps_to_its_kind(literal: str, kind: ErrorKind, retryable: bool) -> None:
    ce = classify_text(literal)
    assert (ce.kind, ce.retryable) == (kind, retryable)


@pytest.mark.parametrize("literal", [*INTERRUPTED, "context canceled"])
def test_cancellation_literals_use_the_canceled_message(literal: str) -> None:
    ce = classify_text(f"upstream call failed: {literal}")
    assert ce.message == "The request was canceled before it completed."
    assert ce.retry_message == "The request was canceled before it completed."
    assert (ce.kind, ce.retryable, ce.failover) == (ErrorKind.CANCELED, False, False)


@pytest.mark.parametrize(
    ("text", "kind", "retryable", "status"),
    [
        ("status 408", ErrorKind.TIMEOUT, True, 408),
        ("status 500", ErrorKind.GENERIC, True, 500),
        ("status 502", ErrorKind.TIMEOUT, True, 502),
        ("status 504", ErrorKind.TIMEOUT, True, 504),
        ("status code: 503", ErrorKind.TIMEOUT, True, 503),
        ("http=529", ErrorKind.OVERLOADED, True, 529),
        ("HTTP 401", ErrorKind.AUTH, False, 401),
        ("status 418 teapot", ErrorKind.GENERIC, False, 418),
    ],
)
def test_status_phrases(text: str, kind: ErrorKind, retryable: bool, status: int) -> None:
    ce = classify_text(text)
    assert (ce.kind, ce.retryable, ce.status_code) == (kind, retryable, status)


@pytest.mark.parametrize(
    ("text", "status"),
    [
        ("status 429 from upstream", 429),
        ("status code 503", 503),
        ("status: 500", 500),
        ("http 502 bad gateway", 502),
        ("got 429 too many requests", 429),
        ("upstream said 503", 503),
        ("dial tcp 10.0.0.1:443: connection refused", 0),
        ("dial tcp 10.0.0.1:500: connection refused", 0),
        ("dial tcp 10.0.0.1:502: i/o timeout, then 504", 504),
        ("request id 4290 failed", 0),
        ("stream id 503; internal_error", 0),
        ("please try again in 1.500s", 0),
        ("status 4290", 0),
        ("no digits at all", 0),
    ],
)
def test_status_extraction(text: str, status: int) -> None:
    assert extract_status_code(text) == status


def test_a_known_status_beats_the_text() -> None:
    ce = classify_text("status 503 service unavailable", status_code=429)
    assert (ce.kind, ce.status_code) == (ErrorKind.RATE_LIMIT, 429)


@pytest.mark.parametrize(
    "text",
    [
        "http2: client connection force closed via ClientConn.Close",
        "http2: Transport received Server's graceful shutdown GOAWAY",
        "http2: server sent GOAWAY and closed the connection",
        "http2: stream closed",
        'Post "https://example.com/v1/messages": use of closed network connection',
        "http2: client conn is closed",
        "http2: client conn not usable",
        "http2: client conn could not be established",
        "http2: client connection lost",
    ],
)
def test_http2_transport_errors_are_retryable_timeouts(text: str) -> None:
    ce = classify_text(text)
    assert _summary(ce) == ("The AI provider is temporarily unavailable.", ErrorKind.TIMEOUT, "", True, 0)


@pytest.mark.parametrize(
    ("text", "provider", "message"),
    [
        (
            'stream response: Post "https://api.anthropic.com/v1/messages": '
            "http2: client connection force closed via ClientConn.Close",
            "anthropic",
            "Anthropic is temporarily unavailable.",
        ),
        (
            'stream response: Post "https://api.openai.com/v1/chat/completions": '
            "http2: client connection force closed via ClientConn.Close",
            "openai",
            "OpenAI is temporarily unavailable.",
        ),
        (
            'stream response: Post "https://generativelanguage.googleapis.com/v1beta/models/'
            'gemini-pro:streamGenerateContent": http2: server sent GOAWAY and closed the connection',
            "google",
            "Google is temporarily unavailable.",
        ),
    ],
)
def test_provider_is_detected_from_urls(text: str, provider: str, message: str) -> None:
    ce = classify_text(text)
    assert (ce.kind, ce.retryable, ce.provider, ce.message) == (ErrorKind.TIMEOUT, True, provider, message)


@pytest.mark.parametrize(
    ("text", "kind", "retryable", "status"),
    [
        ("http2: server error 429 Too Many Requests", ErrorKind.RATE_LIMIT, True, 429),
        ("http2: 401 unauthorized", ErrorKind.AUTH, False, 401),
        ("http2: client conn is closed: status 429 Too Many Requests", ErrorKind.RATE_LIMIT, True, 429),
        ("http2: server sent GOAWAY: status 401 unauthorized", ErrorKind.AUTH, False, 401),
    ],
)
def test_status_beats_http2_words(text: str, kind: ErrorKind, retryable: bool, status: int) -> None:
    ce = classify_text(text)
    assert (ce.kind, ce.retryable, ce.status_code) == (kind, retryable, status)


@pytest.mark.parametrize(
    ("text", "provider"),
    [
        ("openai-compat backend failed", "openai-compat"),
        ("an openai compatible server failed", "openai-compat"),
        ("azure openai deployment failed", "azure"),
        ("azure-openai: failure", "azure"),
        ("openrouter: upstream error", "openrouter"),
        ("aws bedrock throttled", "bedrock"),
        ("bedrock runtime error", "bedrock"),
        ("vercel ai gateway error", "vercel"),
        ("vercel error", "vercel"),
        ("claude is unhappy", "anthropic"),
        ("gemini said no", "google"),
        ("vertex ai error", "google"),
        ("https://api.openai.com/v1/responses failed", "openai"),
        ("something else entirely", ""),
    ],
)
def test_provider_detection_order(text: str, provider: str) -> None:
    assert classify_text(text).provider == provider


def test_provider_hint_beats_detected_provider() -> None:
    assert classify_text("anthropic overloaded", provider="openai-compatible").provider == "openai-compat"


def test_with_provider_replaces_the_provider_and_regenerates_messages() -> None:
    classified = classify_text("openai received status 429 from upstream")
    assert classified.provider == "openai"
    enriched = with_provider(classified, "azure openai")
    assert enriched == build_error(ErrorKind.RATE_LIMIT, provider="azure", status_code=429, retryable=True)
    assert enriched.message == "Azure OpenAI is rate limiting requests (HTTP 429)."
    assert enriched.retry_message == "Azure OpenAI is rate limiting requests."


def test_with_provider_adds_a_provider_when_unknown() -> None:
    classified = classify_text("received status 429 from upstream")
    assert classified.provider == ""
    enriched = with_provider(classified, "openai")
    assert (enriched.provider, enriched.message) == ("openai", "OpenAI is rate limiting requests (HTTP 429).")


def test_with_provider_preserves_retry_after_and_ignores_empty_hints() -> None:
    classified = classify_text("upstream failed", status_code=429, headers={"Retry-After": "30"})
    assert classified.retry_after == 30.0
    enriched = with_provider(classified, "openai")
    assert (enriched.retry_after, enriched.status_code, enriched.kind) == (30.0, 429, ErrorKind.RATE_LIMIT)
    assert enriched.message == "OpenAI is rate limiting requests (HTTP 429)."
    assert with_provider(enriched, "  ") is enriched
    assert with_provider(enriched, "OpenAI") is enriched


def test_unknown_provider_keys_stay_but_use_the_generic_subject() -> None:
    ce = classify_text("status 429", provider="Groq")
    assert (ce.provider, ce.message) == ("groq", "The AI provider is rate limiting requests (HTTP 429).")


def test_empty_text_is_an_unexpected_generic_failure() -> None:
    ce = classify_text("   ")
    assert _summary(ce) == ("The chat request failed unexpectedly.", ErrorKind.GENERIC, "", False, 0)
    assert ce.detail == ""


def test_quota_on_a_429_alone_is_a_rate_limit_but_billing_is_not() -> None:
    gemini = classify_text("status 429: quota exceeded for requests per minute")
    assert (gemini.kind, gemini.retryable) == (ErrorKind.RATE_LIMIT, True)
    billing = classify_text("status 429: insufficient_quota")
    assert (billing.kind, billing.retryable, billing.code) == (ErrorKind.AUTH, False, "insufficient_quota")


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("maximum context length is 8192 tokens", "context_length_exceeded"),
        ("prompt is too long: 208656 tokens > 200000 maximum", "context_length_exceeded"),
        ("model_not_found", "model_not_found"),
        ("malformed config", None),
        ("billing hard limit", "insufficient_quota"),
        ("unauthorized", None),
        ("previous response with id 'resp_1' not found.", "previous_response_not_found"),
        ("stream closed before message_stop", "stream_truncated"),
    ],
)
def test_codes_inferred_from_text(text: str, code: str | None) -> None:
    assert classify_text(text).code == code


def test_stream_closed_wording_is_a_retryable_timeout_with_its_own_message() -> None:
    ce = classify_text("responses stream closed before terminal event", provider="openai")
    assert (ce.kind, ce.retryable) == (ErrorKind.TIMEOUT, True)
    assert ce.message == "OpenAI stream closed unexpectedly before the response completed."
