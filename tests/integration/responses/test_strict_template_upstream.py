"""The Responses API on an ``openai-compatible`` upstream whose chat template takes only strings
(the fake's strict template server): prompts arrive as strings, tool loops replay their calls
without ``content: null``, a Codex-like request with hosted and namespaced tools works, and every
object and event the client gets validates against the Responses schema."""

from __future__ import annotations

from typing import Any

import pytest

from fake_providers.testing import FakeProviders
from tests.conftest import GatewayFactory, RunningGateway
from tests.fixtures.openresponses import validate_events, validate_response
from tests.integration.responses.support import WEATHER_TOOL, call, post, responses_config, sse_events

STRICT_CHAT = "/llamacpp/v1/chat/completions"


@pytest.fixture
def gw(gateway_factory: GatewayFactory, fake: FakeProviders, redis_url: str) -> RunningGateway:
    config = responses_config(fake, redis_url)
    config["providers"].append(
        {"name": "fake-llamacpp", "kind": "openai-compatible", "base_url": fake.base_url + "/llamacpp/v1"}
    )
    config["models"].append(
        {"name": "gemma", "provider": "fake-llamacpp", "upstream_model": "gemma-3-1b-it", "api": "chat"}
    )
    return gateway_factory(config)


def sent(fake: FakeProviders) -> list[dict[str, Any]]:
    return [entry.body for entry in fake.requests(path=STRICT_CHAT)]


def test_the_prompt_arrives_as_a_string(gw: RunningGateway, fake: FakeProviders) -> None:
    answer = post(gw, {"model": "gemma", "input": "Hello there", "instructions": "Be brief."})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    validate_response(body)
    assert body["output"][0]["content"][0]["text"] == "You said: Hello there"
    assert sent(fake)[-1]["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hello there"},
    ]
    retrieved = call(gw, "GET", f"/responses/{body['id']}")
    validate_response(retrieved.json())


def test_a_streamed_tool_loop(gw: RunningGateway, fake: FakeProviders) -> None:
    first = post(
        gw,
        {
            "model": "gemma",
            "input": "Weather?",
            "tools": [WEATHER_TOOL],
            "tool_choice": "required",
            "stream": True,
        },
    )
    assert first.status_code == 200, first.text
    events = [data for _, data in sse_events(first.text)]
    validate_events(events)
    final = events[-1]["response"]
    [function_call] = final["output"]
    assert function_call["type"] == "function_call"

    second = post(
        gw,
        {
            "model": "gemma",
            "previous_response_id": final["id"],
            "tools": [WEATHER_TOOL],
            "input": [
                {"type": "function_call_output", "call_id": function_call["call_id"], "output": "sunny"}
            ],
            "stream": True,
        },
    )
    assert second.status_code == 200, second.text
    events = [data for _, data in sse_events(second.text)]
    validate_events(events)
    assert (
        events[-1]["response"]["output"][0]["content"][0]["text"]
        == "Tool results: get_weather returned sunny"
    )
    replayed = sent(fake)[-1]["messages"][1]
    assert replayed["role"] == "assistant" and "content" not in replayed


def test_a_codex_like_request(gw: RunningGateway, fake: FakeProviders) -> None:
    namespace = {
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
    answer = post(
        gw,
        {
            "model": "gemma",
            "instructions": "You are a coding agent.",
            "input": [{"role": "user", "content": [{"type": "input_text", "text": "Find Ada"}]}],
            "tools": [{"type": "web_search"}, namespace],
            "tool_choice": "required",
            "parallel_tool_calls": False,
            "store": False,
            "include": ["reasoning.encrypted_content"],
            "stream": True,
        },
    )
    assert answer.status_code == 200, answer.text
    events = [data for _, data in sse_events(answer.text)]
    validate_events(events)
    [function_call] = events[-1]["response"]["output"]
    assert (function_call["namespace"], function_call["name"]) == ("crm", "lookup")
    assert [tool["function"]["name"] for tool in sent(fake)[-1]["tools"]] == ["crm__lookup"]


def test_a_required_hosted_tool_is_a_clear_400(gw: RunningGateway) -> None:
    answer = post(
        gw,
        {"model": "gemma", "input": "Search", "tools": [{"type": "web_search"}], "tool_choice": "required"},
    )
    assert answer.status_code == 400
    assert answer.json()["error"]["param"] == "tool_choice"


def test_developer_messages_join_the_one_opening_system_message(
    gw: RunningGateway, fake: FakeProviders
) -> None:
    answer = post(
        gw,
        {
            "model": "gemma",
            "instructions": "Be brief.",
            "input": [
                {"role": "developer", "content": "Answer in English."},
                {"role": "user", "content": "Hello there"},
            ],
        },
    )
    assert answer.status_code == 200, answer.text
    validate_response(answer.json())
    assert sent(fake)[-1]["messages"] == [
        {"role": "system", "content": "Be brief.\n\nAnswer in English."},
        {"role": "user", "content": "Hello there"},
    ]


def test_the_output_cap_reaches_the_upstream_as_max_tokens(gw: RunningGateway, fake: FakeProviders) -> None:
    answer = post(gw, {"model": "gemma", "input": "word " * 200, "max_output_tokens": 16})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    validate_response(body)
    assert body["status"] == "incomplete"
    assert body["incomplete_details"] == {"reason": "max_output_tokens"}
    upstream = sent(fake)[-1]
    assert upstream["max_tokens"] == 16
    assert upstream["max_completion_tokens"] == 16
