"""The Anthropic SDK on OpenAI-compatible deployments: the request is translated once into Chat
Completions (what the upstream received is asserted), the answer comes back as an Anthropic
message or Anthropic's exact event sequence."""

from __future__ import annotations

import json
from typing import Any

import anthropic
import httpx
import msgspec
import pytest

from fake_providers.anthropic.thinking import sign
from fake_providers.testing import FakeProviders
from gateway.testing import GATEWAY_KEY
from tests.conformance.messages.support import WEATHER, client, config, recorded_gateway

CHAT = "/openai/v1/chat/completions"


def sent_chat(fake: FakeProviders, path: str = CHAT) -> dict[str, Any]:
    [entry] = fake.requests(path=path)
    body: dict[str, Any] = entry.body
    return body


def events_of(text: str) -> list[dict[str, Any]]:
    out = []
    for block in text.strip().split("\n\n"):
        lines = block.splitlines()
        name = lines[0][7:]
        payload = json.loads(lines[1][6:])
        assert payload["type"] == name  # every event is named like its type
        out.append(payload)
    return out


def test_json_text_and_the_translated_request(fake: FakeProviders, redis_url: str) -> None:
    with recorded_gateway(config(fake, redis_url)) as (gw, claude, _):
        message = client(gw).messages.create(
            model="gpt-4o-mini",
            max_tokens=100,
            system=[
                {"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral", "ttl": "1h"}}
            ],
            stop_sequences=["STOP"],
            metadata={"user_id": "user-7"},
            extra_body={"top_k": 5},
            messages=[
                {"role": "user", "content": "first"},
                {
                    "role": "assistant",
                    "content": [
                        {"type": "thinking", "thinking": "a thought", "signature": sign("a thought")},
                        {"type": "thinking", "thinking": "unsigned", "signature": ""},
                        {"type": "text", "text": "ok"},
                    ],
                },
                {
                    "role": "user",
                    "content": [{"type": "text", "text": "hello", "cache_control": {"type": "ephemeral"}}],
                },
            ],
        )
    assert claude.sent == []
    assert message.type == "message" and message.role == "assistant" and message.id.startswith("msg_")
    assert message.content[0].type == "text" and message.content[0].text == "You said: hello"
    assert message.stop_reason == "end_turn" and message.model == "gpt-4o-mini"
    assert message.usage.input_tokens > 0 and message.usage.output_tokens > 0
    body = sent_chat(fake)
    assert body == {
        "model": "gpt-4o-mini",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "first"},
            {"role": "assistant", "content": "ok"},
            {"role": "user", "content": "hello"},
        ],
        "max_completion_tokens": 100,
        "stop": ["STOP"],
        "user": "user-7",
    }


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_an_openai_compatible_server_gets_top_k_and_max_tokens(
    fake: FakeProviders, redis_url: str, stream: bool
) -> None:
    with recorded_gateway(config(fake, redis_url)) as (gw, _, _):
        answer = client(gw).messages.create(
            model="llama",
            max_tokens=64,
            extra_body={"top_k": 40, "temperature": 0.2},  # this SDK no longer offers either
            messages=[{"role": "user", "content": "hello"}],
            stream=stream,
        )
        if stream:
            assert [event.type for event in answer][-1] == "message_stop"  # type: ignore[union-attr]
        else:
            assert answer.content[0].text == "You said: hello"  # type: ignore[union-attr]
    body = sent_chat(fake, "/vllm/v1/chat/completions")
    assert (body["model"], body["top_k"], body["temperature"]) == (
        "meta-llama/Llama-3.1-8B-Instruct",
        40,
        0.2,
    )
    assert body["max_tokens"] == body["max_completion_tokens"] == 64
    assert body["messages"] == [{"role": "user", "content": "hello"}]


def test_stream_a_tool_call_after_text_keeps_its_whole_input(fake: FakeProviders, redis_url: str) -> None:
    fake.script(
        [
            {
                "reply": {
                    "text": "Let me check the weather.",
                    "tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris, France"}}],
                }
            }
        ]
    )
    with (
        recorded_gateway(config(fake, redis_url)) as (gw, _, _),
        client(gw, bearer=True).messages.stream(
            model="gpt-4o-mini",
            max_tokens=200,
            tools=[WEATHER],  # type: ignore[list-item]
            tool_choice={"type": "auto", "disable_parallel_tool_use": True},
            messages=[{"role": "user", "content": "weather in Paris?"}],
        ) as stream,
    ):
        kinds = [event.type for event in stream]
        final = stream.get_final_message()
    text, call = final.content
    assert text.type == "text" and text.text == "Let me check the weather."
    assert call.type == "tool_use" and call.name == "get_weather" and call.input == {"city": "Paris, France"}
    assert call.id.startswith("call_")
    assert final.stop_reason == "tool_use"
    assert kinds[0] == "message_start" and kinds[-1] == "message_stop"
    assert "input_json" in kinds
    body = sent_chat(fake)
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert body["tool_choice"] == "auto" and body["parallel_tool_calls"] is False
    assert body["tools"][0]["function"]["parameters"] == WEATHER["input_schema"]


