"""The Responses API fake: bodies, the event sequence, the store, chaining and its errors."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import openai
import pytest

from fake_providers import FakeOptions
from fake_providers.testing import FakeProviders, parse_sse

RESPONSES = "/openai/v1/responses"
HEX48 = "[0-9a-f]{48}"
WEATHER: Any = {
    "type": "function",
    "name": "get_weather",
    "description": "Weather in a city",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
        "additionalProperties": False,
    },
    "strict": True,
}
REQUIRED_FIELDS = (
    "id",
    "object",
    "created_at",
    "error",
    "incomplete_details",
    "instructions",
    "model",
    "tools",
    "output",
    "parallel_tool_calls",
    "metadata",
    "tool_choice",
    "temperature",
    "top_p",
)


def error(message: str, param: str | None, code: str | None) -> dict[str, Any]:
    return {"error": {"message": message, "type": "invalid_request_error", "param": param, "code": code}}


def not_found(response_id: str) -> dict[str, Any]:
    return error(
        f"Previous response with id '{response_id}' not found.",
        "previous_response_id",
        "previous_response_not_found",
    )


def test_create_returns_the_full_response_object(http: httpx.Client) -> None:
    response = http.post(
        RESPONSES, json={"model": "gpt-4o-mini", "input": "hello there", "instructions": "Be brief."}
    )
    assert response.status_code == 200
    assert re.fullmatch("req_[0-9a-f]{32}", response.headers["x-request-id"])
    body = response.json()
    assert re.fullmatch("resp_" + HEX48, body["id"])
    message = body["output"][0]
    assert re.fullmatch("msg_" + HEX48, message["id"])
    assert set(REQUIRED_FIELDS) <= set(body)
    created = body["created_at"]
    assert body == {
        "id": body["id"],
        "object": "response",
        "created_at": created,
        "status": "completed",
        "background": False,
        "completed_at": created,
        "error": None,
        "frequency_penalty": 0.0,
        "incomplete_details": None,
        "instructions": "Be brief.",
        "max_output_tokens": None,
        "max_tool_calls": None,
        "model": "gpt-4o-mini",
        "output": [
            {
                "id": message["id"],
                "type": "message",
                "status": "completed",
                "role": "assistant",
                "content": [
                    {
                        "type": "output_text",
                        "text": "You said: hello there",
                        "annotations": [],
                        "logprobs": [],
                    }
                ],
            }
        ],
        "parallel_tool_calls": True,
        "presence_penalty": 0.0,
        "previous_response_id": None,
        "prompt_cache_key": None,
        "prompt_cache_retention": None,
        "reasoning": {"effort": None, "summary": None},
        "safety_identifier": None,
        "service_tier": "default",
        "store": True,
        "temperature": 1.0,
        "text": {"format": {"type": "text"}, "verbosity": "medium"},
        "tool_choice": "auto",
        "tools": [],
        "top_logprobs": 0,
        "top_p": 1.0,
        "truncation": "disabled",
        # "Be brief." (3) + "hello there" (3) in, "You said: hello there" (6) out.
        "usage": {
            "input_tokens": 6,
            "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
            "output_tokens": 6,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": 12,
        },
        "user": None,
        "metadata": {},
    }
    # OpenAI's key order: id, object, created_at, status, the rest alphabetically, metadata last.
    keys = list(body)
    assert keys[:4] == ["id", "object", "created_at", "status"]
    assert keys[4:-1] == sorted(keys[4:-1])
    assert keys[-1] == "metadata"
    assert list(body["usage"]) == [
        "input_tokens",
        "input_tokens_details",
        "output_tokens",
        "output_tokens_details",
        "total_tokens",
    ]


def test_the_sdk_reads_text_and_usage(client: openai.OpenAI) -> None:
    response = client.responses.create(model="gpt-4o-mini", input="hi")
    assert response.output_text == "You said: hi"
    assert response.usage is not None and response.usage.input_tokens == 1


TEXT_EVENTS = [
    "response.created",
    "response.in_progress",
    "response.output_item.added",
    "response.content_part.added",
    "response.output_text.delta",
    "response.output_text.delta",
    "response.output_text.delta",
    "response.output_text.delta",
    "response.output_text.done",
    "response.content_part.done",
    "response.output_item.done",
    "response.completed",
]


def test_stream_event_sequence_on_the_wire(http: httpx.Client) -> None:
    response = http.post(RESPONSES, json={"model": "gpt-4o-mini", "input": "one two", "stream": True})
    assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
    events = parse_sse(response.text)
    assert [event.event for event in events] == TEXT_EVENTS
    payloads = [event.json() for event in events]
    assert [payload["type"] for payload in payloads] == TEXT_EVENTS
    assert [payload["sequence_number"] for payload in payloads] == list(range(len(TEXT_EVENTS)))
    assert "[DONE]" not in response.text
    created, in_progress = payloads[0]["response"], payloads[1]["response"]
    assert created == in_progress
    assert (created["status"], created["output"], created["usage"], created["completed_at"]) == (
        "in_progress",
        [],
        None,
        None,
    )
    item_id = payloads[2]["item"]["id"]
    assert payloads[2]["item"] == {
        "id": item_id,
        "type": "message",
        "status": "in_progress",
        "role": "assistant",
        "content": [],
    }
    assert payloads[3] == {
        "type": "response.content_part.added",
        "sequence_number": 3,
        "item_id": item_id,
        "output_index": 0,
        "content_index": 0,
        "part": {"type": "output_text", "text": "", "annotations": [], "logprobs": []},
    }
    assert [payload["delta"] for payload in payloads[4:8]] == ["You ", "said: ", "one ", "two"]
    assert payloads[8]["text"] == "You said: one two"
    assert payloads[4] == {
        "type": "response.output_text.delta",
        "sequence_number": 4,
        "item_id": item_id,
        "output_index": 0,
        "content_index": 0,
        "delta": "You ",
        "logprobs": [],
    }
    assert payloads[9]["part"] == {
        "type": "output_text",
        "text": "You said: one two",
        "annotations": [],
        "logprobs": [],
    }
    assert payloads[10]["item"]["status"] == "completed"
    final = payloads[11]["response"]
    assert final["status"] == "completed"
    assert final["output"] == [payloads[10]["item"]]
    assert final["usage"]["output_tokens"] == 5


def test_stream_with_the_sdk(client: openai.OpenAI) -> None:
    with client.responses.stream(model="gpt-4o-mini", input="streamed") as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_response()
    assert kinds[0] == "response.created" and kinds[-1] == "response.completed"
    assert final.output_text == "You said: streamed"


def test_done_marker_option() -> None:
    with FakeProviders(FakeOptions(responses_done_marker=True)) as fake:
        text = httpx.post(fake.url(RESPONSES), json={"model": "m", "input": "x", "stream": True}).text
    assert text.endswith("data: [DONE]\n\n")
    assert parse_sse(text)[-2].event == "response.completed"


def test_forced_function_call_stream(http: httpx.Client) -> None:
    body = {
        "model": "gpt-4o-mini",
        "input": "weather?",
        "tools": [WEATHER],
        "tool_choice": "required",
        "stream": True,
    }
    events = parse_sse(http.post(RESPONSES, json=body).text)
    names = [event.event for event in events]
    assert names == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
    ]
    payloads = [event.json() for event in events]
    added = payloads[2]["item"]
    assert re.fullmatch("fc_" + HEX48, added["id"])
    assert re.fullmatch("call_[A-Za-z0-9]{24}", added["call_id"])
    assert added == {
        "id": added["id"],
        "type": "function_call",
        "status": "in_progress",
        "arguments": "",
        "call_id": added["call_id"],
        "name": "get_weather",
    }
    assert [payload["delta"] for payload in payloads[3:5]] == ['{"city":"example', '"}']
    assert payloads[5] == {
        "type": "response.function_call_arguments.done",
        "sequence_number": 5,
        "item_id": added["id"],
        "output_index": 0,
        "name": "get_weather",
        "arguments": '{"city":"example"}',
    }
    assert payloads[6]["item"] == {**added, "status": "completed", "arguments": '{"city":"example"}'}
    assert payloads[7]["response"]["tools"] == [{**WEATHER}]


def test_tools_are_echoed_flat_with_strict_true_by_default(client: openai.OpenAI) -> None:
    loose: Any = {key: value for key, value in WEATHER.items() if key != "strict"}
    response = client.responses.create(model="gpt-4o-mini", input="x", tools=[loose])
    assert response.tools[0].model_dump(exclude_none=True, exclude_unset=True) == {**WEATHER}


def test_strict_tool_schema_is_validated(client: openai.OpenAI) -> None:
    tool: Any = {**WEATHER, "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model="gpt-4o-mini", input="x", tools=[tool])
    body: Any = caught.value.body
    assert body["param"] == "tools[0].parameters"
    assert body["code"] == "invalid_function_parameters"
    assert body["message"].startswith("Invalid schema for function 'get_weather': ")


def test_scripted_parallel_calls_and_the_chained_tool_results(
    providers: FakeProviders, client: openai.OpenAI
) -> None:
    providers.script(
        [
            {
                "reply": {
                    "tool_calls": [
                        {"name": "get_weather", "arguments": {"city": "Oslo"}},
                        {"name": "get_weather"},
                    ]
                }
            }
        ]
    )
    first = client.responses.create(model="gpt-4o-mini", input="two cities", tools=[WEATHER])
    calls = [item for item in first.output if item.type == "function_call"]
    assert [(call.name, call.arguments) for call in calls] == [
        ("get_weather", '{"city":"Oslo"}'),
        ("get_weather", '{"city":"example"}'),
    ]
    outputs: Any = [
        {"type": "function_call_output", "call_id": call.call_id, "output": f"sunny{index}"}
        for index, call in enumerate(calls)
    ]
    second = client.responses.create(
        model="gpt-4o-mini", input=outputs, previous_response_id=first.id, tools=[WEATHER]
    )
    assert second.output_text == "Tool results: get_weather returned sunny0; get_weather returned sunny1"


def test_chained_function_call_without_output_is_refused(client: openai.OpenAI) -> None:
    first = client.responses.create(model="gpt-4o-mini", input="x", tools=[WEATHER], tool_choice="required")
    call_id = first.output[0].call_id  # type: ignore[union-attr]
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model="gpt-4o-mini", input="no output", previous_response_id=first.id)
    assert caught.value.response.json() == error(
        f"No tool output found for function call {call_id}.", "input", None
    )


def test_chain_rebuilds_context_and_rebills_input(client: openai.OpenAI) -> None:
    first = client.responses.create(model="gpt-4o-mini", input="first turn", instructions="Answer politely.")
    second = client.responses.create(model="gpt-4o-mini", input="second turn", previous_response_id=first.id)
    assert second.output_text == "You said: second turn"
    assert second.instructions is None  # instructions do not carry over
    assert second.previous_response_id == first.id
    # The same history sent statelessly costs the same input tokens.
    stateless = client.responses.create(
        model="gpt-4o-mini",
        input=[
            {"role": "user", "content": "first turn"},
            {"role": "assistant", "content": "You said: first turn"},
            {"role": "user", "content": "second turn"},
        ],
    )
    assert second.usage is not None and stateless.usage is not None and first.usage is not None
    assert second.usage.input_tokens == stateless.usage.input_tokens == 3 + 5 + 3
    assert first.usage.input_tokens == 4 + 3  # its own instructions counted once, here only
    third = client.responses.create(model="gpt-4o-mini", input="third", previous_response_id=second.id)
    assert (
        third.usage is not None and third.usage.input_tokens == 11 + 6 + 2
    )  # + "You said: second turn" + "third"


def test_store_false_is_neither_retrievable_nor_chainable(client: openai.OpenAI) -> None:
    unstored = client.responses.create(model="gpt-4o-mini", input="x", store=False)
    assert unstored.model_dump()["store"] is False
    with pytest.raises(openai.NotFoundError) as missing:
        client.responses.retrieve(unstored.id)
    assert missing.value.response.json() == {
        "error": {
            "message": f"No response found with id '{unstored.id}'.",
            "type": "invalid_request_error",
            "param": "response_id",
            "code": "response_not_found",
        }
    }
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model="gpt-4o-mini", input="y", previous_response_id=unstored.id)
    assert caught.value.response.json() == not_found(unstored.id)


def test_retrieve_then_delete(client: openai.OpenAI, http: httpx.Client) -> None:
    created = client.responses.create(model="gpt-4o-mini", input="keep me")
    assert client.responses.retrieve(created.id) == created
    deleted = http.delete(f"{RESPONSES}/{created.id}")
    assert deleted.status_code == 200
    assert deleted.json() == {"id": created.id, "object": "response", "deleted": True}
    assert http.delete(f"{RESPONSES}/{created.id}").status_code == 404
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(created.id)
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model="gpt-4o-mini", input="y", previous_response_id=created.id)
    assert caught.value.response.json() == not_found(created.id)


def test_forgetting_a_response(providers: FakeProviders, client: openai.OpenAI) -> None:
    created = client.responses.create(model="gpt-4o-mini", input="remember")
    assert providers.stored_responses() == [created.id]
    assert providers.forget_response(created.id) is True
    assert providers.forget_response(created.id) is False
    assert providers.stored_responses() == []
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model="gpt-4o-mini", input="again", previous_response_id=created.id)
    assert caught.value.status_code == 400
    assert caught.value.response.json() == not_found(created.id)


def test_unknown_previous_response(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model="gpt-4o-mini", input="y", previous_response_id="resp_abc")
    assert caught.value.response.json() == not_found("resp_abc")


def test_previous_response_and_conversation_are_exclusive(http: httpx.Client) -> None:
    body = {"model": "m", "input": "x", "previous_response_id": "resp_a", "conversation": "conv_b"}
    response = http.post(RESPONSES, json=body)
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"


def test_input_items_paging(client: openai.OpenAI, http: httpx.Client) -> None:
    texts = [f"m{index}" for index in range(5)]
    created = client.responses.create(
        model="gpt-4o-mini", input=[{"role": "user", "content": text} for text in texts]
    )
    everything = http.get(f"{RESPONSES}/{created.id}/input_items").json()
    assert [item["content"][0]["text"] for item in everything["data"]] == texts[::-1]  # desc by default
    assert everything["object"] == "list" and everything["has_more"] is False
    ids = [item["id"] for item in everything["data"]]
    assert all(re.fullmatch("msg_" + HEX48, item_id) for item_id in ids)
    assert everything["data"][0] == {
        "id": ids[0],
        "type": "message",
        "role": "user",
        "content": [{"type": "input_text", "text": "m4"}],
    }
    page = http.get(f"{RESPONSES}/{created.id}/input_items", params={"limit": 2, "order": "asc"}).json()
    assert [item["content"][0]["text"] for item in page["data"]] == ["m0", "m1"]
    assert (page["first_id"], page["last_id"], page["has_more"]) == (ids[4], ids[3], True)
    rest = http.get(
        f"{RESPONSES}/{created.id}/input_items", params={"limit": 2, "order": "asc", "after": page["last_id"]}
    ).json()
    assert [item["content"][0]["text"] for item in rest["data"]] == ["m2", "m3"]
    with_sdk = client.responses.input_items.list(created.id, limit=3)
    assert [item.id for item in with_sdk.data] == ids[:3]
    too_many = http.get(f"{RESPONSES}/{created.id}/input_items", params={"limit": 101})
    assert too_many.status_code == 400
    assert too_many.json() == error(
        "Invalid 'limit': integer above maximum value. Expected a value <= 100, but got 101 instead.",
        "limit",
        "integer_above_max_value",
    )
    assert http.get(f"{RESPONSES}/{created.id}/input_items", params={"limit": 0}).status_code == 400


def test_max_output_tokens_gives_an_incomplete_response(client: openai.OpenAI, http: httpx.Client) -> None:
    long_input = "word " * 40
    response = client.responses.create(model="gpt-4o-mini", input=long_input, max_output_tokens=16)
    assert response.status == "incomplete"
    assert (
        response.incomplete_details is not None and response.incomplete_details.reason == "max_output_tokens"
    )
    assert len(response.output_text) == 64
    events = parse_sse(
        http.post(
            RESPONSES, json={"model": "m", "input": long_input, "max_output_tokens": 16, "stream": True}
        ).text
    )
    assert events[-1].event == "response.incomplete"
    assert events[-1].json()["response"]["incomplete_details"] == {"reason": "max_output_tokens"}
    too_small = http.post(RESPONSES, json={"model": "m", "input": "x", "max_output_tokens": 15})
    assert too_small.json()["error"]["code"] == "integer_below_min_value"


def test_json_schema_format_answers_with_an_example(client: openai.OpenAI) -> None:
    schema = {
        "type": "object",
        "properties": {"n": {"type": "integer"}},
        "required": ["n"],
        "additionalProperties": False,
    }
    response = client.responses.create(
        model="gpt-4o-mini",
        input="x",
        text={"format": {"type": "json_schema", "name": "count", "schema": schema, "strict": True}},
    )
    assert json.loads(response.output_text) == {"n": 1}


def test_response_format_has_moved(http: httpx.Client) -> None:
    response = http.post(
        RESPONSES, json={"model": "m", "input": "x", "response_format": {"type": "json_object"}}
    )
    assert response.status_code == 400
    assert response.json()["error"]["message"].startswith(
        "Unsupported parameter: 'response_format'. In the Responses API, this parameter has moved to 'text.format'."
    )


# --- faults ---


def test_http_fault_is_an_openai_error(client: openai.OpenAI) -> None:
    with pytest.raises(openai.RateLimitError) as caught:
        client.responses.create(model="fault-429", input="x")
    assert caught.value.response.headers["retry-after"] == "1"
    assert caught.value.response.json()["error"]["code"] == "rate_limit_exceeded"


def test_context_length_fault_speaks_responses(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model="fault-context-length", input="x")
    assert caught.value.response.json() == error(
        "Your input exceeds the context window of this model. Please adjust your input and try again.",
        "input",
        "context_length_exceeded",
    )


def inband_events(http: httpx.Client, model: str) -> list[Any]:
    response = http.post(RESPONSES, json={"model": model, "input": "x", "stream": True})
    assert response.status_code == 200
    return [(event.event, event.json()) for event in parse_sse(response.text)]


def test_inband_error_then_response_failed(http: httpx.Client) -> None:
    events = inband_events(http, "fault-inband-503")
    assert [name for name, _ in events] == [
        "response.created",
        "response.in_progress",
        "error",
        "response.failed",
    ]
    assert events[2][1] == {
        "type": "error",
        "sequence_number": 2,
        "error": {
            "type": "service_unavailable_error",
            "code": "server_is_overloaded",
            "message": "Our servers are currently overloaded. Please try again later.",
            "param": None,
        },
    }
    failed = events[3][1]
    assert failed["sequence_number"] == 3
    assert failed["response"]["id"] == events[0][1]["response"]["id"]
    assert failed["response"]["status"] == "failed"
    assert failed["response"]["usage"] is None
    # `response.error.code` is one of OpenAI's ResponseErrorCode values; the event keeps the original.
    assert failed["response"]["error"] == {
        "code": "server_error",
        "message": "Our servers are currently overloaded. Please try again later.",
    }


def test_inband_context_length_variant(http: httpx.Client) -> None:
    events = inband_events(http, "fault-inband-context-length")
    assert events[2][1]["error"] == {
        "type": "invalid_request_error",
        "code": "context_length_exceeded",
        "message": "Your input exceeds the context window of this model. Please adjust your input and try again.",
        "param": "input",
    }


def test_real_overflow_streams_the_inband_error(http: httpx.Client) -> None:
    big = "x" * 4 * 5000
    response = http.post(RESPONSES, json={"model": "gpt-3.5-turbo", "input": big, "stream": True})
    names = [event.event for event in parse_sse(response.text)]
    assert names == ["response.created", "response.in_progress", "error", "response.failed"]
    refused = http.post(RESPONSES, json={"model": "gpt-3.5-turbo", "input": big})
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "context_length_exceeded"


def test_inband_error_raises_in_the_sdk(client: openai.OpenAI) -> None:
    stream = client.responses.create(model="fault-inband-500", input="x", stream=True)
    events = iter(stream)
    assert [next(events).type for _ in range(2)] == ["response.created", "response.in_progress"]
    with pytest.raises(openai.APIError, match="The server had an error while processing your request"):
        next(events)


def test_cut_stream_ends_early_and_is_not_stored(providers: FakeProviders) -> None:
    lines: list[str] = []
    with (
        httpx.Client(base_url=providers.base_url, timeout=5.0) as http,
        http.stream("POST", RESPONSES, json={"model": "fault-cut", "input": "x", "stream": True}) as response,
        pytest.raises(httpx.RemoteProtocolError),
    ):
        lines.extend(line for line in response.iter_lines() if line)
    assert [line for line in lines if line.startswith("event:")] == [
        "event: response.created",
        "event: response.in_progress",
    ]
    assert providers.stored_responses() == []


def test_malformed_event(http: httpx.Client) -> None:
    text = http.post(RESPONSES, json={"model": "fault-malformed", "input": "x", "stream": True}).text
    events = parse_sse(text)
    with pytest.raises(json.JSONDecodeError):
        json.loads(events[2].data)
    assert events[-1].event == "response.completed"


@pytest.mark.parametrize("name", ["stream_id", "generate", "top_k"])
def test_arguments_the_responses_api_does_not_take_are_refused(http: httpx.Client, name: str) -> None:
    answer = http.post(RESPONSES, json={"model": "gpt-4o-mini", "input": "hi", name: "x"})
    assert answer.status_code == 400
    assert answer.json() == {
        "error": {
            "message": f"Unknown parameter: '{name}'.",
            "type": "invalid_request_error",
            "param": name,
            "code": "unknown_parameter",
        }
    }


def test_the_arguments_the_responses_api_takes_are_the_sdks() -> None:
    import typing

    from openai.types.responses import response_create_params

    from fake_providers.openai.responses_request import RESPONSES_ARGUMENTS

    sdk = set(typing.get_type_hints(response_create_params.ResponseCreateParamsStreaming))
    assert set(RESPONSES_ARGUMENTS) - sdk == {"frequency_penalty", "presence_penalty", "client_metadata"}
    assert sdk <= RESPONSES_ARGUMENTS
