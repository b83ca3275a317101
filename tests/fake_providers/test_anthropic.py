"""The Anthropic Messages fake driven by the official SDK and raw HTTP: bodies, events, rules, faults."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import msgspec
import pytest

from fake_providers.testing import FakeProviders, parse_sse

MESSAGES = "/anthropic/v1/messages"
HEADERS = {"x-api-key": "sk-ant-test", "anthropic-version": "2023-06-01"}
MODEL = "claude-haiku-4-5"
WEATHER: Any = {
    "name": "get_weather",
    "description": "Weather in a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
HELLO: Any = [{"role": "user", "content": "hello there"}]
ID22 = "[A-Za-z0-9]{22}"


@pytest.fixture
def claude(providers: FakeProviders) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(
        base_url=providers.anthropic_base_url, api_key="sk-ant-test", max_retries=0
    ) as sdk:
        yield sdk


def post(http: httpx.Client, body: dict[str, Any], headers: dict[str, str] | None = None) -> httpx.Response:
    return http.post(MESSAGES, json=body, headers=HEADERS if headers is None else headers)


def invalid(message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": "invalid_request_error", "message": message}}


def without_request_id(body: dict[str, Any]) -> dict[str, Any]:
    assert re.fullmatch("req_011C" + ID22, body.pop("request_id"))
    return body


def test_message_body_and_headers(http: httpx.Client) -> None:
    response = post(http, {"model": MODEL, "max_tokens": 100, "messages": HELLO})
    assert response.status_code == 200
    body = response.json()
    assert re.fullmatch("msg_01" + ID22, body["id"])
    assert body == {
        "id": body["id"],
        "type": "message",
        "role": "assistant",
        "model": MODEL,
        "content": [{"type": "text", "text": "You said: hello there"}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {
            "input_tokens": 3,
            "output_tokens": 6,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0},
            "service_tier": "standard",
        },
    }
    headers = response.headers
    assert re.fullmatch("req_011C" + ID22, headers["request-id"])
    assert headers["anthropic-ratelimit-requests-limit"] == "4000"
    assert headers["anthropic-ratelimit-requests-remaining"] == "3999"
    assert headers["anthropic-ratelimit-requests-reset"] == "2025-01-01T00:01:00Z"  # seeded clock
    assert headers["anthropic-ratelimit-input-tokens-remaining"] == str(2_000_000 - 3)
    assert (
        "anthropic-ratelimit-tokens-limit" in headers and "anthropic-ratelimit-output-tokens-limit" in headers
    )


def test_sdk_round_trip(claude: anthropic.Anthropic) -> None:
    message = claude.messages.create(model=MODEL, max_tokens=50, system="Be brief.", messages=HELLO)
    assert [block.type for block in message.content] == ["text"]
    assert message.content[0].text == "You said: hello there"  # type: ignore[union-attr]
    assert message.usage.input_tokens == 3 + 3


def test_text_stream_event_order(http: httpx.Client) -> None:
    response = post(http, {"model": MODEL, "max_tokens": 100, "messages": HELLO, "stream": True})
    assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
    events = parse_sse(response.text)
    names = [event.event for event in events]
    assert names == [
        "message_start",
        "content_block_start",
        "ping",
        "content_block_delta",
        "content_block_delta",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    payloads = [event.json() for event in events]
    assert [payload["type"] for payload in payloads] == names
    assert "[DONE]" not in response.text
    start = payloads[0]["message"]
    assert (
        start["content"],
        start["stop_reason"],
        start["usage"]["input_tokens"],
        start["usage"]["output_tokens"],
    ) == (
        [],
        None,
        3,
        1,
    )
    assert payloads[1] == {
        "type": "content_block_start",
        "index": 0,
        "content_block": {"type": "text", "text": ""},
    }
    assert [payload["delta"] for payload in payloads[3:7]] == [
        {"type": "text_delta", "text": piece} for piece in ("You ", "said: ", "hello ", "there")
    ]
    assert payloads[7] == {"type": "content_block_stop", "index": 0}
    assert payloads[8] == {
        "type": "message_delta",
        "delta": {"stop_reason": "end_turn", "stop_sequence": None},
        "usage": {
            "input_tokens": 3,
            "output_tokens": 6,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
        },
    }
    assert payloads[9] == {"type": "message_stop"}


def test_forced_tool_stream_starts_with_an_empty_json_fragment(http: httpx.Client) -> None:
    body = {
        "model": MODEL,
        "max_tokens": 100,
        "messages": HELLO,
        "tools": [WEATHER],
        "tool_choice": {"type": "tool", "name": "get_weather"},
        "stream": True,
    }
    payloads = [event.json() for event in parse_sse(post(http, body).text)]
    block = payloads[1]["content_block"]
    assert re.fullmatch("toolu_01" + ID22, block["id"])
    assert block == {"type": "tool_use", "id": block["id"], "name": "get_weather", "input": {}}
    assert payloads[2] == {"type": "ping"}
    fragments = [
        payload["delta"]["partial_json"] for payload in payloads if payload["type"] == "content_block_delta"
    ]
    assert fragments == ["", '{"city":"example', '"}']
    assert payloads[-2]["delta"]["stop_reason"] == "tool_use"


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ({"type": "auto"}, ["text"]),
        ({"type": "none"}, ["text"]),
        ({"type": "any"}, ["tool_use"]),
        ({"type": "tool", "name": "get_weather"}, ["tool_use"]),
    ],
)
def test_tool_choice(claude: anthropic.Anthropic, choice: Any, expected: list[str]) -> None:
    message = claude.messages.create(
        model=MODEL, max_tokens=100, messages=HELLO, tools=[WEATHER], tool_choice=choice
    )
    assert [block.type for block in message.content] == expected
    if expected == ["tool_use"]:
        assert message.stop_reason == "tool_use"
        assert message.content[0].input == {"city": "example"}  # type: ignore[union-attr]


def test_multi_turn_with_parallel_tool_use(providers: FakeProviders, claude: anthropic.Anthropic) -> None:
    providers.script(
        [
            {
                "reply": {
                    "text": "Checking both.",
                    "tool_calls": [
                        {"name": "get_weather", "arguments": {"city": "Oslo"}},
                        {"name": "get_weather", "arguments": {"city": "Rome"}},
                    ],
                }
            }
        ],
        model=MODEL,
    )
    history: Any = [{"role": "user", "content": "Weather in Oslo and Rome?"}]
    first = claude.messages.create(model=MODEL, max_tokens=200, messages=history, tools=[WEATHER])
    assert [block.type for block in first.content] == ["text", "tool_use", "tool_use"]
    uses = [block for block in first.content if block.type == "tool_use"]
    assert [use.input for use in uses] == [{"city": "Oslo"}, {"city": "Rome"}]
    assert all(re.fullmatch("toolu_01" + ID22, use.id) for use in uses)
    history.append(
        {"role": "assistant", "content": [block.model_dump(exclude_none=True) for block in first.content]}
    )
    history.append(
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": uses[0].id, "content": "cold"},
                {
                    "type": "tool_result",
                    "tool_use_id": uses[1].id,
                    "content": [{"type": "text", "text": "warm"}],
                },
            ],
        }
    )
    second = claude.messages.create(model=MODEL, max_tokens=200, messages=history, tools=[WEATHER])
    assert second.content[0].text == "Tool results: get_weather returned cold; get_weather returned warm"  # type: ignore[union-attr]
    assert second.stop_reason == "end_turn"
    history.append({"role": "assistant", "content": second.content[0].text})  # type: ignore[union-attr]
    history.append({"role": "user", "content": "Thanks"})
    third = claude.messages.create(model=MODEL, max_tokens=200, messages=history, tools=[WEATHER])
    assert third.content[0].text == "You said: Thanks"  # type: ignore[union-attr]
    assert third.usage.input_tokens > second.usage.input_tokens
    sent = providers.requests(path=MESSAGES)
    assert len(sent) == 3 and sent[1].body["messages"][2]["content"][0]["tool_use_id"] == uses[0].id


def tool_turns(result_ids: list[str]) -> Any:
    return [
        {"role": "user", "content": "weather"},
        {
            "role": "assistant",
            "content": [
                {"type": "tool_use", "id": "toolu_a", "name": "get_weather", "input": {"city": "Oslo"}},
                {"type": "tool_use", "id": "toolu_b", "name": "get_weather", "input": {"city": "Rome"}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": tool_id, "content": "ok"} for tool_id in result_ids
            ],
        },
    ]


@pytest.mark.parametrize(
    ("messages", "message"),
    [
        (
            tool_turns(["toolu_a"]),
            "messages.1: `tool_use` ids were found without `tool_result` blocks immediately after: toolu_b. Each "
            "`tool_use` block must have a corresponding `tool_result` block in the next message.",
        ),
        (
            tool_turns(["toolu_a", "toolu_b", "toolu_c"]),
            "messages.2.content.2: unexpected `tool_use_id` found in `tool_result` blocks: toolu_c. Each "
            "`tool_result` block must have a corresponding `tool_use` block in the previous message.",
        ),
        (
            [
                {"role": "user", "content": "x"},
                {
                    "role": "assistant",
                    "content": [{"type": "tool_use", "id": "toolu_a", "name": "f", "input": "x"}],
                },
            ],
            "messages.1.content.0.tool_use.input: Input should be a valid dictionary",
        ),
        (
            [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}],
            'messages: roles must alternate between "user" and "assistant", but found multiple "user" roles in a row',
        ),
    ],
)
def test_tool_pairing_and_alternation_errors(http: httpx.Client, messages: Any, message: str) -> None:
    response = post(http, {"model": MODEL, "max_tokens": 10, "messages": messages, "tools": [WEATHER]})
    assert response.status_code == 400
    assert without_request_id(response.json()) == invalid(message)


def test_sdk_raises_bad_request_for_pairing(claude: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.BadRequestError) as caught:
        claude.messages.create(model=MODEL, max_tokens=10, messages=tool_turns(["toolu_a"]), tools=[WEATHER])
    assert "toolu_b" in str(caught.value)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"model": MODEL, "messages": HELLO}, "max_tokens: Field required"),
        ({"max_tokens": 5, "messages": HELLO}, "model: Field required"),
        ({"model": MODEL, "max_tokens": 5}, "messages: Field required"),
        (
            {
                "model": MODEL,
                "max_tokens": 5,
                "messages": HELLO,
                "tools": [{**WEATHER, "input_schema": {"type": "string"}}],
            },
            "tools.0.custom.input_schema.type: Input should be 'object'",
        ),
        (
            {
                "model": MODEL,
                "max_tokens": 5,
                "messages": HELLO,
                "tools": [
                    {**WEATHER, "input_schema": {"type": "object", "properties": {"a": {"type": "bogus"}}}}
                ],
            },
            "tools.0.custom.input_schema: JSON schema is invalid. It must match JSON Schema draft 2020-12 "
            "(https://json-schema.org/draft/2020-12). Learn more about tool use at "
            "https://docs.claude.com/en/docs/tool-use.",
        ),
        (
            {"model": MODEL, "max_tokens": 100000, "messages": HELLO},
            f"max_tokens: 100000 > 64000, which is the maximum allowed number of output tokens for {MODEL}",
        ),
    ],
)
def test_request_validation(http: httpx.Client, body: Any, message: str) -> None:
    response = post(http, body)
    assert response.status_code == 400
    assert without_request_id(response.json()) == invalid(message)


def test_api_key_and_version_are_required(http: httpx.Client) -> None:
    body = {"model": MODEL, "max_tokens": 5, "messages": HELLO}
    missing_key = post(http, body, headers={"anthropic-version": "2023-06-01"})
    assert missing_key.status_code == 401
    assert without_request_id(missing_key.json()) == {
        "type": "error",
        "error": {"type": "authentication_error", "message": "x-api-key header is required"},
    }
    missing_version = post(http, body, headers={"x-api-key": "k"})
    assert missing_version.status_code == 400
    assert without_request_id(missing_version.json()) == invalid("anthropic-version: header is required")


def test_prompt_too_long(http: httpx.Client) -> None:
    big = "x" * (4 * 200_001)
    response = post(http, {"model": MODEL, "max_tokens": 5, "messages": [{"role": "user", "content": big}]})
    assert response.status_code == 400
    assert without_request_id(response.json()) == invalid(
        "prompt is too long: 200001 tokens > 200000 maximum"
    )


FAULTS = [
    ("fault-429", 429, anthropic.RateLimitError, "rate_limit_error"),
    ("fault-401", 401, anthropic.AuthenticationError, "authentication_error"),
    ("fault-403", 403, anthropic.PermissionDeniedError, "permission_error"),
    ("fault-404", 404, anthropic.NotFoundError, "not_found_error"),
    ("fault-context-length", 400, anthropic.BadRequestError, "invalid_request_error"),
    ("fault-500", 500, anthropic.InternalServerError, "api_error"),
    ("fault-529", 529, anthropic.OverloadedError, "overloaded_error"),
]


@pytest.mark.parametrize(("model", "status", "exception", "kind"), FAULTS)
def test_http_faults(
    claude: anthropic.Anthropic, model: str, status: int, exception: type[Exception], kind: str
) -> None:
    with pytest.raises(anthropic.APIStatusError) as caught:
        claude.messages.create(model=model, max_tokens=5, messages=HELLO)
    assert isinstance(caught.value, exception)
    assert caught.value.status_code == status
    body = caught.value.response.json()
    assert body["type"] == "error" and body["error"]["type"] == kind
    assert body["request_id"] == caught.value.response.headers["request-id"]


def test_fault_bodies_and_retry_headers(http: httpx.Client) -> None:
    limited = post(http, {"model": "fault-429", "max_tokens": 5, "messages": HELLO})
    assert limited.headers["retry-after"] == "1"
    assert limited.headers["anthropic-ratelimit-requests-remaining"] == "0"
    overloaded = post(http, {"model": "fault-529", "max_tokens": 5, "messages": HELLO})
    assert overloaded.headers["x-should-retry"] == "true"
    assert without_request_id(overloaded.json()) == {
        "type": "error",
        "error": {"type": "overloaded_error", "message": "Overloaded"},
    }
    too_long = post(http, {"model": "fault-context-length", "max_tokens": 5, "messages": HELLO})
    assert without_request_id(too_long.json()) == invalid(
        "prompt is too long: 200003 tokens > 200000 maximum"
    )
    missing = post(http, {"model": "fault-404", "max_tokens": 5, "messages": HELLO})
    assert without_request_id(missing.json())["error"] == {
        "type": "not_found_error",
        "message": "model: fault-404",
    }


def test_inband_overloaded_error_after_message_start(http: httpx.Client) -> None:
    response = post(http, {"model": "fault-inband", "max_tokens": 5, "messages": HELLO, "stream": True})
    assert response.status_code == 200
    events = parse_sse(response.text)
    assert [event.event for event in events] == ["message_start", "error"]
    assert events[1].json() == {
        "type": "error",
        "error": {"type": "overloaded_error", "message": "Overloaded"},
    }


def test_inband_error_raises_in_the_sdk(claude: anthropic.Anthropic) -> None:
    with (
        pytest.raises(anthropic.APIStatusError, match="Overloaded"),
        claude.messages.stream(model="fault-inband", max_tokens=5, messages=HELLO) as stream,
    ):
        for _ in stream:
            pass


def test_cut_stream(providers: FakeProviders) -> None:
    lines: list[str] = []
    with (
        httpx.Client(base_url=providers.base_url, timeout=5.0) as http,
        http.stream(
            "POST",
            MESSAGES,
            headers=HEADERS,
            json={"model": "fault-cut", "max_tokens": 5, "messages": HELLO, "stream": True},
        ) as response,
        pytest.raises(httpx.RemoteProtocolError),
    ):
        lines.extend(line for line in response.iter_lines() if line)
    assert [line for line in lines if line.startswith("event:")] == [
        "event: message_start",
        "event: content_block_start",
    ]


def test_malformed_stream(http: httpx.Client) -> None:
    events = parse_sse(
        post(http, {"model": "fault-malformed", "max_tokens": 5, "messages": HELLO, "stream": True}).text
    )
    assert events[-1].event == "message_stop"
    with pytest.raises(msgspec.DecodeError):
        events[2].json()


def test_models(claude: anthropic.Anthropic, http: httpx.Client) -> None:
    listed = claude.models.list()
    assert [model.id for model in listed.data] == ["claude-haiku-4-5", "claude-sonnet-4-5"]
    assert all(model.max_input_tokens == 200000 and model.max_tokens == 64000 for model in listed.data)
    raw = http.get("/anthropic/v1/models", headers=HEADERS, params={"limit": 1}).json()
    assert raw["data"][0] == {
        "type": "model",
        "id": "claude-haiku-4-5",
        "display_name": "Claude Haiku 4.5",
        "created_at": "2025-10-15T00:00:00Z",
        "max_input_tokens": 200000,
        "max_tokens": 64000,
        "lifecycle": "active",
    }
    assert (raw["first_id"], raw["last_id"], raw["has_more"]) == (
        "claude-haiku-4-5",
        "claude-haiku-4-5",
        True,
    )
    assert claude.models.retrieve("claude-sonnet-4-5").display_name == "Claude Sonnet 4.5"
    with pytest.raises(anthropic.NotFoundError):
        claude.models.retrieve("claude-nope")
