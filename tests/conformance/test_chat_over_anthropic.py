"""OpenAI Chat Completions clients talking to Claude through the gateway (the fake Anthropic
Messages API behind it): what the client gets, and the exact Messages request that was sent."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import openai
import pytest

from fake_providers.testing import FakeProviders
from gateway.testing import add_anthropic
from tests.conftest import GATEWAY_KEY, AutoAdvance, GatewayFactory, RunningGateway, base_config

MESSAGES = "/anthropic/v1/messages"
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
TIME = {
    "type": "function",
    "function": {
        "name": "get_time",
        "description": "Local time in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": None},
    },
}


@pytest.fixture
def claude(gateway_factory: GatewayFactory, fake: FakeProviders, redis_url: str) -> RunningGateway:
    config = add_anthropic(
        base_config(fake, redis_url), fake, retry={"max_attempts": 3, "initial_delay": 0.0, "max_delay": 0.0}
    )
    return gateway_factory(config)


def sent(fake: FakeProviders) -> list[dict[str, Any]]:
    return [e.body for e in fake.requests(path=MESSAGES)]


def test_text_reply_and_the_messages_request(claude: RunningGateway, fake: FakeProviders) -> None:
    reply = claude.openai().chat.completions.create(
        model="claude",
        messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello there"}],
        temperature=0.3,
        top_p=0.9,
        stop=["END"],
        user="user-42",
        seed=7,  # no Anthropic counterpart: dropped
    )
    assert reply.choices[0].message.content == "You said: Hello there"
    assert reply.choices[0].finish_reason == "stop"
    assert reply.usage is not None and reply.usage.prompt_tokens > 0 and reply.usage.completion_tokens > 0

    entry = fake.requests(path=MESSAGES)[0]
    assert entry.headers["x-api-key"] == "sk-ant-upstream"
    assert entry.headers["anthropic-version"] == "2023-06-01"
    assert "authorization" not in entry.headers
    assert entry.body == {
        "model": "claude-haiku-4-5",
        "max_tokens": 4096,  # Anthropic requires it; the client sent none
        "system": "Be brief.",
        "messages": [{"role": "user", "content": [{"type": "text", "text": "Hello there"}]}],
        "stop_sequences": ["END"],
        "temperature": 0.3,
        "top_p": 0.9,
        "metadata": {"user_id": "user-42"},
    }


def test_multi_turn_keeps_alternation(claude: RunningGateway, fake: FakeProviders) -> None:
    reply = claude.openai().chat.completions.create(
        model="claude",
        messages=[
            {"role": "developer", "content": "Answer in English."},
            {"role": "user", "content": "First"},
            {"role": "assistant", "content": "You said: First"},
            {"role": "user", "content": "Second"},
            {"role": "user", "content": "Third"},
        ],
    )
    assert reply.choices[0].message.content == "You said: Second Third"
    body = sent(fake)[0]
    assert body["system"] == "Answer in English."
    assert [m["role"] for m in body["messages"]] == ["user", "assistant", "user"]


def test_parallel_tool_calls_and_their_results(claude: RunningGateway, fake: FakeProviders) -> None:
    fake.script(
        [
            {
                "reply": {
                    "tool_calls": [
                        {"name": "get_weather", "arguments": {"city": "Paris"}},
                        {"name": "get_time", "arguments": {"city": "Tokyo"}},
                    ]
                }
            }
        ],
        model="claude-haiku-4-5",
    )
    client = claude.openai()
    messages: list[Any] = [{"role": "user", "content": "Weather in Paris and time in Tokyo?"}]
    first = client.chat.completions.create(model="claude", messages=messages, tools=[WEATHER, TIME])
    calls = first.choices[0].message.tool_calls
    assert first.choices[0].finish_reason == "tool_calls"
    assert calls is not None
    assert [(c.function.name, json.loads(c.function.arguments)) for c in calls] == [
        ("get_weather", {"city": "Paris"}),
        ("get_time", {"city": "Tokyo"}),
    ]
    # The broken schema (required: null) was repaired for Anthropic before it was sent.
    tools = sent(fake)[0]["tools"]
    assert [t["name"] for t in tools] == ["get_weather", "get_time"]
    assert tools[1]["input_schema"] == {"type": "object", "properties": {"city": {"type": "string"}}}

    messages.append(first.choices[0].message.model_dump(exclude_none=True))
    messages += [
        {"role": "tool", "tool_call_id": calls[0].id, "content": "18C"},
        {"role": "tool", "tool_call_id": calls[1].id, "content": "21:00"},
    ]
    second = client.chat.completions.create(model="claude", messages=messages, tools=[WEATHER, TIME])
    assert (
        second.choices[0].message.content == "Tool results: get_weather returned 18C; get_time returned 21:00"
    )
    body = sent(fake)[1]
    assistant, results = body["messages"][1], body["messages"][2]
    assert [b["type"] for b in assistant["content"]] == ["tool_use", "tool_use"]
    assert results["role"] == "user"
    assert [(b["type"], b["tool_use_id"]) for b in results["content"]] == [
        ("tool_result", assistant["content"][0]["id"]),
        ("tool_result", assistant["content"][1]["id"]),
    ]


def test_streaming_text_usage_and_done(claude: RunningGateway, fake: FakeProviders) -> None:
    chunks = list(
        claude.openai().chat.completions.create(
            model="claude",
            messages=[{"role": "user", "content": "Hello there"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "You said: Hello there"
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == [
        "stop"
    ]
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0
    assert sent(fake)[0]["stream"] is True


def test_streaming_parallel_tool_calls_have_stable_indexes(
    claude: RunningGateway, fake: FakeProviders
) -> None:
    fake.script(
        [
            {
                "reply": {
                    "tool_calls": [
                        {"name": "get_weather", "arguments": {"city": "Oslo"}},
                        {"name": "get_time"},
                    ]
                }
            }
        ],
        model="claude-haiku-4-5",
    )
    chunks = list(
        claude.openai().chat.completions.create(
            model="claude", messages=[{"role": "user", "content": "both"}], tools=[WEATHER, TIME], stream=True
        )
    )
    by_index: dict[int, str] = {}
    names: dict[int, str] = {}
    for chunk in chunks:
        for delta in (chunk.choices[0].delta.tool_calls or []) if chunk.choices else []:
            if delta.function and delta.function.name:
                names[delta.index] = delta.function.name
            by_index[delta.index] = by_index.get(delta.index, "") + (
                (delta.function and delta.function.arguments) or ""
            )
    assert names == {0: "get_weather", 1: "get_time"}
    assert json.loads(by_index[0]) == {"city": "Oslo"}
    assert "city" in json.loads(by_index[1])


# Every fault of the fakes' catalogue in Anthropic's dialect -> what the OpenAI client gets:
# (status, code, kind, upstream attempts, x-should-retry)
FAULTS: dict[str, tuple[int, str, str, int, str]] = {
    "429": (429, "rate_limit_exceeded", "rate_limit", 3, "true"),
    "429-quota": (429, "insufficient_quota", "auth", 1, "false"),  # 400 "credit balance is too low"
    "401": (502, "upstream_authentication_failed", "auth", 1, "false"),
    "403": (502, "upstream_authentication_failed", "auth", 1, "false"),
    "404": (502, "upstream_model_not_found", "config", 1, "false"),
    "context-length": (400, "context_length_exceeded", "config", 1, "false"),
    "500": (502, "upstream_error", "generic", 3, "true"),
    "502": (503, "upstream_unavailable", "timeout", 3, "true"),
    "503": (503, "upstream_unavailable", "timeout", 3, "true"),
    "529": (503, "server_is_overloaded", "overloaded", 3, "true"),
    "hidden-429": (429, "rate_limit_exceeded", "rate_limit", 3, "true"),
    "200-error": (503, "server_is_overloaded", "overloaded", 3, "true"),
    "200-error-context-length": (400, "context_length_exceeded", "config", 1, "false"),
    "reset": (504, "upstream_timeout", "timeout", 3, "true"),
    # `event: error` after message_start (a 200 carrying the error body without stream).
    "inband": (503, "server_is_overloaded", "overloaded", 3, "true"),
    "inband-429": (429, "rate_limit_exceeded", "rate_limit", 3, "true"),
    "inband-401": (502, "upstream_authentication_failed", "auth", 1, "false"),
    "inband-context-length": (400, "context_length_exceeded", "config", 1, "false"),
    "malformed-1": (502, "upstream_error", "generic", 3, "true"),
    "cut-1": (504, "upstream_timeout", "timeout", 3, "true"),
}


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize("fault", list(FAULTS))
def test_anthropic_errors_reach_the_client_classified(
    claude: RunningGateway, fake: FakeProviders, fault: str, stream: bool
) -> None:
    status, code, kind, attempts, should_retry = FAULTS[fault]
    fake.script([{"fault": fault, "times": None}], model="claude-haiku-4-5")
    with AutoAdvance(claude.clock), httpx.Client(timeout=30) as http:
        response = http.post(
            claude.base_url + "/chat/completions",
            headers={"authorization": f"Bearer {GATEWAY_KEY}"},
            json={"model": "claude", "messages": [{"role": "user", "content": "hi"}], "stream": stream},
        )
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert (error["code"], error["kind"], error["provider"]) == (code, kind, "anthropic")
    assert error["retryable"] is (should_retry == "true")
    assert response.headers["x-should-retry"] == should_retry
    assert len(sent(fake)) == attempts
    assert response.headers["x-gateway-attempts"] == str(attempts)
    if fault == "429":
        assert response.headers["retry-after"] == "1"
    if kind == "auth":
        assert error["message"].startswith("Authentication with Anthropic failed.")
    if fault == "context-length":
        assert error["message"].startswith("prompt is too long:")


@pytest.mark.parametrize("fault", ["429", "529", "inband", "reset", "401"])
def test_anthropic_faults_fail_over_to_an_openai_fallback(
    gateway_factory: GatewayFactory, fake: FakeProviders, redis_url: str, fault: str
) -> None:
    config = add_anthropic(
        base_config(fake, redis_url),
        fake,
        retry={"max_attempts": 2, "initial_delay": 0.0, "max_delay": 0.0},
        model_fields={"fallbacks": ["gpt-4o-mini"]},
    )
    gw = gateway_factory(config)
    fake.script([{"fault": fault, "times": None}], model="claude-haiku-4-5")
    with AutoAdvance(gw.clock):
        chunks = list(
            gw.openai().chat.completions.create(
                model="claude", messages=[{"role": "user", "content": "hi"}], stream=True
            )
        )
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "You said: hi"
    retried = 1 if fault == "401" else 2
    assert len(sent(fake)) == retried
    assert [e.model for e in fake.requests(path="/openai/v1/chat/completions")] == ["gpt-4o-mini"]


def test_inband_overload_before_content_is_retried(claude: RunningGateway, fake: FakeProviders) -> None:
    fake.script([{"fault": "inband", "times": 1}], model="claude-haiku-4-5")
    with AutoAdvance(claude.clock):
        chunks = list(
            claude.openai().chat.completions.create(
                model="claude", messages=[{"role": "user", "content": "hi"}], stream=True
            )
        )
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "You said: hi"
    assert len(sent(fake)) == 2


def test_cut_after_commit_is_an_inband_error(claude: RunningGateway, fake: FakeProviders) -> None:
    fake.script([{"fault": "cut-4", "times": None}], model="claude-haiku-4-5")
    with pytest.raises(openai.APIError) as info:
        list(
            claude.openai().chat.completions.create(
                model="claude", messages=[{"role": "user", "content": "Hello there friend"}], stream=True
            )
        )
    assert info.value.code == "stream_truncated"
    assert len(sent(fake)) == 1


def test_beta_headers_and_version_from_config(
    gateway_factory: GatewayFactory, fake: FakeProviders, redis_url: str
) -> None:
    config = add_anthropic(
        base_config(fake, redis_url),
        fake,
        anthropic_version="2023-06-01",
        anthropic_beta=["prompt-caching-2024-07-31", "token-efficient-tools-2025-02-19"],
    )
    gw = gateway_factory(config)
    gw.openai().chat.completions.create(model="claude", messages=[{"role": "user", "content": "hi"}])
    headers = fake.requests(path=MESSAGES)[0].headers
    assert headers["anthropic-beta"] == "prompt-caching-2024-07-31,token-efficient-tools-2025-02-19"
    assert (headers["anthropic-version"], headers["x-api-key"]) == ("2023-06-01", "sk-ant-upstream")


PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="


def test_images_become_image_blocks(claude: RunningGateway, fake: FakeProviders) -> None:
    reply = claude.openai().chat.completions.create(
        model="claude",
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is in these?"},
                    {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
                    {
                        "type": "image_url",
                        "image_url": {"url": "https://example.com/cat.jpg", "detail": "low"},
                    },
                ],
            }
        ],
    )
    assert reply.choices[0].message.content == "You said: What is in these?"
    assert sent(fake)[0]["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is in these?"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
                {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
            ],
        }
    ]


def test_an_image_the_gateway_cannot_send_is_the_clients_400(
    claude: RunningGateway, fake: FakeProviders
) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        claude.openai().chat.completions.create(
            model="claude",
            messages=[
                {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "ftp://x/y.png"}}]}
            ],
        )
    assert info.value.body["param"] == "messages[0].content[0]"  # type: ignore[index]
    assert "data URL or an http(s) URL" in info.value.message
    assert sent(fake) == []


@pytest.mark.parametrize(
    ("tool_choice", "parallel", "sent_choice", "called"),
    [
        ("auto", None, {"type": "auto"}, []),
        ("none", None, {"type": "none"}, []),
        ("required", None, {"type": "any"}, ["get_weather"]),
        (
            {"type": "function", "function": {"name": "get_time"}},
            None,
            {"type": "tool", "name": "get_time"},
            ["get_time"],
        ),
        ("auto", False, {"type": "auto", "disable_parallel_tool_use": True}, []),
        (None, None, None, []),
    ],
    ids=["auto", "none", "required", "named", "no-parallel", "absent"],
)
def test_tool_choice(
    claude: RunningGateway,
    fake: FakeProviders,
    tool_choice: Any,
    parallel: bool | None,
    sent_choice: dict[str, Any] | None,
    called: list[str],
) -> None:
    extra: dict[str, Any] = {}
    if tool_choice is not None:
        extra["tool_choice"] = tool_choice
    if parallel is not None:
        extra["parallel_tool_calls"] = parallel
    reply = claude.openai().chat.completions.create(
        model="claude", messages=[{"role": "user", "content": "Oslo"}], tools=[WEATHER, TIME], **extra
    )
    body = sent(fake)[0]
    assert body.get("tool_choice") == sent_choice
    assert body["tools"] == [
        {
            "name": "get_weather",
            "description": "Weather for a city",
            "input_schema": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
        },
        {
            "name": "get_time",
            "description": "Local time in a city",
            "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    ]
    calls = reply.choices[0].message.tool_calls or []
    assert [c.function.name for c in calls] == called
    assert reply.choices[0].finish_reason == ("tool_calls" if called else "stop")
    for call in calls:
        assert call.id.startswith("toolu_") and json.loads(call.function.arguments).keys() == {"city"}


def test_tool_call_ids_are_sanitised_the_same_way_in_both_directions(
    claude: RunningGateway, fake: FakeProviders
) -> None:
    odd = ["call:1.a", "call/1.a", "call_1_a"]  # the first two would collide once sanitised
    messages: list[Any] = [
        {"role": "user", "content": "three lookups"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": i,
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'},
                }
                for i in odd
            ],
        },
        *({"role": "tool", "tool_call_id": i, "content": f"result {n}"} for n, i in enumerate(odd)),
    ]
    claude.openai().chat.completions.create(model="claude", messages=messages, tools=[WEATHER])
    assistant, results = sent(fake)[0]["messages"][1:]
    uses = [b["id"] for b in assistant["content"]]
    assert all(re.fullmatch(r"[a-zA-Z0-9_-]+", u) for u in uses)
    assert len(set(uses)) == 3
    assert uses[0] == "call_1_a"
    assert [b["tool_use_id"] for b in results["content"]] == uses
    assert [b["content"] for b in results["content"]] == ["result 0", "result 1", "result 2"]


def test_tool_history_without_tools_still_declares_them(claude: RunningGateway, fake: FakeProviders) -> None:
    messages: list[Any] = [
        {"role": "user", "content": "weather?"},
        {
            "role": "assistant",
            "content": "Let me check.",
            "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
    ]
    reply = claude.openai().chat.completions.create(model="claude", messages=messages)
    assert reply.choices[0].message.content == "Tool results: get_weather returned sunny"
    body = sent(fake)[0]
    assert body["tools"] == [{"name": "get_weather", "input_schema": {"type": "object"}}]
    assert body["tool_choice"] == {"type": "none"}
    assert body["messages"][1] == {
        "role": "assistant",
        "content": [
            {"type": "text", "text": "Let me check."},
            {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {}},
        ],
    }


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize(
    ("reply", "finish_reason"),
    [
        ({"text": "Done."}, "stop"),
        ({"text": "Cut short", "finish_reason": "length"}, "length"),
        ({"text": "No.", "finish_reason": "content_filter"}, "content_filter"),
        ({"tool_calls": [{"name": "get_weather", "arguments": {"city": "Rome"}}]}, "tool_calls"),
    ],
    ids=["end_turn", "max_tokens", "refusal", "tool_use"],
)
def test_stop_reasons_and_usage(
    claude: RunningGateway, fake: FakeProviders, reply: dict[str, Any], finish_reason: str, stream: bool
) -> None:
    fake.script(
        [{"reply": {**reply, "usage": {"input_tokens": 50, "output_tokens": 4}}}], model="claude-haiku-4-5"
    )
    client = claude.openai()
    messages = [{"role": "user", "content": "hi"}]
    if stream:
        chunks = list(
            client.chat.completions.create(
                model="claude",
                messages=messages,
                tools=[WEATHER],
                stream=True,
                stream_options={"include_usage": True},
            )
        )
        finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
        assert finishes == [finish_reason]
        usage = chunks[-1].usage
        assert chunks[-1].choices == []
    else:
        completion = client.chat.completions.create(model="claude", messages=messages, tools=[WEATHER])
        assert completion.choices[0].finish_reason == finish_reason
        usage = completion.usage
    assert usage is not None
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (50, 4, 54)
    assert usage.prompt_tokens_details is not None and usage.prompt_tokens_details.cached_tokens == 0


def test_max_completion_tokens_is_sent_and_a_cut_answer_is_length(
    claude: RunningGateway, fake: FakeProviders
) -> None:
    reply = claude.openai().chat.completions.create(
        model="claude",
        messages=[{"role": "user", "content": "one two three four five six"}],
        max_completion_tokens=3,
    )
    assert sent(fake)[0]["max_tokens"] == 3
    assert reply.choices[0].finish_reason == "length"
    assert reply.usage is not None and reply.usage.completion_tokens == 3


def test_streamed_tool_call_deltas_are_strict_client_safe(
    claude: RunningGateway, fake: FakeProviders
) -> None:
    """Per tool: one opening delta (id, type, name, arguments ""), then argument fragments only —
    never a repeated type/id/name, never an empty fragment, indexes 0 and 1 (not both 0)."""
    fake.script(
        [
            {
                "reply": {
                    "text": "Checking.",
                    "tool_calls": [
                        {
                            "name": "get_weather",
                            "arguments": {"city": "A much longer city name, to need fragments"},
                        },
                        {"name": "get_time", "arguments": {"city": "Lima"}},
                    ],
                }
            }
        ],
        model="claude-haiku-4-5",
    )
    with httpx.Client(timeout=30) as http:
        response = http.post(
            claude.base_url + "/chat/completions",
            headers={"authorization": f"Bearer {GATEWAY_KEY}"},
            json={
                "model": "claude",
                "messages": [{"role": "user", "content": "x"}],
                "tools": [WEATHER, TIME],
                "stream": True,
            },
        )
    data = [f.removeprefix("data: ") for f in response.text.split("\n\n") if f.startswith("data: ")]
    assert data[-1] == "[DONE]" and data.count("[DONE]") == 1
    chunks = [json.loads(d) for d in data[:-1]]
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks) == "Checking."
    opened: dict[int, dict[str, Any]] = {}
    fragments: dict[int, list[str]] = {}
    for chunk in chunks:
        for delta in chunk["choices"][0]["delta"].get("tool_calls") or []:
            index = delta["index"]
            if index not in opened:
                opened[index] = delta
                assert delta["type"] == "function" and delta["function"]["arguments"] == ""
                continue
            assert set(delta) == {"index", "function"} and set(delta["function"]) == {"arguments"}
            assert delta["function"]["arguments"] != ""
            fragments.setdefault(index, []).append(delta["function"]["arguments"])
    assert sorted(opened) == [0, 1]
    assert [opened[i]["function"]["name"] for i in (0, 1)] == ["get_weather", "get_time"]
    assert len(fragments[0]) > 1
    assert json.loads("".join(fragments[0])) == {"city": "A much longer city name, to need fragments"}
    assert json.loads("".join(fragments[1])) == {"city": "Lima"}
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"
