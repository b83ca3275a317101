"""OpenAI Responses clients (the official SDK) talking to Claude through the gateway: the exact
Messages request the fake Anthropic upstream received, and the Responses objects and events the
client got back — text, instructions, parallel function calls and their outputs, stop reasons,
usage, streaming, and Anthropic's errors classified in the Responses dialect."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest

from fake_providers.testing import FakeProviders
from gateway.testing import add_anthropic
from tests.conftest import AutoAdvance, GatewayFactory, RunningGateway
from tests.integration.responses.support import post, responses_config, sse_events

MESSAGES = "/anthropic/v1/messages"
CLAUDE = "claude-haiku-4-5"
WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "Weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
TIME = {
    "type": "function",
    "name": "get_time",
    "description": "Local time in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}


@pytest.fixture
def gw(gateway_factory: GatewayFactory, fake: FakeProviders, redis_url: str) -> RunningGateway:
    config = responses_config(fake, redis_url)
    add_anthropic(
        config,
        fake,
        upstream_model=CLAUDE,
        retry={"max_attempts": 3, "initial_delay": 0.0, "max_delay": 0.0},
    )
    return gateway_factory(config)


def sent(fake: FakeProviders) -> list[dict[str, Any]]:
    return [entry.body for entry in fake.requests(path=MESSAGES)]


def test_text_with_instructions_and_the_exact_request(gw: RunningGateway, fake: FakeProviders) -> None:
    fake.script([{"reply": {"text": "Hi.", "usage": {"input_tokens": 50, "output_tokens": 4}}}], model=CLAUDE)
    response = gw.openai().responses.create(
        model="claude",
        instructions="Be brief.",
        input=[
            {"role": "developer", "content": "Answer in English."},
            {"role": "user", "content": [{"type": "input_text", "text": "Hello"}]},
        ],
        temperature=0.2,
        max_output_tokens=200,
    )
    assert (response.status, response.output_text) == ("completed", "Hi.")
    assert response.usage is not None
    assert (response.usage.input_tokens, response.usage.output_tokens, response.usage.total_tokens) == (
        50,
        4,
        54,
    )
    assert response.usage.input_tokens_details.cached_tokens == 0
    assert sent(fake) == [
        {
            "model": CLAUDE,
            "max_tokens": 200,
            "system": [{"type": "text", "text": "Be brief."}, {"type": "text", "text": "Answer in English."}],
            "messages": [{"role": "user", "content": [{"type": "text", "text": "Hello"}]}],
            "temperature": 0.2,
        }
    ]
    assert fake.requests(path=MESSAGES)[0].headers["x-api-key"] == "sk-ant-upstream"


def test_streamed_text_events(gw: RunningGateway, fake: FakeProviders) -> None:
    with gw.openai().responses.stream(model="claude", input="Hello there") as stream:
        types = [event.type for event in stream]
        final = stream.get_final_response()
    assert final.output_text == "You said: Hello there"
    assert types[:4] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ]
    assert types[-4:] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert {t for t in types[4:-4]} == {"response.output_text.delta"}
    assert sent(fake)[0]["stream"] is True


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_parallel_function_calls_and_their_outputs(
    gw: RunningGateway, fake: FakeProviders, stream: bool
) -> None:
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
        model=CLAUDE,
    )
    client = gw.openai()
    ask: dict[str, Any] = {
        "model": "claude",
        "input": "Weather in Paris, time in Tokyo?",
        "tools": [WEATHER, TIME],
    }
    if stream:
        with client.responses.stream(**ask) as events:
            types = [e.type for e in events]
            first = events.get_final_response()
        assert types.count("response.function_call_arguments.done") == 2
        assert "response.function_call_arguments.delta" in types
    else:
        first = client.responses.create(**ask)
    calls = [item for item in first.output if item.type == "function_call"]
    assert [(c.name, json.loads(c.arguments)) for c in calls] == [
        ("get_weather", {"city": "Paris"}),
        ("get_time", {"city": "Tokyo"}),
    ]
    assert sent(fake)[0]["tools"] == [
        {"name": "get_weather", "description": "Weather for a city", "input_schema": SCHEMA},
        {"name": "get_time", "description": "Local time in a city", "input_schema": SCHEMA},
    ]

    second = client.responses.create(
        model="claude",
        previous_response_id=first.id,
        input=[
            {"type": "function_call_output", "call_id": calls[0].call_id, "output": "18C"},
            {"type": "function_call_output", "call_id": calls[1].call_id, "output": "21:00"},
        ],
        tools=[WEATHER, TIME],
    )
    assert second.output_text == "Tool results: get_weather returned 18C; get_time returned 21:00"
    assert sent(fake)[1]["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "Weather in Paris, time in Tokyo?"}]},
        {
            "role": "assistant",
            "content": [
                {
                    "type": "tool_use",
                    "id": calls[0].call_id,
                    "name": "get_weather",
                    "input": {"city": "Paris"},
                },
                {"type": "tool_use", "id": calls[1].call_id, "name": "get_time", "input": {"city": "Tokyo"}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": calls[0].call_id, "content": "18C"},
                {"type": "tool_result", "tool_use_id": calls[1].call_id, "content": "21:00"},
            ],
        },
    ]


@pytest.mark.parametrize(
    ("tool_choice", "sent_choice"),
    [
        ("auto", {"type": "auto"}),
        ("none", {"type": "none"}),
        ("required", {"type": "any"}),
        ({"type": "function", "name": "get_time"}, {"type": "tool", "name": "get_time"}),
    ],
    ids=["auto", "none", "required", "named"],
)
def test_tool_choice(
    gw: RunningGateway, fake: FakeProviders, tool_choice: Any, sent_choice: dict[str, Any]
) -> None:
    gw.openai().responses.create(model="claude", input="Oslo", tools=[WEATHER, TIME], tool_choice=tool_choice)
    assert sent(fake)[0]["tool_choice"] == sent_choice


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_max_output_tokens_makes_an_incomplete_response(
    gw: RunningGateway, fake: FakeProviders, stream: bool
) -> None:
    fake.script([{"reply": {"text": "A long answer", "finish_reason": "length"}}], model=CLAUDE)
    client = gw.openai()
    if stream:
        with client.responses.stream(model="claude", input="Talk", max_output_tokens=16) as events:
            seen = list(events)  # (get_final_response() wants a response.completed)
        assert seen[-1].type == "response.incomplete"
        response = seen[-1].response
    else:
        response = client.responses.create(model="claude", input="Talk", max_output_tokens=16)
    assert response.status == "incomplete"
    assert (
        response.incomplete_details is not None and response.incomplete_details.reason == "max_output_tokens"
    )
    assert sent(fake)[0]["max_tokens"] == 16


# fault -> (status, error code, upstream attempts)
FAULTS: dict[str, tuple[int, str, int]] = {
    "429": (429, "rate_limit_exceeded", 3),
    "529": (503, "server_is_overloaded", 3),
    "401": (502, "upstream_authentication_failed", 1),
    "context-length": (400, "context_length_exceeded", 1),
    "inband": (503, "server_is_overloaded", 3),
    "malformed-1": (502, "upstream_error", 3),
    "reset": (504, "upstream_timeout", 3),
}


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize("fault", list(FAULTS))
def test_anthropic_errors_in_the_responses_dialect(
    gw: RunningGateway, fake: FakeProviders, fault: str, stream: bool
) -> None:
    status, code, attempts = FAULTS[fault]
    fake.script([{"fault": fault, "times": None}], model=CLAUDE)
    with AutoAdvance(gw.clock):
        answer = post(gw, {"model": "claude", "input": "hi", "stream": stream})
    assert answer.status_code == status, answer.text
    error = answer.json()["error"]
    assert (error["code"], error["provider"]) == (code, "anthropic")
    if code == "context_length_exceeded":
        assert error["param"] == "input"
    assert len(sent(fake)) == attempts


def test_inband_overload_before_content_is_retried(gw: RunningGateway, fake: FakeProviders) -> None:
    fake.script([{"fault": "inband", "times": 2}], model=CLAUDE)
    with AutoAdvance(gw.clock), gw.openai().responses.stream(model="claude", input="hi") as stream:
        final = stream.get_final_response()
    assert final.output_text == "You said: hi"
    assert len(sent(fake)) == 3


def test_a_cut_after_commit_fails_the_response_in_band(gw: RunningGateway, fake: FakeProviders) -> None:
    fake.script([{"fault": "cut-5", "times": None}], model=CLAUDE)
    answer = post(gw, {"model": "claude", "input": "Hello there friend", "stream": True})
    assert answer.status_code == 200
    names = [name for name, _ in sse_events(answer.text)]
    assert "response.completed" not in names
    assert names[-2:] == ["error", "response.failed"]
    assert sse_events(answer.text)[-2][1]["error"]["code"] == "stream_truncated"
    assert len(sent(fake)) == 1

    with (
        pytest.raises(openai.APIError),
        gw.openai().responses.stream(model="claude", input="Hello there friend") as s,
    ):
        for _ in s:
            pass
