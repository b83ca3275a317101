"""Faults answered as HTTP errors: the SDK's exception, status, body and headers, per fault model."""

from __future__ import annotations

from typing import Any

import httpx
import openai
import pytest

from fake_providers.testing import FakeProviders

CHAT = "/openai/v1/chat/completions"
MESSAGES: Any = [{"role": "user", "content": "hello"}]  # 2 input tokens


def detail(message: str, type_: str, code: str | None = None, param: str | None = None) -> dict[str, Any]:
    return {"message": message, "type": type_, "param": param, "code": code}


HTTP_FAULTS: list[tuple[str, type[openai.APIStatusError], int, dict[str, Any]]] = [
    (
        "fault-429",
        openai.RateLimitError,
        429,
        detail(
            "Rate limit reached for fault-429 in organization org-fakeproviders on requests per min (RPM): Limit "
            "5000, Used 5000, Requested 1. Please try again in 1s. Visit https://platform.openai.com/account/"
            "rate-limits to learn more.",
            "requests",
            "rate_limit_exceeded",
        ),
    ),
    (
        "fault-429-quota",
        openai.RateLimitError,
        429,
        detail(
            "You exceeded your current quota, please check your plan and billing details. For more information on "
            "this error, read the docs: https://platform.openai.com/docs/guides/error-codes/api-errors.",
            "insufficient_quota",
            "insufficient_quota",
        ),
    ),
    (
        "fault-401",
        openai.AuthenticationError,
        401,
        detail(
            "Incorrect API key provided: sk-test***********abcd. You can find your API key at "
            "https://platform.openai.com/account/api-keys.",
            "invalid_request_error",
            "invalid_api_key",
        ),
    ),
    (
        "fault-403",
        openai.PermissionDeniedError,
        403,
        detail(
            "Country, region, or territory not supported",
            "request_forbidden",
            "unsupported_country_region_territory",
        ),
    ),
    (
        "fault-404",
        openai.NotFoundError,
        404,
        detail(
            "The model `fault-404` does not exist or you do not have access to it.",
            "invalid_request_error",
            "model_not_found",
        ),
    ),
    (
        "fault-context-length",
        openai.BadRequestError,
        400,
        detail(
            "This model's maximum context length is 4097 tokens. However, your messages resulted in 4099 tokens. "
            "Please reduce the length of the messages.",
            "invalid_request_error",
            "context_length_exceeded",
            "messages",
        ),
    ),
    (
        "fault-500",
        openai.InternalServerError,
        500,
        detail("The server had an error while processing your request. Sorry about that!", "server_error"),
    ),
    (
        "fault-503",
        openai.InternalServerError,
        503,
        detail(
            "Our servers are currently overloaded. Please try again later.",
            "service_unavailable_error",
            "server_is_overloaded",
        ),
    ),
    ("fault-529", openai.InternalServerError, 529, detail("Overloaded", "overloaded_error")),
    (
        "fault-hidden-429",
        openai.InternalServerError,
        500,
        detail(
            "Upstream request failed: 429 Too Many Requests (rate limit exceeded), please retry later.",
            "server_error",
        ),
    ),
]


@pytest.mark.parametrize(
    ("model", "exception", "status", "body"), HTTP_FAULTS, ids=[case[0] for case in HTTP_FAULTS]
)
def test_http_fault_through_the_sdk(
    client: openai.OpenAI,
    model: str,
    exception: type[openai.APIStatusError],
    status: int,
    body: dict[str, Any],
) -> None:
    with pytest.raises(exception) as raised:
        client.chat.completions.create(model=model, messages=MESSAGES)
    error = raised.value
    assert type(error) is exception
    assert error.status_code == status
    assert error.body == body
    assert error.code == body["code"]
    headers = error.response.headers
    assert error.request_id == headers["x-request-id"]
    assert headers["content-type"] == "application/json"
    assert headers.get("x-should-retry") == ("true" if status == 529 else None)
    if model == "fault-429":
        assert (headers["retry-after"], headers["retry-after-ms"]) == ("1", "1000")
        assert (headers["x-ratelimit-remaining-requests"], headers["x-ratelimit-reset-requests"]) == (
            "0",
            "1s",
        )
    else:
        assert "retry-after" not in headers
        assert "retry-after-ms" not in headers


def test_bad_gateway_is_cloudflares_body(http: httpx.Client) -> None:
    response = http.post(CHAT, json={"model": "fault-502", "messages": MESSAGES})
    assert response.status_code == 502
    assert (
        response.content
        == b'{"error":{"code":502,"message":"Bad gateway.","param":null,"type":"cf_bad_gateway"}}'
    )
    assert response.headers["x-request-id"].startswith("req_")


def test_http_faults_answer_streaming_requests_before_any_event(client: openai.OpenAI) -> None:
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(model="fault-429", messages=MESSAGES, stream=True)


@pytest.mark.parametrize("stream", [False, True])
def test_200_error_is_an_error_body_with_status_200(http: httpx.Client, stream: bool) -> None:
    response = http.post(CHAT, json={"model": "fault-200-error", "messages": MESSAGES, "stream": stream})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {
        "error": detail(
            "The server had an error while processing your request. Sorry about that!", "server_error"
        )
    }


def test_200_error_can_name_its_error(http: httpx.Client) -> None:
    response = http.post(CHAT, json={"model": "fault-200-error-529", "messages": MESSAGES})
    assert (response.status_code, response.json()) == (
        200,
        {"error": detail("Overloaded", "overloaded_error")},
    )


def test_sdk_retries_a_scripted_429_honouring_retry_after_ms(providers: FakeProviders) -> None:
    providers.script(
        [{"fault": "429", "headers": {"retry-after-ms": "1", "retry-after": "0"}}], model="gpt-4o-mini"
    )
    with openai.OpenAI(base_url=providers.openai_base_url, api_key="sk-test", max_retries=1) as sdk:
        completion = sdk.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert completion.choices[0].message.content == "You said: hello"
    attempts = providers.requests(path=CHAT)
    assert [entry.headers["x-stainless-retry-count"] for entry in attempts] == ["0", "1"]
