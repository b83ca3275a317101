"""The Responses API, driven by the official OpenAI SDK, on a model whose upstream speaks only
Chat Completions: every follow-up replays the whole history from the gateway's records."""

from __future__ import annotations

import json

import openai
import pytest
import redis

from fake_providers.testing import FakeProviders
from tests.conftest import GATEWAY_KEY, GatewayFactory, RunningGateway
from tests.integration.responses.support import (
    CHAT_PATH,
    VLLM_CHAT_PATH,
    WEATHER_TOOL,
    fresh_requests,
    key_id,
    record_key,
    responses_config,
    stored,
    user,
)


@pytest.fixture
def gw(gateway_factory: GatewayFactory, fake: FakeProviders, redis_url: str) -> RunningGateway:
    return gateway_factory(responses_config(fake, redis_url))


def test_text_conversation_replays_history_without_old_instructions(
    gw: RunningGateway, fake: FakeProviders, redis_sync: redis.Redis
) -> None:
    client = gw.openai()
    fake.script([{"reply": {"text": "4"}}, {"reply": {"text": "12"}}, {"reply": {"text": "douze"}}])

    first = client.responses.create(model="chat-model", input="What is 2+2?", instructions="Answer briefly.")
    raw = client.responses.with_raw_response.create(
        model="chat-model", input="And times 3?", previous_response_id=first.id, instructions="Be terse."
    )
    second, second_json = raw.parse(), json.loads(raw.content)
    third = client.responses.create(model="chat-model", input="In French?", previous_response_id=second.id)

    assert [first.output_text, second.output_text, third.output_text] == ["4", "12", "douze"]
    assert first.id.startswith("resp_") and len(first.id) == len("resp_") + 48
    assert (first.previous_response_id, second.previous_response_id) == (None, first.id)
    assert third.previous_response_id == second.id
    assert (first.instructions, second.instructions, third.instructions) == (
        "Answer briefly.",
        "Be terse.",
        None,
    )
    assert first.store is True and first.status == "completed" and first.model == "chat-model"

    sent = fresh_requests(fake, CHAT_PATH)
    assert sent == [
        {
            "model": "gpt-4o-mini",
            "messages": [{"role": "system", "content": "Answer briefly."}, user("What is 2+2?")],
        },
        {
            "model": "gpt-4o-mini",
            "messages": [
                {"role": "system", "content": "Be terse."},  # this turn's own instructions only
                user("What is 2+2?"),
                {"role": "assistant", "content": "4"},
                user("And times 3?"),
            ],
        },
        {
            "model": "gpt-4o-mini",
            "messages": [
                user("What is 2+2?"),
                {"role": "assistant", "content": "4"},
                user("And times 3?"),
                {"role": "assistant", "content": "12"},
                user("In French?"),
            ],
        },
    ]

    # GET answers the very object create returned, under the same id.
    for response in (first, second, third):
        assert client.responses.retrieve(response.id).model_dump() == response.model_dump()

    record = stored(redis_sync, gw, second.id)
    assert set(record) == {"owner", "meta", "input", "output", "body"}
    assert record["owner"] == key_id(GATEWAY_KEY)
    meta = record["meta"]
    message_id = record["input"][0]["id"]
    assert meta == {
        "id": second.id,
        "owner": key_id(GATEWAY_KEY),
        "model": "chat-model",
        "deployment": "fake-openai/gpt-4o-mini",
        "api": "chat",
        "status": "completed",
        "created_at": 1_800_000_000,
        "upstream_id": None,
        "parent": first.id,
        "depth": 1,
        "block": [first.id],
        "tails": [],
        "chain_touched_at": 1_800_000_000.0,
        "minted": [0],
        "calls": [],
        "context_tokens": 11 - 3,  # the turn's usage, less its instructions ("Be terse.")
        # The chain's history list, started by its root; this turn is its second entry.
        "history": first.id,
        "history_length": 2,
    }
    assert record["input"] == [
        {
            "id": message_id,
            "type": "message",
            "role": "user",
            "content": [{"type": "input_text", "text": "And times 3?"}],
        }
    ]
    assert message_id.startswith("msg_")
    # The full object as the client received it; its output is stored once, in its own field.
    assert record["output"] == second_json["output"]
    assert record["body"] == {**second_json, "output": []}
    assert record["body"]["instructions"] == "Be terse."
    assert record["body"]["usage"] == {
        "input_tokens": 10,
        "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
        "output_tokens": 1,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": 11,
    }

    # input_items: every item the response was generated from (the chain's inputs and outputs,
    # then its own input; never instructions), newest first by default.
    first_record = stored(redis_sync, gw, first.id)
    expected = [*first_record["input"], *first_record["output"], *record["input"]]
    page = client.responses.input_items.list(second.id)
    assert [item.id for item in page.data] == [item["id"] for item in reversed(expected)]
    assert [item.id for item in page.data] == [message_id, first.output[0].id, first_record["input"][0]["id"]]
    raw_page = json.loads(client.responses.input_items.with_raw_response.list(second.id, order="asc").content)
    assert raw_page == {
        "object": "list",
        "data": expected,
        "first_id": expected[0]["id"],
        "last_id": message_id,
        "has_more": False,
    }


