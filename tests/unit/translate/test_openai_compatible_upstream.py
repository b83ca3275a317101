"""Responses requests translated for an ``openai-compatible`` upstream, sent to the fake's strict
template server (string-only content, no ``developer`` role, no ``content: null``, ``max_tokens``
alone caps the output), and their answers translated back."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from fake_providers.testing import FakeProviders, parse_sse
from gateway.translate import (
    ChatToResponsesStream,
    SequentialIds,
    chat_request_from_responses,
    input_items_from_input,
    response_from_chat_completion,
)
from tests.fixtures.openresponses import validate_events, validate_response

STRICT = "/llamacpp/v1/chat/completions"
COMPATIBLE = "openai-compatible"
LONG = " ".join(f"word{n}" for n in range(40))
CRM = {
    "type": "namespace",
    "name": "crm",
    "description": "The CRM",
    "tools": [
        {
            "type": "function",
            "name": "lookup",
            "description": "Find a customer",
            "parameters": {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]},
        }
    ],
}


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    with FakeProviders() as fake, httpx.Client(base_url=fake.base_url, timeout=10.0) as client:
        yield client


def send(
    http: httpx.Client, request: dict[str, Any], items: list[dict[str, Any]], kind: str
) -> httpx.Response:
    body = chat_request_from_responses(request, items, upstream_kind=kind)
    body["model"] = "gemma-3-1b-it"
    return http.post(STRICT, json=body)


def answer(http: httpx.Client, request: dict[str, Any], items: list[dict[str, Any]]) -> dict[str, Any]:
    sent = send(http, request, items, COMPATIBLE)
    assert sent.status_code == 200, sent.text
    response = response_from_chat_completion(
        sent.json(),
        request=request,
        response_id="resp_1",
        created_at=100,
        ids=SequentialIds(),
        previous_response_id=None,
        completed_at=101,
    )
    validate_response(response)
    return response


def text_of(response: dict[str, Any]) -> str:
    return "".join(part["text"] for item in response["output"] for part in item.get("content", ()))


def test_instructions_developer_and_string_input_reach_the_template(http: httpx.Client) -> None:
    request = {
        "model": "m",
        "instructions": "Be brief.",
        "input": [
            {"role": "developer", "content": [{"type": "input_text", "text": "Answer in French."}]},
            {"role": "user", "content": [{"type": "input_text", "text": "Hello there"}]},
        ],
    }
    body = chat_request_from_responses(request, request["input"], upstream_kind=COMPATIBLE)
    assert body["messages"] == [
        {"role": "system", "content": "Be brief.\n\nAnswer in French."},
        {"role": "user", "content": "Hello there"},
    ]
    assert text_of(answer(http, request, request["input"])) == "You said: Hello there"
    # The same request as an OpenAI upstream gets it (developer role) is refused by the template.
    assert send(http, request, request["input"], "openai").status_code == 400


def test_max_output_tokens_caps_the_answer_through_max_tokens(http: httpx.Client) -> None:
    request = {"model": "m", "input": LONG, "max_output_tokens": 16}
    items = input_items_from_input(request["input"])
    body = chat_request_from_responses(request, items, upstream_kind=COMPATIBLE)
    assert (body["max_tokens"], body["max_completion_tokens"]) == (16, 16)
    capped = answer(http, request, items)
    assert capped["status"] == "incomplete"
    assert capped["incomplete_details"] == {"reason": "max_output_tokens"}
    # Sent as max_completion_tokens alone (what an OpenAI upstream gets), the cap is ignored.
    ignored = send(http, request, items, "openai").json()
    assert ignored["choices"][0]["finish_reason"] == "stop"
    assert "max_tokens" not in chat_request_from_responses(request, items)


def test_a_tool_loop_replays_the_call_without_content(http: httpx.Client) -> None:
    weather = {
        "type": "function",
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    }
    first_request = {"model": "m", "input": "Weather?", "tools": [weather], "tool_choice": "required"}
    first_items = input_items_from_input(first_request["input"])
    first = answer(http, first_request, first_items)
    [call] = first["output"]
    assert (call["type"], call["name"]) == ("function_call", "get_weather")

    items = [
        *first_items,
        call,
        {"type": "function_call_output", "call_id": call["call_id"], "output": "sunny"},
    ]
    second_request = {"model": "m", "input": [], "tools": [weather]}
    body = chat_request_from_responses(second_request, items, upstream_kind=COMPATIBLE)
    assert body["messages"][1] == {
        "role": "assistant",
        "tool_calls": [
            {
                "id": call["call_id"],
                "type": "function",
                "function": {"name": "get_weather", "arguments": call["arguments"]},
            }
        ],
    }
    assert text_of(answer(http, second_request, items)) == "Tool results: get_weather returned sunny"


def test_a_codex_like_request_with_namespaces_and_hosted_tools(http: httpx.Client) -> None:
    request = {
        "model": "m",
        "instructions": "You are a coding agent.",
        "input": [{"role": "developer", "content": "Use the CRM."}, {"role": "user", "content": "Find Ada"}],
        "tools": [{"type": "web_search"}, CRM],
        "tool_choice": "required",
        "parallel_tool_calls": False,
        "store": False,
        "include": ["reasoning.encrypted_content"],
        "reasoning": {"effort": "medium", "summary": "auto"},
        "stream": True,
    }
    body = chat_request_from_responses(request, request["input"], upstream_kind=COMPATIBLE)
    assert [tool["function"]["name"] for tool in body["tools"]] == ["crm__lookup"]
    body["model"] = "gemma-3-1b-it"
    sent = http.post(STRICT, json=body)
    assert sent.status_code == 200, sent.text

    stream = ChatToResponsesStream(
        request=request, response_id="resp_1", created_at=100, ids=SequentialIds(), previous_response_id=None
    )
    events = stream.start()
    for event in parse_sse(sent.text):
        if event.data != "[DONE]":
            events += stream.feed(event.json())
    events += stream.finish(completed_at=101)
    validate_events(events)
    [call] = events[-1]["response"]["output"]
    assert (call["namespace"], call["name"]) == ("crm", "lookup")
    assert events[-1]["response"]["tools"][0] == {"type": "web_search"}
