"""The Responses API on an Anthropic upstream (the fake Anthropic Messages API): requests through
Responses -> Chat -> Anthropic, answers and streams back, history replayed from the records on
every follow-up."""

from __future__ import annotations

from typing import Any

import pytest
import redis

from fake_providers.testing import FakeProviders
from gateway.testing import add_anthropic
from tests.conftest import GatewayFactory, RunningGateway
from tests.integration.responses.support import post, responses_config, sse_events, stored

MESSAGES_PATH = "/anthropic/v1/messages"


@pytest.fixture
def gw(gateway_factory: GatewayFactory, fake: FakeProviders, redis_url: str) -> RunningGateway:
    config = responses_config(fake, redis_url)
    add_anthropic(config, fake, provider="claude", upstream_model="claude-sonnet-4-5", api_key="sk-ant")
    return gateway_factory(config)


def text_of(response: dict[str, Any]) -> str:
    return str(response["output"][0]["content"][0]["text"])


def test_a_conversation_over_anthropic(
    gw: RunningGateway, fake: FakeProviders, redis_sync: redis.Redis
) -> None:
    fake.script([{"reply": {"usage": {"input_tokens": 7, "output_tokens": 4}}}], model="claude-sonnet-4-5")
    first = post(gw, {"model": "claude", "input": "Hello", "instructions": "Be brief."}).json()
    assert text_of(first) == "You said: Hello"
    assert (first["usage"]["input_tokens"], first["usage"]["output_tokens"]) == (7, 4)  # the upstream's count

    answer = post(
        gw, {"model": "claude", "input": "Still there?", "previous_response_id": first["id"], "stream": True}
    )
    events = sse_events(answer.text)
    assert [data["sequence_number"] for _, data in events] == list(range(len(events)))
    assert events[0][0] == "response.created" and events[-1][0] == "response.completed"
    second = events[-1][1]["response"]
    assert text_of(second) == "You said: Still there?"
    assert second["previous_response_id"] == first["id"]
    assert stored(redis_sync, gw, second["id"])["meta"]["api"] == "anthropic"

    first_sent, second_sent = [entry.body for entry in fake.requests(path=MESSAGES_PATH)]
    assert first_sent["system"] == "Be brief."
    assert first_sent["max_tokens"] == 4096
    assert "system" not in second_sent  # instructions do not carry over
    assert second_sent["model"] == "claude-sonnet-4-5" and second_sent["stream"] is True
    assert [(m["role"], m["content"]) for m in second_sent["messages"]] == [
        ("user", [{"type": "text", "text": "Hello"}]),
        ("assistant", [{"type": "text", "text": "You said: Hello"}]),
        ("user", [{"type": "text", "text": "Still there?"}]),
    ]