def test_streamed_function_calls_are_recorded_and_replayed(
    gw: RunningGateway, fake: FakeProviders, redis_sync: redis.Redis
) -> None:
    client = gw.openai()
    fake.script(
        [
            {
                "reply": {
                    "tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}, "id": "call_w1"}]
                }
            },
            {"reply": {"text": "It is sunny in Paris.", "chunks": ["It is ", "sunny ", "in Paris."]}},
        ]
    )
    with client.responses.stream(
        model="chat-model", input="Weather in Paris?", tools=[WEATHER_TOOL], instructions="Use tools."
    ) as stream:
        types = [event.type for event in stream]
        first = stream.get_final_response()
    assert types == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.function_call_arguments.delta",  # '{"city":"Paris"}' in one 16-character fragment
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
    ]
    [call] = first.output
    assert call.type == "function_call"
    assert (call.call_id, call.name, json.loads(call.arguments)) == (
        "call_w1",
        "get_weather",
        {"city": "Paris"},
    )

    # The record holds the streamed function call, whole (the issue behind lost tool calls).
    assert stored(redis_sync, gw, first.id)["output"] == [
        {
            "id": call.id,
            "type": "function_call",
            "status": "completed",
            "call_id": "call_w1",
            "name": "get_weather",
            "arguments": '{"city":"Paris"}',
        }
    ]
    assert call.id is not None and call.id.startswith("fc_")
    assert stored(redis_sync, gw, first.id)["meta"]["calls"] == ["call_w1"]

    with client.responses.stream(
        model="chat-model",
        previous_response_id=first.id,
        input=[{"type": "function_call_output", "call_id": "call_w1", "output": '{"sky": "sunny"}'}],
        tools=[WEATHER_TOOL],
    ) as stream:
        deltas = [event.delta for event in stream if event.type == "response.output_text.delta"]
        second = stream.get_final_response()
    assert deltas == ["It is ", "sunny ", "in Paris."]
    assert second.output_text == "It is sunny in Paris."
    assert second.previous_response_id == first.id

    follow_up = fresh_requests(fake, CHAT_PATH)[1]
    assert follow_up["messages"] == [
        user("Weather in Paris?"),
        {
            "role": "assistant",
            "tool_calls": [
                {
                    "id": "call_w1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_w1", "content": '{"sky": "sunny"}'},
    ]
    assert follow_up["stream"] is True
    assert client.responses.retrieve(second.id).output_text == "It is sunny in Paris."


def test_a_chained_function_call_needs_its_output(gw: RunningGateway, fake: FakeProviders) -> None:
    client = gw.openai()
    fake.script(
        [{"reply": {"tool_calls": [{"name": "get_weather", "arguments": {"city": "Oslo"}, "id": "call_o1"}]}}]
    )
    first = client.responses.create(model="chat-model", input="Weather in Oslo?", tools=[WEATHER_TOOL])
    before = len(fake.requests(path=CHAT_PATH))

    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model="chat-model", input="Well?", previous_response_id=first.id)

    assert caught.value.status_code == 400
    assert caught.value.body == {
        "message": "No tool output found for function call call_o1.",
        "type": "invalid_request_error",
        "param": "input",
        "code": None,
    }
    assert len(fake.requests(path=CHAT_PATH)) == before  # refused before any upstream call


def test_a_chain_moves_between_models(gw: RunningGateway, fake: FakeProviders) -> None:
    client = gw.openai()
    first = client.responses.create(model="chat-model", input="Hello")
    second = client.responses.create(model="llama", input="Who are you?", previous_response_id=first.id)
    assert second.output_text == "You said: Who are you?"
    [sent] = fresh_requests(fake, VLLM_CHAT_PATH)
    assert sent["model"] == "meta-llama/Llama-3.1-8B-Instruct"
    assert sent["messages"] == [
        user("Hello"),
        {"role": "assistant", "content": "You said: Hello"},
        user("Who are you?"),
    ]


def test_store_false_is_answered_but_never_recorded(
    gw: RunningGateway, fake: FakeProviders, redis_sync: redis.Redis
) -> None:
    client = gw.openai()
    response = client.responses.create(model="chat-model", input="Forget me", store=False)
    assert response.store is False
    assert response.output_text == "You said: Forget me"
    assert redis_sync.exists(record_key(gw, response.id)) == 0
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(response.id)
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model="chat-model", input="Again", previous_response_id=response.id)
    assert caught.value.code == "previous_response_not_found"


