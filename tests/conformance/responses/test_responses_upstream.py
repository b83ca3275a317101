"""The Responses API, driven by the official OpenAI SDK, on the fake OpenAI Responses upstream
(a real store, ``previous_response_id``, ``previous_response_not_found``): follow-ups chain
natively with the upstream's own id and only the new input; a forgotten parent is replayed
transparently; a chain moved to another deployment by a fallback is replayed there."""

from __future__ import annotations

from typing import Any

import pytest
import redis

from fake_providers.testing import FakeProviders
from tests.conftest import AutoAdvance, GatewayFactory, RunningGateway
from tests.integration.responses.support import (
    RESPONSES_PATH,
    WEATHER_TOOL,
    post,
    responses_config,
    sse_events,
    stored,
)


@pytest.fixture
def gw(gateway_factory: GatewayFactory, fake: FakeProviders, redis_url: str) -> RunningGateway:
    config = responses_config(fake, redis_url)
    # The chain follows the deployment that answers; the breaker (which would keep a deployment
    # that just failed six times out of the rotation for its cooldown) is not what is tested here.
    for provider in config["providers"]:
        provider["breaker"] = {"enabled": False}
    config["models"] += [
        {"name": "pair", "provider": "fake-openai", "upstream_model": "gpt-4o-mini", "api": "responses"},
        {"name": "pair", "provider": "fake-openai", "upstream_model": "gpt-4o", "api": "responses"},
    ]
    return gateway_factory(config)


def sent(fake: FakeProviders) -> list[dict[str, Any]]:
    return [entry.body for entry in fake.requests(path=RESPONSES_PATH)]


def upstream_id(redis_sync: redis.Redis, gw: RunningGateway, response_id: str) -> str:
    value = stored(redis_sync, gw, response_id)["meta"]["upstream_id"]
    assert isinstance(value, str)
    return value


def test_native_chaining_sends_only_the_new_input(
    gw: RunningGateway, fake: FakeProviders, redis_sync: redis.Redis
) -> None:
    client = gw.openai()
    first = client.responses.create(model="resp-model", input="What is 2+2?", instructions="Answer briefly.")
    second = client.responses.create(
        model="resp-model", input="And times 3?", previous_response_id=first.id, instructions="Be terse."
    )
    third = client.responses.create(model="resp-model", input="In French?", previous_response_id=second.id)

    assert [r.output_text for r in (first, second, third)] == [
        "You said: What is 2+2?",
        "You said: And times 3?",
        "You said: In French?",
    ]
    ups = [upstream_id(redis_sync, gw, r.id) for r in (first, second, third)]
    assert fake.stored_responses() == ups
    assert not {r.id for r in (first, second, third)} & set(ups)  # clients hold the gateway's ids
    assert (second.previous_response_id, third.previous_response_id) == (first.id, second.id)
    assert (second.instructions, third.instructions) == ("Be terse.", None)

    assert sent(fake) == [
        {"model": "gpt-4o-mini", "input": "What is 2+2?", "instructions": "Answer briefly.", "store": True},
        {
            "model": "gpt-4o-mini",
            "input": "And times 3?",
            "previous_response_id": ups[0],
            "instructions": "Be terse.",
            "store": True,
        },
        {"model": "gpt-4o-mini", "input": "In French?", "previous_response_id": ups[1], "store": True},
    ]
    # The upstream billed the whole history again (it rebuilt it itself); we sent none of it.
    assert third.usage is not None and second.usage is not None
    assert third.usage.input_tokens > second.usage.input_tokens
    for response in (first, second, third):
        assert client.responses.retrieve(response.id).model_dump() == response.model_dump()


