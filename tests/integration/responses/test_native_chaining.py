"""Upstreams that speak Responses (the fake OpenAI Responses API): native chaining on the
deployment that produced the parent, a transparent replay when the upstream forgot it, and
replays when a chain changes deployment.

Two upstream accounts are two independent fakes: the session ``fake`` is account a, a second
``FakeProviders()`` started by the test is account b (it knows none of a's ids)."""

from __future__ import annotations

from typing import Any

import openai
import pytest
import redis

from fake_providers.testing import FakeProviders
from tests.conftest import AutoAdvance, GatewayFactory, RunningGateway
from tests.integration.responses.support import (
    CHAT_PATH,
    RESPONSES_PATH,
    WEATHER_TOOL,
    call,
    post,
    responses_config,
    sse_events,
    stored,
    user,
)

NO_BACKOFF = {"max_attempts": 2, "initial_delay": 0.0, "max_delay": 0.0, "budget_seconds": 60.0}
UPSTREAM_MODEL = "gpt-4o-mini"


def config_for(
    fake: FakeProviders, redis_url: str, other: FakeProviders | None = None, **responses: Any
) -> dict[str, Any]:
    """``native`` lives on account a; with ``other``, ``spread`` lives on accounts a and b."""
    config = responses_config(fake, redis_url)
    config["providers"].append(
        {
            "name": "acct-a",
            "kind": "openai",
            "base_url": fake.openai_base_url,
            "api_key": "sk-a",
            "retry": NO_BACKOFF,
        }
    )
    config["models"].append(
        {"name": "native", "provider": "acct-a", "upstream_model": UPSTREAM_MODEL, "api": "responses"}
    )
    if other is not None:
        config["providers"].append(
            {
                "name": "acct-b",
                "kind": "openai",
                "base_url": other.openai_base_url,
                "api_key": "sk-b",
                "retry": NO_BACKOFF,
            }
        )
        config["models"] += [
            {"name": "spread", "provider": "acct-a", "upstream_model": UPSTREAM_MODEL, "api": "responses"},
            {"name": "spread", "provider": "acct-b", "upstream_model": UPSTREAM_MODEL, "api": "responses"},
        ]
    config["responses"] = {"ttl_seconds": 3600, **responses}
    return config


@pytest.fixture
def gw(gateway_factory: GatewayFactory, fake: FakeProviders, redis_url: str) -> RunningGateway:
    return gateway_factory(config_for(fake, redis_url))


def posts(upstream: FakeProviders) -> list[dict[str, Any]]:
    """The bodies of every create the upstream received, oldest first."""
    return [entry.body for entry in upstream.requests(path=RESPONSES_PATH) if entry.method == "POST"]


def test_follow_ups_send_the_upstream_id_and_only_the_new_input(
    gw: RunningGateway, fake: FakeProviders, redis_sync: redis.Redis
) -> None:
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
    up_1, up_2, up_3 = fake.stored_responses()
    # Clients see the gateway's ids only, never the upstream's; the model is the upstream's own
    # answer (its model, not the public name "native").
    for response in (first, second, third):
        assert response.id.startswith("resp_") and len(response.id) == len("resp_") + 48
        assert response.model == UPSTREAM_MODEL
    assert {first.id, second.id, third.id}.isdisjoint({up_1, up_2, up_3})
    assert (second.previous_response_id, third.previous_response_id) == (first.id, second.id)

    assert posts(fake) == [
        {"model": UPSTREAM_MODEL, "input": "Hi", "instructions": "Be kind.", "store": True},
        {
            "model": UPSTREAM_MODEL,
            "input": [{"role": "user", "content": "Again"}],
            "previous_response_id": up_1,
            "store": True,
        },
        {
            "model": UPSTREAM_MODEL,
            "input": "Third",
            "previous_response_id": up_2,
            "instructions": "X",
            "store": True,
        },
    ]
    assert client.responses.retrieve(second.id).model_dump() == second.model_dump()
    meta = stored(redis_sync, gw, second.id)["meta"]
    assert (meta["api"], meta["deployment"], meta["upstream_id"], meta["parent"]) == (
        "responses",
        "acct-a/gpt-4o-mini",
        up_2,
        first.id,
    )


def test_streamed_tool_calls_chain_natively(
    gw: RunningGateway, fake: FakeProviders, redis_sync: redis.Redis
) -> None:
    fake.script(
        [
            {
                "reply": {
                    "tool_calls": [{"name": "get_weather", "arguments": '{"city":"Rome"}', "id": "call_n1"}]
                }
            }
        ],
        model=UPSTREAM_MODEL,
    )
    answer = post(
        gw, {"model": "native", "input": "Weather in Rome?", "tools": [WEATHER_TOOL], "stream": True}
    )
    events = sse_events(answer.text)
    assert [data["sequence_number"] for _, data in events] == list(range(len(events)))
    final = events[-1][1]["response"]
    assert events[-1][0] == "response.completed"
    ours = final["id"]
    assert {data["response"]["id"] for name, data in events if "response" in data} == {ours}
    assert [(item["type"], item["call_id"], item["arguments"]) for item in final["output"]] == [
        ("function_call", "call_n1", '{"city":"Rome"}')
    ]
    assert stored(redis_sync, gw, ours)["output"] == final["output"]
    [up_1] = fake.stored_responses()

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
    assert last["output"][0]["content"][0]["text"] == "Tool results: get_weather returned sunny"
    assert last["previous_response_id"] == ours
    sent = posts(fake)[1]
    assert (sent["previous_response_id"], sent["input"], sent["stream"]) == (up_1, [output_item], True)


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_a_forgotten_parent_is_replayed_transparently(
    gw: RunningGateway, fake: FakeProviders, redis_sync: redis.Redis, stream: bool
) -> None:
    """The upstream forgot the parent (expired, or another account): its HTTP 400
    ``previous_response_not_found`` (the fake's ``forget_response``). The fake cannot answer it
    in-band in a stream; that form is covered by
    ``tests/unit/responses/test_stale_chain_in_band.py``."""
    first = post(gw, {"model": "native", "input": "Remember 7", "instructions": "Old rules."}).json()
    [up_1] = fake.stored_responses()
    assert fake.forget_response(up_1)

    answer = post(
        gw,
        {"model": "native", "input": "Which number?", "previous_response_id": first["id"], "stream": stream},
    )
    assert answer.status_code == 200
    assert answer.headers["x-gateway-attempts"] == "1"  # not a failure, not a retry
    final = sse_events(answer.text)[-1][1]["response"] if stream else answer.json()
    assert final["output"][0]["content"][0]["text"] == "You said: Which number?"
    assert final["previous_response_id"] == first["id"]

    native, replay = posts(fake)[1:]
    assert native["previous_response_id"] == up_1
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
    [up_2] = fake.stored_responses()
    assert stored(redis_sync, gw, final["id"])["meta"]["upstream_id"] == up_2
    post(gw, {"model": "native", "input": "Thanks", "previous_response_id": final["id"]})
    assert posts(fake)[-1]["previous_response_id"] == up_2