def test_store_false_follow_up_of_a_stored_response_replays(
    gw: RunningGateway, fake: FakeProviders, redis_sync: redis.Redis
) -> None:
    client = gw.openai()
    first = client.responses.create(model="chat-model", input="Remember 7")
    second = client.responses.create(
        model="chat-model", input="What number?", previous_response_id=first.id, store=False
    )
    assert second.previous_response_id == first.id and second.store is False
    assert fresh_requests(fake, CHAT_PATH)[1]["messages"] == [
        user("Remember 7"),
        {"role": "assistant", "content": "You said: Remember 7"},
        user("What number?"),
    ]
    assert redis_sync.exists(record_key(gw, second.id)) == 0


def test_delete_then_everything_says_not_found(
    gw: RunningGateway, fake: FakeProviders, redis_sync: redis.Redis
) -> None:
    client = gw.openai()
    response = client.responses.create(model="chat-model", input="Short-lived")
    assert redis_sync.exists(record_key(gw, response.id)) == 1

    deleted = client.responses.with_raw_response.delete(response.id)
    assert deleted.status_code == 200
    assert json.loads(deleted.content) == {"id": response.id, "object": "response", "deleted": True}
    assert redis_sync.exists(record_key(gw, response.id)) == 0

    with pytest.raises(openai.NotFoundError) as caught:
        client.responses.retrieve(response.id)
    assert caught.value.body == {
        "message": f"No response found with id '{response.id}'.",
        "type": "invalid_request_error",
        "param": "response_id",
        "code": "response_not_found",
    }
    with pytest.raises(openai.NotFoundError):
        client.responses.delete(response.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.input_items.list(response.id)
    with pytest.raises(openai.BadRequestError) as chained:
        client.responses.create(model="chat-model", input="Again", previous_response_id=response.id)
    assert chained.value.body == {
        "message": f"Previous response with id '{response.id}' not found.",
        "type": "invalid_request_error",
        "param": "previous_response_id",
        "code": "previous_response_not_found",
    }
