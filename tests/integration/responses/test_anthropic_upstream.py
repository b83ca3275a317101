"""The Responses API on an Anthropic upstream: requests through Responses -> Chat -> Anthropic,
answers and streams back, history replayed from the records on every follow-up."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import redis

from fake_providers.testing import FakeProviders, serve
from tests.conftest import GatewayFactory, RunningGateway
from tests.integration.responses.mini_upstreams import MiniAnthropic
from tests.integration.responses.support import post, responses_config, sse_events, stored


@pytest.fixture
def claude() -> Iterator[tuple[MiniAnthropic, str]]:
    app = MiniAnthropic()
    with serve(app) as served:
        yield app, served.base_url + "/v1"


@pytest.fixture
def gw(
    gateway_factory: GatewayFactory, fake: FakeProviders, redis_url: str, claude: tuple[MiniAnthropic, str]
) -> RunningGateway:
    config = responses_config(fake, redis_url)
    config["providers"].append(
        {"name": "claude", "kind": "anthropic", "base_url": claude[1], "api_key": "sk-ant"}
    )
    config["models"].append({"name": "claude", "provider": "claude", "upstream_model": "claude-sonnet-4-5"})
    return gateway_factory(config)


def text_of(response: dict[str, Any]) -> str:
    return str(response["output"][0]["content"][0]["text"])


def test_a_conversation_over_anthropic(
    gw: RunningGateway, claude: tuple[MiniAnthropic, str], redis_sync: redis.Redis
) -> None:
    mini, _ = claude
    first = post(gw, {"model": "claude", "input": "Hello", "instructions": "Be brief."}).json()
    assert text_of(first) == "Claude heard: Hello"
    assert first["usage"]["input_tokens"] == 7

    answer = post(
        gw, {"model": "claude", "input": "Still there?", "previous_response_id": first["id"], "stream": True}
    )
    events = sse_events(answer.text)
    assert [data["sequence_number"] for _, data in events] == list(range(len(events)))
    assert events[0][0] == "response.created" and events[-1][0] == "response.completed"
    second = events[-1][1]["response"]
    assert text_of(second) == "Claude heard: Still there?"
    assert second["previous_response_id"] == first["id"]
    assert stored(redis_sync, gw, second["id"])["meta"]["api"] == "anthropic"

    first_sent, second_sent = mini.journal
    assert first_sent["system"] == "Be brief."
    assert first_sent["max_tokens"] == 4096
    assert "system" not in second_sent  # instructions do not carry over
    assert second_sent["model"] == "claude-sonnet-4-5" and second_sent["stream"] is True
    assert [(m["role"], m["content"]) for m in second_sent["messages"]] == [
        ("user", [{"type": "text", "text": "Hello"}]),
        ("assistant", [{"type": "text", "text": "Claude heard: Hello"}]),
        ("user", [{"type": "text", "text": "Still there?"}]),
    ]
