"""The Responses API, driven by the official OpenAI SDK, on the fake Anthropic Messages upstream:
every turn is translated (Responses -> Chat -> Anthropic) and replays the history."""

from __future__ import annotations

import json
from typing import Any

import pytest
import redis

from fake_providers.testing import FakeProviders
from gateway.testing import add_anthropic
from tests.conftest import GatewayFactory, RunningGateway
from tests.integration.responses.support import WEATHER_TOOL, responses_config, stored

MESSAGES_PATH = "/anthropic/v1/messages"


@pytest.fixture
def gw(gateway_factory: GatewayFactory, fake: FakeProviders, redis_url: str) -> RunningGateway:
    config = responses_config(fake, redis_url)
    add_anthropic(config, fake, upstream_model="claude-sonnet-4-5", api_key="sk-ant")
    return gateway_factory(config)


def sent(fake: FakeProviders) -> list[dict[str, Any]]:
    return [entry.body for entry in fake.requests(path=MESSAGES_PATH)]


def test_text_turns_replay_the_history(
    gw: RunningGateway, fake: FakeProviders, redis_sync: redis.Redis
) -> None:
    client = gw.openai()
    first = client.responses.create(model="claude", input="Hello", instructions="Be brief.")
    with client.responses.stream(
        model="claude", input="Still there?", previous_response_id=first.id
    ) as stream:
        second = stream.get_final_response()
    assert (first.output_text, second.output_text) == ("You said: Hello", "You said: Still there?")
    assert second.previous_response_id == first.id
    assert client.responses.retrieve(second.id).output_text == "You said: Still there?"
    assert stored(redis_sync, gw, second.id)["meta"]["deployment"] == "fake-anthropic/claude-sonnet-4-5"

    first_sent, second_sent = sent(fake)
    assert first_sent["system"] == "Be brief."
    assert "system" not in second_sent  # instructions do not carry over
    assert second_sent["stream"] is True
    assert second_sent["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "Hello"}]},
        {"role": "assistant", "content": [{"type": "text", "text": "You said: Hello"}]},
        {"role": "user", "content": [{"type": "text", "text": "Still there?"}]},
    ]


def test_function_calls_round_trip(gw: RunningGateway, fake: FakeProviders) -> None:
    client = gw.openai()
    first = client.responses.create(
        model="claude",
        input="Weather in Oslo?",
        tools=[WEATHER_TOOL],
        tool_choice={"type": "function", "name": "get_weather"},
    )
    [call] = first.output
    assert call.type == "function_call" and call.name == "get_weather"
    assert json.loads(call.arguments).keys() == {"city"}

    second = client.responses.create(
        model="claude",
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "snow"}],
        previous_response_id=first.id,
        tools=[WEATHER_TOOL],
    )
    assert second.output_text.startswith("Tool results:")
    follow_up = sent(fake)[-1]["messages"]
    assert [m["role"] for m in follow_up] == ["user", "assistant", "user"]
    [tool_use] = follow_up[1]["content"]
    [tool_result] = follow_up[2]["content"]
    assert tool_use["type"] == "tool_use" and tool_use["name"] == "get_weather"
    assert tool_result["type"] == "tool_result" and tool_result["tool_use_id"] == tool_use["id"]
