"""OpenAI Chat Completions clients talking to Claude through the gateway (the fake Anthropic
Messages API behind it): what the client gets, and the exact Messages request that was sent."""

from __future__ import annotations

import json
from typing import Any

import httpx
import openai
import pytest

from fake_providers.testing import FakeProviders
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
    config = base_config(fake, redis_url)
    config["providers"].append(
        {
            "name": "fake-anthropic",
            "kind": "anthropic",
            "base_url": fake.base_url + "/anthropic/v1",
            "api_key": "sk-ant-upstream",
            "retry": {"max_attempts": 3, "initial_delay": 0.0, "max_delay": 0.0},
        }
    )
    config["models"].append(
        {"name": "claude", "provider": "fake-anthropic", "upstream_model": "claude-haiku-4-5"}
    )
    return gateway_factory(config)


def sent(fake: FakeProviders) -> list[dict[str, Any]]:
    return [e.body for e in fake.requests(path=MESSAGES)]


def test_text_reply_and_the_messages_request(claude: RunningGateway, fake: FakeProviders) -> None:
    reply = claude.openai().chat.completions.create(
        model="claude",
        messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello there"}],
        temperature=0.3,
        stop=["END"],
    )
    assert reply.choices[0].message.content == "You said: Hello there"
    assert reply.choices[0].finish_reason == "stop"
    assert reply.usage is not None and reply.usage.prompt_tokens > 0 and reply.usage.completion_tokens > 0

    entry = fake.requests(path=MESSAGES)[0]
    assert entry.headers["x-api-key"] == "sk-ant-upstream"
    assert entry.headers["anthropic-version"] == "2023-06-01"
    assert "authorization" not in entry.headers
    body = entry.body
    assert body["model"] == "claude-haiku-4-5"
    assert body["system"] == "Be brief."
    assert body["messages"] == [{"role": "user", "content": [{"type": "text", "text": "Hello there"}]}]
    assert body["max_tokens"] == 4096
    assert body["temperature"] == 0.3
    assert body["stop_sequences"] == ["END"]


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


# fault -> (status, code, kind, attempts)
FAULTS = {
    "429": (429, "rate_limit_exceeded", "rate_limit", 3),
    "529": (503, "server_is_overloaded", "overloaded", 3),
    "401": (502, "upstream_authentication_failed", "auth", 1),
    "context-length": (400, "context_length_exceeded", "config", 1),
    "500": (502, "upstream_error", "generic", 3),
}


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize("fault", list(FAULTS))
def test_anthropic_errors_reach_the_client_classified(
    claude: RunningGateway, fake: FakeProviders, fault: str, stream: bool
) -> None:
    status, code, kind, attempts = FAULTS[fault]
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
    assert len(sent(fake)) == attempts


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
