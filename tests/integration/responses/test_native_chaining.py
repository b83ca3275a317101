"""Upstreams that speak Responses: native chaining on the deployment that produced the parent,
a transparent replay when the upstream forgot it, and replays when a chain changes deployment."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import openai
import pytest
import redis

from fake_providers.testing import FakeProviders, serve
from tests.conftest import AutoAdvance, GatewayFactory, RunningGateway
from tests.integration.responses.mini_upstreams import MiniResponses
from tests.integration.responses.support import (
    CHAT_PATH,
    WEATHER_TOOL,
    call,
    post,
    responses_config,
    sse_events,
    stored,
    user,
)

NO_BACKOFF = {"max_attempts": 2, "initial_delay": 0.0, "max_delay": 0.0, "budget_seconds": 60.0}


@pytest.fixture
def mini_a() -> Iterator[tuple[MiniResponses, str]]:
    app = MiniResponses()
    with serve(app) as served:
        yield app, served.base_url + "/v1"


@pytest.fixture
def mini_b() -> Iterator[tuple[MiniResponses, str]]:
    app = MiniResponses()
    with serve(app) as served:
        yield app, served.base_url + "/v1"


def config_for(
    fake: FakeProviders, redis_url: str, a_url: str, b_url: str, **responses: Any
) -> dict[str, Any]:
    config = responses_config(fake, redis_url)
    config["providers"] += [
        {"name": "acct-a", "kind": "openai", "base_url": a_url, "api_key": "sk-a", "retry": NO_BACKOFF},
        {"name": "acct-b", "kind": "openai", "base_url": b_url, "api_key": "sk-b", "retry": NO_BACKOFF},
    ]
    config["models"] += [
        {"name": "native", "provider": "acct-a", "upstream_model": "gpt-4o-mini", "api": "responses"},
        {"name": "spread", "provider": "acct-a", "upstream_model": "gpt-4o-mini", "api": "responses"},
        {"name": "spread", "provider": "acct-b", "upstream_model": "gpt-4o-mini", "api": "responses"},
    ]
    config["responses"] = {"ttl_seconds": 3600, **responses}
    return config


@pytest.fixture
def gw(
    gateway_factory: GatewayFactory,
    fake: FakeProviders,
    redis_url: str,
    mini_a: tuple[MiniResponses, str],
    mini_b: tuple[MiniResponses, str],
) -> RunningGateway:
    return gateway_factory(config_for(fake, redis_url, mini_a[1], mini_b[1]))


def test_follow_ups_send_the_upstream_id_and_only_the_new_input(
    gw: RunningGateway, mini_a: tuple[MiniResponses, str], redis_sync: redis.Redis
) -> None:
    mini, _ = mini_a
    client = gw.openai()
    first = client.responses.create(model="native", input="Hi", instructions="Be kind.")
    second = client.responses.create(
        model="native", input=[{"role": "user", "content": "Again"}], previous_response_id=first.id
    )
    third = client.responses.create(
        model="native", input="Third", previous_response_id=second.id, instructions="X"
    )

    assert [r.output_text for r in (first, second, third)] == [
        "You said: Hi",
        "You said: Again",
        "You said: Third",
    ]
    # Clients see the gateway's ids only; the model is the upstream's own answer.
    for response in (first, second, third):
        assert response.id.startswith("resp_") and not response.id.startswith("resp_up_")
        assert response.model == "gpt-4o-mini-2024-07-18"
    assert (second.previous_response_id, third.previous_response_id) == (first.id, second.id)

    assert mini.posts() == [
        {"model": "gpt-4o-mini", "input": "Hi", "instructions": "Be kind.", "store": True},
        {
            "model": "gpt-4o-mini",
            "input": [{"role": "user", "content": "Again"}],
            "previous_response_id": "resp_up_1",
            "store": True,
        },
        {
            "model": "gpt-4o-mini",
            "input": "Third",
            "previous_response_id": "resp_up_2",
            "instructions": "X",
            "store": True,
        },
    ]
    assert client.responses.retrieve(second.id).model_dump() == second.model_dump()
    meta = stored(redis_sync, gw, second.id)["meta"]
    assert (meta["api"], meta["deployment"], meta["upstream_id"], meta["parent"]) == (
        "responses",
        "acct-a/gpt-4o-mini",
        "resp_up_2",
        first.id,
    )


def test_streamed_tool_calls_chain_natively(
    gw: RunningGateway, mini_a: tuple[MiniResponses, str], redis_sync: redis.Redis
) -> None:
    mini, _ = mini_a
    mini.tool_calls.append({"call_id": "call_n1", "name": "get_weather", "arguments": '{"city":"Rome"}'})
    answer = post(
        gw, {"model": "native", "input": "Weather in Rome?", "tools": [WEATHER_TOOL], "stream": True}
    )
    events = sse_events(answer.text)
    assert [data["sequence_number"] for _, data in events] == list(range(len(events)))
    final = events[-1][1]["response"]
    assert events[-1][0] == "response.completed"
    ours = final["id"]
    assert {data["response"]["id"] for name, data in events if "response" in data} == {ours}
    assert final["output"][0]["call_id"] == "call_n1"
    assert stored(redis_sync, gw, ours)["output"] == final["output"]

    output_item = {"type": "function_call_output", "call_id": "call_n1", "output": "sunny"}
    follow = post(
        gw,
        {
            "model": "native",
            "input": [output_item],
            "previous_response_id": ours,
            "tools": [WEATHER_TOOL],
            "stream": True,
        },
    )
    last = sse_events(follow.text)[-1][1]["response"]
    assert last["output"][0]["content"][0]["text"] == "Tool said: sunny"
    assert last["previous_response_id"] == ours
    sent = mini.posts()[1]
    assert (sent["previous_response_id"], sent["input"], sent["stream"]) == ("resp_up_1", [output_item], True)


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize("in_band", [False, True], ids=["http-400", "in-band"])
def test_a_forgotten_parent_is_replayed_transparently(
    gw: RunningGateway,
    mini_a: tuple[MiniResponses, str],
    redis_sync: redis.Redis,
    stream: bool,
    in_band: bool,
) -> None:
    mini, _ = mini_a
    mini.not_found_in_band = in_band
    first = post(gw, {"model": "native", "input": "Remember 7", "instructions": "Old rules."}).json()
    mini.forget("resp_up_1")  # expired upstream, or another account

    answer = post(
        gw,
        {"model": "native", "input": "Which number?", "previous_response_id": first["id"], "stream": stream},
    )
    assert answer.status_code == 200
    assert answer.headers["x-gateway-attempts"] == "1"  # not a failure, not a retry
    final = sse_events(answer.text)[-1][1]["response"] if stream else answer.json()
    assert final["output"][0]["content"][0]["text"] == "You said: Which number?"
    assert final["previous_response_id"] == first["id"]

    native, replay = mini.posts()[1:]
    assert native["previous_response_id"] == "resp_up_1"
    assert "previous_response_id" not in replay
    assert "instructions" not in replay
    assert replay["input"] == [
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Remember 7"}]},
        {
            "type": "message",
            "status": "completed",
            "role": "assistant",
            "content": [
                {"type": "output_text", "text": "You said: Remember 7", "annotations": [], "logprobs": []}
            ],
        },
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Which number?"}]},
    ]
    # The new response is stored upstream again: the next turn chains natively from it.
    assert stored(redis_sync, gw, final["id"])["meta"]["upstream_id"] == "resp_up_2"
    post(gw, {"model": "native", "input": "Thanks", "previous_response_id": final["id"]})
    assert mini.posts()[-1]["previous_response_id"] == "resp_up_2"


def test_a_chain_moved_by_failover_is_replayed_then_chains_where_it_lives(
    gw: RunningGateway,
    mini_a: tuple[MiniResponses, str],
    mini_b: tuple[MiniResponses, str],
    redis_sync: redis.Redis,
) -> None:
    a, _ = mini_a
    b, _ = mini_b
    first = post(gw, {"model": "spread", "input": "one"}).json()
    assert stored(redis_sync, gw, first["id"])["meta"]["deployment"] == "acct-a/gpt-4o-mini"

    a.failing = True
    with AutoAdvance(gw.clock):
        second = post(gw, {"model": "spread", "input": "two", "previous_response_id": first["id"]})
    assert second.status_code == 200 and second.headers["x-gateway-provider"] == "acct-b"
    [on_b] = b.posts()
    assert "previous_response_id" not in on_b  # account b never saw the chain: full replay
    assert [item.get("role") for item in on_b["input"]] == ["user", "assistant", "user"]
    meta = stored(redis_sync, gw, second.json()["id"])["meta"]
    assert (meta["deployment"], meta["upstream_id"]) == ("acct-b/gpt-4o-mini", "resp_up_1")

    with AutoAdvance(gw.clock):
        third = post(gw, {"model": "spread", "input": "three", "previous_response_id": second.json()["id"]})
    assert third.status_code == 200
    assert b.posts()[-1]["previous_response_id"] == "resp_up_1"  # native again, on b
    assert b.posts()[-1]["input"] == "three"

    a.failing = False
    fourth = post(gw, {"model": "spread", "input": "four", "previous_response_id": third.json()["id"]})
    assert fourth.headers["x-gateway-provider"] == "acct-a"
    back_on_a = a.posts()[-1]
    assert "previous_response_id" not in back_on_a
    texts = [item["content"][0]["text"] for item in back_on_a["input"]]
    assert texts == [
        "one",
        "You said: one",
        "two",
        "You said: two",
        "three",
        "You said: three",
        "four",
    ]


def test_a_chain_that_moves_to_a_chat_model_is_replayed(
    gw: RunningGateway, fake: FakeProviders, mini_a: tuple[MiniResponses, str]
) -> None:
    first = post(gw, {"model": "native", "input": "Hi"}).json()
    second = post(gw, {"model": "chat-model", "input": "Hello?", "previous_response_id": first["id"]})
    assert second.status_code == 200
    [sent] = [entry.body for entry in fake.requests(path=CHAT_PATH)]
    assert sent["messages"] == [user("Hi"), {"role": "assistant", "content": "You said: Hi"}, user("Hello?")]


def test_without_upstream_storage_every_turn_is_a_replay(
    gateway_factory: GatewayFactory,
    fake: FakeProviders,
    redis_url: str,
    mini_a: tuple[MiniResponses, str],
    mini_b: tuple[MiniResponses, str],
    redis_sync: redis.Redis,
) -> None:
    gw = gateway_factory(config_for(fake, redis_url, mini_a[1], mini_b[1], upstream_store=False))
    mini, _ = mini_a
    first = gw.openai().responses.create(model="native", input="Hi")
    second = gw.openai().responses.create(model="native", input="Again", previous_response_id=first.id)
    assert first.store is True and second.store is True  # the client's view: stored (by the gateway)
    assert [body["store"] for body in mini.posts()] == [False, False]
    assert "previous_response_id" not in mini.posts()[1]
    assert len(mini.posts()[1]["input"]) == 3
    assert mini.stored == {}
    assert stored(redis_sync, gw, second.id)["meta"]["upstream_id"] is None


def test_store_false_is_passed_on_and_not_recorded(
    gw: RunningGateway, mini_a: tuple[MiniResponses, str], redis_sync: redis.Redis
) -> None:
    mini, _ = mini_a
    response = gw.openai().responses.create(model="native", input="Secret", store=False)
    assert mini.posts()[0]["store"] is False
    assert response.store is False
    assert stored(redis_sync, gw, response.id) == {}


def test_delete_also_deletes_the_upstream_copy(gw: RunningGateway, mini_a: tuple[MiniResponses, str]) -> None:
    mini, _ = mini_a
    response = gw.openai().responses.create(model="native", input="Bye")
    assert "resp_up_1" in mini.stored
    answer = call(gw, "DELETE", f"/responses/{response.id}")
    assert answer.json() == {"id": response.id, "object": "response", "deleted": True}
    assert mini.journal[-1] == ("DELETE", "/v1/responses/resp_up_1", None)
    assert mini.stored == {}
    with pytest.raises(openai.NotFoundError):
        gw.openai().responses.retrieve(response.id)
    assert json.loads(answer.content)["deleted"] is True
