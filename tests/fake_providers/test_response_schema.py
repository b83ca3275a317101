"""The fake's native Responses validate against the Open Responses schema (with OpenAI's own
deviations, see ``tests/fixtures/openresponses.py``) and the OpenAI SDK's types, through its HTTP
app: every JSON body, every streamed event, the retrieved object."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from openai.types.responses import Response, ResponseStreamEvent
from pydantic import TypeAdapter

from fake_providers.testing import parse_sse
from tests.fixtures.openresponses import validate_events, validate_response

RESPONSES = "/openai/v1/responses"
_EVENT = TypeAdapter(ResponseStreamEvent)
WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "Weather in a city",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
        "additionalProperties": False,
    },
}
IMAGE = "data:image/png;base64,iVBORw0KGgo="

SCENARIOS: dict[str, dict[str, Any]] = {
    "basic": {"model": "gpt-4o-mini", "input": "Say hi"},
    "system_prompt": {
        "model": "gpt-4o-mini",
        "instructions": "Answer in French.",
        "input": [{"role": "developer", "content": "Be brief."}, {"role": "user", "content": "Hello"}],
    },
    "tool_calling": {
        "model": "gpt-4o-mini",
        "input": "Weather in Paris?",
        "tools": [WEATHER],
        "tool_choice": "required",
    },
    "image_input": {
        "model": "gpt-4o-mini",
        "input": [
            {
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "What is in this picture?"},
                    {"type": "input_image", "image_url": IMAGE, "detail": "auto"},
                ],
            }
        ],
    },
    "incomplete": {"model": "gpt-4o-mini", "input": "word " * 60, "max_output_tokens": 16},
    "reasoning": {
        "model": "o4-mini",
        "input": "Think first",
        "reasoning": {"effort": "low", "summary": "auto"},
        "include": ["reasoning.encrypted_content"],
    },
    "hosted_and_namespaced_tools": {
        "model": "gpt-4o-mini",
        "input": "Find Ada",
        "tools": [
            {"type": "web_search"},
            {
                "type": "namespace",
                "name": "crm",
                "description": "The CRM",
                "tools": [{"type": "function", "name": "lookup", "parameters": {"type": "object"}}],
            },
        ],
    },
    "every_setting": {
        "model": "gpt-4o-mini",
        "input": "Give me JSON",
        "instructions": "JSON only.",
        "frequency_penalty": 0.5,
        "presence_penalty": -0.5,
        "max_output_tokens": 400,
        "max_tool_calls": 3,
        "metadata": {"team": "a"},
        "parallel_tool_calls": False,
        "prompt_cache_key": "pck-1",
        "prompt_cache_retention": "24h",
        "safety_identifier": "user-hash-1",
        "service_tier": "flex",
        "store": False,
        "temperature": 0.2,
        "text": {
            "format": {
                "type": "json_schema",
                "name": "answer",
                "schema": {
                    "type": "object",
                    "properties": {"a": {"type": "string"}},
                    "required": ["a"],
                    "additionalProperties": False,
                },
                "strict": True,
            },
            "verbosity": "low",
        },
        "top_logprobs": 2,
        "top_p": 0.9,
        "truncation": "auto",
        "user": "u-1",
    },
}

EVERY_SETTING_ECHO = {
    "frequency_penalty": 0.5,
    "instructions": "JSON only.",
    "max_output_tokens": 400,
    "max_tool_calls": 3,
    "metadata": {"team": "a"},
    "parallel_tool_calls": False,
    "presence_penalty": -0.5,
    "prompt_cache_key": "pck-1",
    "prompt_cache_retention": "24h",
    "safety_identifier": "user-hash-1",
    "service_tier": "flex",
    "store": False,
    "temperature": 0.2,
    "text": {
        "format": {
            "type": "json_schema",
            "description": None,
            "name": "answer",
            "schema": SCENARIOS["every_setting"]["text"]["format"]["schema"],
            "strict": True,
        },
        "verbosity": "low",
    },
    "top_logprobs": 2,
    "top_p": 0.9,
    "truncation": "auto",
    "user": "u-1",
}


def check_response(response: dict[str, Any], name: str) -> None:
    validate_response(response)
    Response.model_validate(response)
    if name == "every_setting":
        assert {key: response[key] for key in EVERY_SETTING_ECHO} == EVERY_SETTING_ECHO


def check_events(events: list[dict[str, Any]], name: str) -> list[str]:
    kinds = validate_events(events)
    for event in events:
        if event["type"] == "error":
            # The live API's nested form; the SDK's type describes the flat one (the schema check
            # above takes the nested form, which the OpenAI SDK reads too).
            continue
        assert _EVENT.validate_python(event).type == event["type"]
        if "response" in event:
            check_response(event["response"], name)
    assert [event["sequence_number"] for event in events] == list(range(len(events)))
    return kinds


def stream(http: httpx.Client, body: dict[str, Any]) -> list[dict[str, Any]]:
    answer = http.post(RESPONSES, json={**body, "stream": True})
    assert answer.status_code == 200, answer.text
    events = [event.json() for event in parse_sse(answer.text)]
    assert [event["type"] for event in events] == [event.event for event in parse_sse(answer.text)]
    return events


@pytest.mark.parametrize("name", SCENARIOS)
def test_json_bodies_validate(http: httpx.Client, name: str) -> None:
    answer = http.post(RESPONSES, json=SCENARIOS[name])
    assert answer.status_code == 200, answer.text
    response = answer.json()
    check_response(response, name)
    assert response["status"] == ("incomplete" if name == "incomplete" else "completed")


@pytest.mark.parametrize("name", SCENARIOS)
def test_streamed_events_validate(http: httpx.Client, name: str) -> None:
    check_events(stream(http, SCENARIOS[name]), name)


def test_multi_turn_with_a_tool_round_trip_and_retrieve(http: httpx.Client) -> None:
    first = http.post(RESPONSES, json=SCENARIOS["tool_calling"]).json()
    check_response(first, "tool_calling")
    call = first["output"][0]
    follow_up = {
        "model": "gpt-4o-mini",
        "previous_response_id": first["id"],
        "tools": [WEATHER],
        "input": [{"type": "function_call_output", "call_id": call["call_id"], "output": "18C"}],
    }
    events = stream(http, follow_up)
    check_events(events, "multi_turn")
    final = events[-1]["response"]
    assert final["previous_response_id"] == first["id"]
    retrieved = http.get(f"{RESPONSES}/{final['id']}").json()
    check_response(retrieved, "multi_turn")
    assert retrieved == final


def test_failed_stream_validates(http: httpx.Client) -> None:
    events = stream(http, {"model": "fault-inband-503", "input": "x"})
    assert check_events(events, "failed")[-2:] == ["error", "response.failed"]


def test_every_event_type_the_fake_emits_is_covered(http: httpx.Client) -> None:
    seen: set[str] = set()
    for name, body in SCENARIOS.items():
        seen |= set(check_events(stream(http, body), name))
    seen |= set(validate_events(stream(http, {"model": "fault-inband-503", "input": "x"})))
    assert seen == {
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.output_item.done",
        "response.content_part.added",
        "response.content_part.done",
        "response.output_text.delta",
        "response.output_text.done",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.reasoning_summary_part.added",
        "response.reasoning_summary_part.done",
        "response.reasoning_summary_text.delta",
        "response.reasoning_summary_text.done",
        "response.completed",
        "response.incomplete",
        "response.failed",
        "error",
    }