def test_a_chain_moved_by_failover_is_replayed_then_chains_where_it_lives(
    gateway_factory: GatewayFactory, fake: FakeProviders, redis_url: str, redis_sync: redis.Redis
) -> None:
    with FakeProviders() as other:
        gw = gateway_factory(config_for(fake, redis_url, other))
        first = post(gw, {"model": "spread", "input": "one"}).json()
        assert stored(redis_sync, gw, first["id"])["meta"]["deployment"] == "acct-a/gpt-4o-mini"

        fake.script([{"fault": "503", "times": None}], model=UPSTREAM_MODEL)  # account a is down
        with AutoAdvance(gw.clock):
            second = post(gw, {"model": "spread", "input": "two", "previous_response_id": first["id"]})
        assert second.status_code == 200 and second.headers["x-gateway-provider"] == "acct-b"
        [on_b] = posts(other)
        assert "previous_response_id" not in on_b  # account b never saw the chain: full replay
        assert [item.get("role") for item in on_b["input"]] == ["user", "assistant", "user"]
        [b_1] = other.stored_responses()
        meta = stored(redis_sync, gw, second.json()["id"])["meta"]
        assert (meta["deployment"], meta["upstream_id"]) == ("acct-b/gpt-4o-mini", b_1)

        with AutoAdvance(gw.clock):
            third = post(
                gw, {"model": "spread", "input": "three", "previous_response_id": second.json()["id"]}
            )
        assert third.status_code == 200
        assert posts(other)[-1]["previous_response_id"] == b_1  # native again, on b
        assert posts(other)[-1]["input"] == "three"

        fake.clear_script()  # account a is back
        fourth = post(gw, {"model": "spread", "input": "four", "previous_response_id": third.json()["id"]})
        assert fourth.status_code == 200 and fourth.headers["x-gateway-provider"] == "acct-a"
        back_on_a = posts(fake)[-1]
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


def test_a_chain_that_moves_to_a_chat_model_is_replayed(gw: RunningGateway, fake: FakeProviders) -> None:
    first = post(gw, {"model": "native", "input": "Hi"}).json()
    second = post(gw, {"model": "chat-model", "input": "Hello?", "previous_response_id": first["id"]})
    assert second.status_code == 200
    [sent] = [entry.body for entry in fake.requests(path=CHAT_PATH)]
    assert sent["messages"] == [user("Hi"), {"role": "assistant", "content": "You said: Hi"}, user("Hello?")]


def test_without_upstream_storage_every_turn_is_a_replay(
    gateway_factory: GatewayFactory, fake: FakeProviders, redis_url: str, redis_sync: redis.Redis
) -> None:
    gw = gateway_factory(config_for(fake, redis_url, upstream_store=False))
    first = gw.openai().responses.create(model="native", input="Hi")
    second = gw.openai().responses.create(model="native", input="Again", previous_response_id=first.id)
    assert first.store is True and second.store is True  # the client's view: stored (by the gateway)
    assert [body["store"] for body in posts(fake)] == [False, False]
    assert "previous_response_id" not in posts(fake)[1]
    assert len(posts(fake)[1]["input"]) == 3
    assert fake.stored_responses() == []
    assert stored(redis_sync, gw, second.id)["meta"]["upstream_id"] is None


def test_store_false_is_passed_on_and_not_recorded(
    gw: RunningGateway, fake: FakeProviders, redis_sync: redis.Redis
) -> None:
    response = gw.openai().responses.create(model="native", input="Secret", store=False)
    assert posts(fake)[0]["store"] is False
    assert fake.stored_responses() == []
    assert response.store is False
    assert stored(redis_sync, gw, response.id) == {}


def test_delete_also_deletes_the_upstream_copy(gw: RunningGateway, fake: FakeProviders) -> None:
    response = gw.openai().responses.create(model="native", input="Bye")
    [up_1] = fake.stored_responses()
    answer = call(gw, "DELETE", f"/responses/{response.id}")
    assert answer.status_code == 200
    assert answer.json() == {"id": response.id, "object": "response", "deleted": True}
    [deleted] = fake.requests(path=f"{RESPONSES_PATH}/{up_1}")
    assert (deleted.method, deleted.body) == ("DELETE", None)
    assert fake.stored_responses() == []
    with pytest.raises(openai.NotFoundError):
        gw.openai().responses.retrieve(response.id)