def test_the_raw_event_sequence(fake: FakeProviders, redis_url: str) -> None:
    fake.script(
        [
            {
                "reply": {
                    "chunks": ["Hi ", "there"],
                    "tool_calls": [{"name": "get_weather", "arguments": {"city": "Rome"}}],
                }
            }
        ]
    )
    with recorded_gateway(config(fake, redis_url)) as (gw, _, _):
        answer = httpx.post(
            gw.root_url + "/v1/messages",
            headers={"x-api-key": GATEWAY_KEY, "anthropic-version": "2023-06-01"},
            json={
                "model": "gpt-4o-mini",
                "max_tokens": 64,
                "stream": True,
                "tools": [WEATHER],
                "messages": [{"role": "user", "content": "hello " * 50}],
            },
            timeout=30,
        )
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/event-stream")
    events = events_of(answer.text)
    assert [e["type"] for e in events] == [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "content_block_start",
        *["content_block_delta"] * (len(events) - 9),
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    start = events[0]["message"]
    assert start["usage"]["input_tokens"] >= 75  # the estimate: never 0
    assert events[1]["content_block"] == {"type": "text", "text": ""}
    assert [e["delta"] for e in events[2:4]] == [
        {"type": "text_delta", "text": "Hi "},
        {"type": "text_delta", "text": "there"},
    ]
    tool_start = events[5]
    assert tool_start["index"] == 1 and tool_start["content_block"]["input"] == {}
    pieces = "".join(e["delta"]["partial_json"] for e in events[6:-3])
    assert json.loads(pieces) == {"city": "Rome"}
    assert events[-2]["delta"] == {"stop_reason": "tool_use", "stop_sequence": None}
    assert events[-2]["usage"]["output_tokens"] > 0


def test_a_tool_round_trip_keeps_the_ids(fake: FakeProviders, redis_url: str) -> None:
    with recorded_gateway(config(fake, redis_url)) as (gw, _, _):
        message = client(gw).messages.create(
            model="llama",
            max_tokens=100,
            tools=[WEATHER],  # type: ignore[list-item]
            messages=[
                {"role": "user", "content": "weather?"},
                {
                    "role": "assistant",
                    "content": [
                        {
                            "type": "tool_use",
                            "id": "toolu_01XYZ",
                            "name": "get_weather",
                            "input": {"city": "Oslo"},
                        }
                    ],
                },
                {
                    "role": "user",
                    "content": [{"type": "tool_result", "tool_use_id": "toolu_01XYZ", "content": "snow"}],
                },
            ],
        )
    assert message.content[0].text == "Tool results: get_weather returned snow"
    body = sent_chat(fake, "/vllm/v1/chat/completions")
    assert body["messages"][1]["tool_calls"][0]["id"] == "toolu_01XYZ"
    assert body["messages"][2] == {"role": "tool", "tool_call_id": "toolu_01XYZ", "content": "snow"}


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ({"type": "any"}, "required"),
        ({"type": "tool", "name": "get_weather"}, {"type": "function", "function": {"name": "get_weather"}}),
    ],
)
def test_forced_tools(fake: FakeProviders, redis_url: str, choice: dict[str, Any], expected: object) -> None:
    with recorded_gateway(config(fake, redis_url)) as (gw, _, _):
        message = client(gw).messages.create(
            model="gpt-4o-mini",
            max_tokens=100,
            tools=[WEATHER],  # type: ignore[list-item]
            tool_choice=choice,  # type: ignore[arg-type]
            messages=[{"role": "user", "content": "weather?"}],
        )
    assert message.stop_reason == "tool_use" and message.content[0].type == "tool_use"
    assert sent_chat(fake)["tool_choice"] == expected


def test_max_tokens_is_the_stop_reason_when_the_answer_is_cut(fake: FakeProviders, redis_url: str) -> None:
    with recorded_gateway(config(fake, redis_url)) as (gw, _, _):
        message = client(gw).messages.create(
            model="gpt-4o-mini", max_tokens=2, messages=[{"role": "user", "content": "tell me a long story"}]
        )
    assert message.stop_reason == "max_tokens"


def test_count_tokens_is_the_gateways_estimate_never_zero(fake: FakeProviders, redis_url: str) -> None:
    with recorded_gateway(config(fake, redis_url)) as (gw, _, openai):
        sdk = client(gw)
        small = sdk.messages.with_raw_response.count_tokens(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
        )
        big = sdk.messages.count_tokens(
            model="gpt-4o-mini",
            system="You are helpful.",
            tools=[WEATHER],  # type: ignore[list-item]
            messages=[{"role": "user", "content": "word " * 400}],
        )
        pdf = {
            "type": "document",
            "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0="},
        }
        with pytest.raises(anthropic.APIStatusError) as caught:
            sdk.messages.count_tokens(model="gpt-4o-mini", messages=[{"role": "user", "content": [pdf]}])
        with pytest.raises(anthropic.BadRequestError):
            sdk.messages.count_tokens(model="gpt-4o-mini", messages=[])
    assert openai.sent == []
    assert small.headers["x-gateway-token-count"] == "estimate"
    assert small.parse().input_tokens > 0
    assert big.input_tokens >= 500
    assert caught.value.status_code == 501 and caught.value.body["type"] == "error"  # type: ignore[index, call-overload]
    assert caught.value.response.headers["x-should-retry"] == "false"