def test_streamed_function_calls_chain_natively(
    gw: RunningGateway, fake: FakeProviders, redis_sync: redis.Redis
) -> None:
    client = gw.openai()
    fake.script(
        [
            {
                "reply": {
                    "tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}, "id": "call_p1"}]
                }
            }
        ]
    )
    with client.responses.stream(
        model="resp-model", input="Weather in Paris?", tools=[WEATHER_TOOL]
    ) as stream:
        types = [event.type for event in stream]
        first = stream.get_final_response()
    assert types == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
    ]
    [call] = first.output
    assert call.type == "function_call" and call.call_id == "call_p1"
    record = stored(redis_sync, gw, first.id)
    assert record["meta"]["calls"] == ["call_p1"]
    assert record["output"] == [
        {
            "id": call.id,
            "type": "function_call",
            "status": "completed",
            "arguments": '{"city":"Paris"}',
            "call_id": "call_p1",
            "name": "get_weather",
        }
    ]

    output = {"type": "function_call_output", "call_id": "call_p1", "output": '{"sky": "clear"}'}
    with client.responses.stream(
        model="resp-model", input=[output], previous_response_id=first.id, tools=[WEATHER_TOOL]
    ) as stream:
        second = stream.get_final_response()
    assert second.previous_response_id == first.id
    assert second.output_text.startswith("Tool results:")
    follow_up = sent(fake)[-1]
    assert follow_up["previous_response_id"] == upstream_id(redis_sync, gw, first.id)
    assert follow_up["input"] == [output]
    assert follow_up["stream"] is True


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_a_parent_the_upstream_forgot_is_replayed_transparently(
    gw: RunningGateway, fake: FakeProviders, redis_sync: redis.Redis, stream: bool
) -> None:
    client = gw.openai()
    first = client.responses.create(model="resp-model", input="Remember 7", instructions="Old rules.")
    assert fake.forget_response(upstream_id(redis_sync, gw, first.id))

    answer = post(
        gw,
        {"model": "resp-model", "input": "Which number?", "previous_response_id": first.id, "stream": stream},
    )
    assert answer.status_code == 200
    assert answer.headers["x-gateway-attempts"] == "1"
    final = sse_events(answer.text)[-1][1]["response"] if stream else answer.json()
    assert final["status"] == "completed" and final["previous_response_id"] == first.id
    assert final["output"][0]["content"][0]["text"] == "You said: Which number?"

    native, replay = sent(fake)[1:]
    assert native["previous_response_id"] == upstream_id(redis_sync, gw, first.id)
    assert "previous_response_id" not in replay and "instructions" not in replay
    assert [(item["type"], item["role"], item["content"][0]["text"]) for item in replay["input"]] == [
        ("message", "user", "Remember 7"),
        ("message", "assistant", "You said: Remember 7"),
        ("message", "user", "Which number?"),
    ]
    assert all("id" not in item for item in replay["input"])
    # Stored upstream again: the next turn chains natively from the new response.
    client.responses.create(model="resp-model", input="Thanks", previous_response_id=final["id"])
    assert sent(fake)[-1]["previous_response_id"] == upstream_id(redis_sync, gw, final["id"])


def test_a_fallback_moves_the_chain_to_another_deployment(
    gw: RunningGateway, fake: FakeProviders, redis_sync: redis.Redis
) -> None:
    client = gw.openai()
    first = client.responses.create(model="pair", input="one")
    assert stored(redis_sync, gw, first.id)["meta"]["deployment"] == "fake-openai/gpt-4o-mini"

    fake.script([{"fault": "503", "times": None}], model="gpt-4o-mini")
    with AutoAdvance(gw.clock):
        second = client.responses.create(model="pair", input="two", previous_response_id=first.id)
        third = client.responses.create(model="pair", input="three", previous_response_id=second.id)
    assert stored(redis_sync, gw, second.id)["meta"]["deployment"] == "fake-openai/gpt-4o"

    on_second = [body for body in sent(fake) if body["model"] == "gpt-4o"]
    # The other deployment never produced the parent: the history is replayed there...
    assert "previous_response_id" not in on_second[0]
    assert [item["content"][0]["text"] for item in on_second[0]["input"]] == ["one", "You said: one", "two"]
    # ...and from then on the chain lives there, natively.
    assert on_second[1]["previous_response_id"] == upstream_id(redis_sync, gw, second.id)
    assert on_second[1]["input"] == "three"
    assert third.output_text == "You said: three"

    fake.clear_script()
    fourth = client.responses.create(model="pair", input="four", previous_response_id=third.id)
    back = sent(fake)[-1]
    assert back["model"] == "gpt-4o-mini" and "previous_response_id" not in back
    assert [item["content"][0]["text"] for item in back["input"]] == [
        "one",
        "You said: one",
        "two",
        "You said: two",
        "three",
        "You said: three",
        "four",
    ]
    assert fourth.previous_response_id == third.id


def test_delete_reaches_the_upstream_copy(
    gw: RunningGateway, fake: FakeProviders, redis_sync: redis.Redis
) -> None:
    client = gw.openai()
    response = client.responses.create(model="resp-model", input="Bye")
    theirs = upstream_id(redis_sync, gw, response.id)
    assert fake.stored_responses() == [theirs]
    client.responses.delete(response.id)
    assert fake.stored_responses() == []
    [entry] = [e for e in fake.requests() if e.method == "DELETE"]
    assert entry.path == f"{RESPONSES_PATH}/{theirs}"