def test_a_failure_after_the_commit_is_an_error_event(fake: FakeProviders, redis_url: str) -> None:
    fake.script([{"fault": "cut-4", "reply": {"chunks": ["Once ", "upon ", "a ", "time"]}}])
    with recorded_gateway(config(fake, redis_url)) as (gw, _, _):
        answer = httpx.post(
            gw.root_url + "/v1/messages",
            headers={"authorization": f"Bearer {GATEWAY_KEY}"},
            json={
                "model": "gpt-4o-mini",
                "max_tokens": 64,
                "stream": True,
                "messages": [{"role": "user", "content": "story"}],
            },
            timeout=30,
        )
    events = events_of(answer.text)
    assert events[0]["type"] == "message_start" and events[-1]["type"] == "error"
    assert "message_stop" not in [e["type"] for e in events]
    assert events[-1]["error"]["type"] == "api_error"


def test_bad_input_is_refused_before_any_upstream_call(fake: FakeProviders, redis_url: str) -> None:
    with recorded_gateway(config(fake, redis_url)) as (gw, claude, openai):
        sdk = client(gw)
        for call in (
            lambda: sdk.messages.create(model="gpt-4o-mini", max_tokens=10, messages=[]),
            lambda: sdk.messages.create(
                model="gpt-4o-mini",
                max_tokens=10,
                messages=[
                    {
                        "role": "user",
                        "content": [{"type": "tool_result", "tool_use_id": "toolu_x", "content": "?"}],
                    }
                ],
            ),
            lambda: sdk.messages.create(
                model="gpt-4o-mini",
                max_tokens=10,
                tools=[{"type": "web_search_20250305", "name": "web_search"}],  # type: ignore[list-item]
                messages=[{"role": "user", "content": "search"}],
            ),
        ):
            with pytest.raises(anthropic.BadRequestError) as caught:
                call()
            assert caught.value.body["error"]["type"] == "invalid_request_error"  # type: ignore[index, call-overload]
    assert claude.sent == [] and openai.sent == []
    assert fake.requests(path=CHAT) == []


def test_the_usage_and_model_of_a_json_answer(fake: FakeProviders, redis_url: str) -> None:
    fake.script([{"reply": {"text": "x", "usage": {"input_tokens": 321, "output_tokens": 9}}}])
    with recorded_gateway(config(fake, redis_url)) as (gw, _, _):
        answer = httpx.post(
            gw.root_url + "/v1/messages",
            headers={"x-api-key": GATEWAY_KEY},
            json={"model": "gpt-4o-mini", "max_tokens": 64, "messages": [{"role": "user", "content": "hi"}]},
            timeout=30,
        )
    message = msgspec.json.decode(answer.content)
    assert message["usage"] == {
        "input_tokens": 321,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "output_tokens": 9,
    }


def responses_config(fake: FakeProviders, redis_url: str) -> dict[str, Any]:
    cfg = config(fake, redis_url)
    cfg["models"].append(
        {"name": "gpt-r", "provider": "fake-openai", "upstream_model": "gpt-4o-mini", "api": "responses"}
    )
    return cfg


@pytest.mark.parametrize("stream", [False, True])
def test_a_responses_deployment(fake: FakeProviders, redis_url: str, stream: bool) -> None:
    """A Responses deployment serves a Chat client on its provider's Chat Completions endpoint,
    and so the canonical request of a Messages client too."""
    fake.script(
        [
            {
                "reply": {
                    "text": "Checking.",
                    "tool_calls": [{"name": "get_weather", "arguments": {"city": "Lima"}}],
                }
            }
        ]
    )
    with recorded_gateway(responses_config(fake, redis_url)) as (gw, _, openai):
        sdk = client(gw)
        request: dict[str, Any] = {
            "model": "gpt-r",
            "max_tokens": 100,
            "tools": [WEATHER],
            "messages": [{"role": "user", "content": "weather in Lima?"}],
        }
        if stream:
            with sdk.messages.stream(**request) as events:
                message = events.get_final_message()
        else:
            message = sdk.messages.create(**request)
    assert [openai_sent.path for openai_sent in openai.sent] == ["/openai/v1/chat/completions"]
    text, call = message.content
    assert text.type == "text" and text.text == "Checking."
    assert call.type == "tool_use" and call.input == {"city": "Lima"}
    assert message.stop_reason == "tool_use"
    assert message.usage.input_tokens > 0 and message.usage.output_tokens > 0
