"""Every Response object and stream event the translators build validates against the Open
Responses schema (with OpenAI's own deviations, see ``tests/fixtures/openresponses.py``) and
against the OpenAI SDK's types, over Chat Completions and Anthropic upstreams, as JSON and as
streams: basic text, system prompt, tool calling, image input, multi-turn, reasoning and refusal,
incomplete (max tokens), failed (in-band error), every request setting echoed.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from gateway.translate import (
    AnthropicContext,
    AnthropicToResponsesStream,
    ChatToResponsesStream,
    SequentialIds,
    anthropic_request_from_responses,
    chat_request_from_responses,
    input_items_from_input,
    response_from_anthropic_message,
    response_from_chat_completion,
)
from tests.fixtures.openresponses import validate_events, validate_response

# The keys of every Response the gateway builds, in OpenAI's order.
RESPONSE_KEYS = [
    "id",
    "object",
    "created_at",
    "status",
    "background",
    "completed_at",
    "error",
    "frequency_penalty",
    "incomplete_details",
    "instructions",
    "max_output_tokens",
    "max_tool_calls",
    "model",
    "output",
    "parallel_tool_calls",
    "presence_penalty",
    "previous_response_id",
    "prompt_cache_key",
    "prompt_cache_retention",
    "reasoning",
    "safety_identifier",
    "service_tier",
    "store",
    "temperature",
    "text",
    "tool_choice",
    "tools",
    "top_logprobs",
    "top_p",
    "truncation",
    "usage",
    "user",
    "metadata",
]

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
    "strict": True,
}
CLOCK = {"type": "function", "name": "now", "parameters": {"type": "object", "properties": {}}}
IMAGE = "data:image/png;base64,iVBORw0KGgo="

# An error object as the gateway hands it to ``fail`` (OpenAI's four keys, then its classification).
GATEWAY_ERROR = {
    "message": "Overloaded",
    "type": "server_error",
    "param": None,
    "code": "server_is_overloaded",
    "kind": "overloaded",
    "provider": "anthropic",
    "retryable": True,
    "status_code": 529,
    "detail": None,
}


@dataclass
class Part:
    kind: str  # "text" | "tool" | "reasoning" | "refusal"
    text: str = ""
    call_id: str = ""
    name: str = ""


@dataclass
class Scenario:
    name: str
    request: dict[str, Any]
    answer: list[Part]
    finish: str = "stop"  # Chat finish_reason
    chat_only: bool = False  # reasoning and refusal have no Anthropic form here
    fails: bool = False  # the stream breaks after the answer's first part
    items: list[dict[str, Any]] = field(default_factory=list)


SCENARIOS = [
    Scenario("basic", {"model": "m", "input": "Say hi"}, [Part("text", "Hello there!")]),
    Scenario(
        "system_prompt",
        {
            "model": "m",
            "instructions": "Answer in French.",
            "input": [
                {"role": "developer", "content": "Be brief."},
                {"role": "user", "content": "Hello"},
            ],
        },
        [Part("text", "Bonjour.")],
    ),
    Scenario(
        "tool_calling",
        {
            "model": "m",
            "input": "Weather in Paris and the time?",
            "tools": [WEATHER, CLOCK],
            "tool_choice": "required",
        },
        [
            Part("text", "Checking."),
            Part("tool", '{"city":"Paris"}', "call_1", "get_weather"),
            Part("tool", "{}", "call_2", "now"),
        ],
        finish="tool_calls",
    ),
    Scenario(
        "image_input",
        {
            "model": "m",
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
        [Part("text", "A red square.")],
    ),
    Scenario(
        "multi_turn",
        {"model": "m", "input": [], "tools": [WEATHER], "previous_response_id": "resp_0"},
        [Part("text", "It is 18C in Paris; sunny in Rome.")],
        items=[
            {"role": "user", "content": "Weather in Paris?"},
            {
                "type": "message",
                "id": "msg_0",
                "status": "completed",
                "role": "assistant",
                "content": [{"type": "output_text", "text": "Checking.", "annotations": []}],
            },
            {
                "type": "function_call",
                "id": "fc_0",
                "call_id": "call_0",
                "name": "get_weather",
                "arguments": '{"city":"Paris"}',
            },
            {"type": "function_call_output", "call_id": "call_0", "output": "18C"},
            {"role": "user", "content": [{"type": "input_text", "text": "And Rome?"}]},
        ],
    ),
    Scenario(
        "incomplete",
        {"model": "m", "input": "Tell me a long story", "max_output_tokens": 16},
        [Part("text", "Once upon a time")],
        finish="length",
    ),
    Scenario(
        "reasoning_and_refusal",
        {"model": "m", "input": "Do the bad thing", "reasoning": {"effort": "high", "summary": "auto"}},
        [
            Part("reasoning", "The user asks for something harmful."),
            Part("refusal", "I can't help with that."),
        ],
        chat_only=True,
    ),
    Scenario(
        "failed",
        {"model": "m", "input": "Say hi"},
        [Part("text", "Hel"), Part("text", "lo")],
        fails=True,
    ),
    Scenario(
        "namespaced_tools",
        {
            "model": "m",
            "input": "Find the customer",
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
        [Part("tool", '{"q":"Ada"}', "call_9", "crm__lookup")],
        finish="tool_calls",
    ),
    Scenario(
        "every_setting",
        {
            "model": "m",
            "input": "Give me JSON",
            "instructions": "JSON only.",
            "background": False,
            "frequency_penalty": 0.5,
            "presence_penalty": -0.5,
            "max_output_tokens": 400,
            "max_tool_calls": 3,
            "metadata": {"team": "a"},
            "parallel_tool_calls": False,
            "prompt_cache_key": "pck-1",
            "prompt_cache_retention": "24h",
            "reasoning": {"effort": "minimal", "summary": "concise"},
            "safety_identifier": "user-hash-1",
            "service_tier": "flex",
            "store": False,
            "temperature": 0.2,
            "text": {
                "format": {
                    "type": "json_schema",
                    "name": "answer",
                    "schema": {"type": "object", "properties": {"a": {"type": "string"}}},
                },
                "verbosity": "low",
            },
            "tool_choice": {"type": "function", "name": "now"},
            "tools": [CLOCK],
            "top_logprobs": 2,
            "top_p": 0.9,
            "truncation": "auto",
            "user": "u-1",
        },
        [Part("text", '{"a":"b"}')],
    ),
]

EVERY_SETTING_ECHO = {
    "background": False,
    "frequency_penalty": 0.5,
    "instructions": "JSON only.",
    "max_output_tokens": 400,
    "max_tool_calls": 3,
    "metadata": {"team": "a"},
    "model": "m",
    "parallel_tool_calls": False,
    "presence_penalty": -0.5,
    "previous_response_id": None,
    "prompt_cache_key": "pck-1",
    "prompt_cache_retention": "24h",
    "reasoning": {"effort": "minimal", "summary": "concise"},
    "safety_identifier": "user-hash-1",
    "service_tier": "flex",
    "store": False,
    "temperature": 0.2,
    "text": {
        "format": {
            "type": "json_schema",
            "description": None,
            "name": "answer",
            "schema": {"type": "object", "properties": {"a": {"type": "string"}}},
            "strict": False,
        },
        "verbosity": "low",
    },
    "tool_choice": {"type": "function", "name": "now"},
    "tools": [
        {
            "type": "function",
            "name": "now",
            "description": None,
            "parameters": {"type": "object", "properties": {}},
            "strict": False,
        }
    ],
    "top_logprobs": 2,
    "top_p": 0.9,
    "truncation": "auto",
    "user": "u-1",
}


def input_items(scenario: Scenario) -> list[dict[str, Any]]:
    return scenario.items or input_items_from_input(scenario.request["input"])


# -- what the upstream answers -----------------------------------------------------------------


def chat_message(scenario: Scenario) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": None, "refusal": None}
    texts = [p.text for p in scenario.answer if p.kind == "text"]
    if texts:
        message["content"] = "".join(texts)
    for part in scenario.answer:
        if part.kind == "reasoning":
            message["reasoning_content"] = part.text
        elif part.kind == "refusal":
            message["refusal"] = part.text
        elif part.kind == "tool":
            message.setdefault("tool_calls", []).append(
                {
                    "id": part.call_id,
                    "type": "function",
                    "function": {"name": part.name, "arguments": part.text},
                }
            )
    return message


CHAT_USAGE = {
    "prompt_tokens": 30,
    "completion_tokens": 12,
    "total_tokens": 42,
    "prompt_tokens_details": {"cached_tokens": 10},
    "completion_tokens_details": {"reasoning_tokens": 4},
}


def chat_completion(scenario: Scenario) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "up",
        "choices": [
            {
                "index": 0,
                "message": chat_message(scenario),
                "logprobs": None,
                "finish_reason": scenario.finish,
            }
        ],
        "usage": CHAT_USAGE,
    }


def _chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "up",
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
    }


def _halves(text: str) -> list[str]:
    middle = max(1, len(text) // 2)
    return [piece for piece in (text[:middle], text[middle:]) if piece]


def chat_chunks(scenario: Scenario) -> list[dict[str, Any]]:
    chunks = [_chunk({"role": "assistant", "content": ""})]
    tools = 0
    for part in scenario.answer:
        if part.kind == "tool":
            head = {"index": tools, "id": part.call_id, "type": "function", "function": {"name": part.name}}
            chunks.append(
                _chunk({"tool_calls": [{**head, "function": {"name": part.name, "arguments": ""}}]})
            )
            for piece in _halves(part.text):
                chunks.append(_chunk({"tool_calls": [{"index": tools, "function": {"arguments": piece}}]}))
            tools += 1
            continue
        key = {"text": "content", "reasoning": "reasoning_content", "refusal": "refusal"}[part.kind]
        chunks.extend(_chunk({key: piece}) for piece in _halves(part.text))
    if scenario.fails:
        return chunks
    chunks.append(_chunk({}, scenario.finish))
    chunks.append({**_chunk({}), "choices": [], "usage": CHAT_USAGE})
    return chunks


_STOP_REASONS = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use"}
ANTHROPIC_USAGE = {
    "input_tokens": 20,
    "output_tokens": 12,
    "cache_read_input_tokens": 10,
    "cache_creation_input_tokens": 5,
}


def anthropic_blocks(scenario: Scenario) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    for part in scenario.answer:
        if part.kind == "text":
            if blocks and blocks[-1]["type"] == "text":
                blocks[-1]["text"] += part.text
            else:
                blocks.append({"type": "text", "text": part.text})
        else:
            blocks.append(
                {"type": "tool_use", "id": part.call_id, "name": part.name, "input": json.loads(part.text)}
            )
    return blocks


def anthropic_message(scenario: Scenario) -> dict[str, Any]:
    return {
        "id": "msg_up",
        "type": "message",
        "role": "assistant",
        "model": "claude-up",
        "content": anthropic_blocks(scenario),
        "stop_reason": _STOP_REASONS[scenario.finish],
        "stop_sequence": None,
        "usage": ANTHROPIC_USAGE,
    }


def anthropic_events(scenario: Scenario) -> list[tuple[str, dict[str, Any]]]:
    start = {
        "type": "message_start",
        "message": {
            **anthropic_message(scenario),
            "content": [],
            "stop_reason": None,
            "usage": {"input_tokens": 20, "output_tokens": 1},
        },
    }
    events: list[tuple[str, dict[str, Any]]] = [("message_start", start)]
    for index, block in enumerate(anthropic_blocks(scenario)):
        if block["type"] == "text":
            events.append(
                (
                    "content_block_start",
                    {
                        "type": "content_block_start",
                        "index": index,
                        "content_block": {"type": "text", "text": ""},
                    },
                )
            )
            for piece in _halves(block["text"]):
                delta = {"type": "text_delta", "text": piece}
                events.append(
                    ("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta})
                )
        else:
            opened = {**block, "input": {}}
            events.append(
                (
                    "content_block_start",
                    {"type": "content_block_start", "index": index, "content_block": opened},
                )
            )
            for piece in _halves(json.dumps(block["input"], separators=(",", ":"))):
                delta = {"type": "input_json_delta", "partial_json": piece}
                events.append(
                    ("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta})
                )
        events.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
        if scenario.fails:
            return events
    delta = {"stop_reason": _STOP_REASONS[scenario.finish], "stop_sequence": None}
    events.append(("message_delta", {"type": "message_delta", "delta": delta, "usage": ANTHROPIC_USAGE}))
    events.append(("message_stop", {"type": "message_stop"}))
    return events


# -- running the translators -------------------------------------------------------------------


def chat_json(scenario: Scenario) -> dict[str, Any]:
    return response_from_chat_completion(
        chat_completion(scenario),
        request=scenario.request,
        response_id="resp_1",
        created_at=100,
        ids=SequentialIds(),
        previous_response_id=scenario.request.get("previous_response_id"),
        completed_at=101,
    )


def chat_stream(scenario: Scenario) -> list[dict[str, Any]]:
    stream = ChatToResponsesStream(
        request=scenario.request,
        response_id="resp_1",
        created_at=100,
        ids=SequentialIds(),
        previous_response_id=scenario.request.get("previous_response_id"),
    )
    events = stream.start()
    for chunk in chat_chunks(scenario):
        events += stream.feed(chunk)
    events += stream.fail(GATEWAY_ERROR) if scenario.fails else stream.finish(completed_at=101)
    return events


def anthropic_json(scenario: Scenario) -> dict[str, Any]:
    return response_from_anthropic_message(
        anthropic_message(scenario),
        request=scenario.request,
        response_id="resp_1",
        created_at=100,
        ids=SequentialIds(),
        previous_response_id=scenario.request.get("previous_response_id"),
        context=AnthropicContext(),
        completed_at=101,
    )


def anthropic_stream(scenario: Scenario) -> list[dict[str, Any]]:
    stream = AnthropicToResponsesStream(
        request=scenario.request,
        response_id="resp_1",
        created_at=100,
        ids=SequentialIds(),
        previous_response_id=scenario.request.get("previous_response_id"),
        context=AnthropicContext(),
    )
    events = stream.start()
    for kind, data in anthropic_events(scenario):
        events += stream.feed(kind, data)
    if scenario.fails:
        events += stream.fail(GATEWAY_ERROR)
    else:
        assert stream.finished
        events += stream.finish(completed_at=101)
    return events


UPSTREAMS: dict[
    str, tuple[Callable[[Scenario], dict[str, Any]], Callable[[Scenario], list[dict[str, Any]]]]
] = {
    "chat": (chat_json, chat_stream),
    "anthropic": (anthropic_json, anthropic_stream),
}
CASES = [
    pytest.param(scenario, upstream, id=f"{scenario.name}-{upstream}")
    for scenario in SCENARIOS
    for upstream in UPSTREAMS
    if upstream == "chat" or not scenario.chat_only
]


def check_response(response: dict[str, Any], scenario: Scenario, sdk: Any) -> None:
    validate_response(response)
    sdk.response(response)
    assert list(response) == RESPONSE_KEYS
    if scenario.name == "every_setting":
        assert {key: response[key] for key in EVERY_SETTING_ECHO} == EVERY_SETTING_ECHO


def terminal_status(scenario: Scenario) -> str:
    if scenario.fails:
        return "failed"
    return "incomplete" if scenario.finish == "length" else "completed"


@pytest.mark.parametrize(("scenario", "upstream"), [c for c in CASES if not c.values[0].fails])
def test_json_answers_validate(scenario: Scenario, upstream: str, sdk: Any) -> None:
    response = UPSTREAMS[upstream][0](scenario)
    check_response(response, scenario, sdk)
    assert response["status"] == terminal_status(scenario)
    assert response["usage"] is not None
    assert response["completed_at"] == (101 if response["status"] == "completed" else None)


@pytest.mark.parametrize(("scenario", "upstream"), CASES)
def test_streamed_events_validate(scenario: Scenario, upstream: str, sdk: Any) -> None:
    events = UPSTREAMS[upstream][1](scenario)
    validate_events(events)
    sdk.events(events)
    for event in events:
        if "response" in event:
            check_response(event["response"], scenario, sdk)
    assert events[-1]["type"] == f"response.{terminal_status(scenario)}"
    assert events[-1]["response"]["status"] == terminal_status(scenario)


# What the translated streams can emit; every one is seen in some scenario above.
EVENT_TYPES = {
    "response.created",
    "response.in_progress",
    "response.output_item.added",
    "response.output_item.done",
    "response.content_part.added",
    "response.content_part.done",
    "response.output_text.delta",
    "response.output_text.done",
    "response.refusal.delta",
    "response.refusal.done",
    "response.reasoning_text.delta",
    "response.reasoning_text.done",
    "response.function_call_arguments.delta",
    "response.function_call_arguments.done",
    "response.completed",
    "response.incomplete",
    "response.failed",
    "error",
}


@pytest.mark.parametrize("upstream", UPSTREAMS)
def test_every_event_type_is_covered(upstream: str) -> None:
    seen: set[str] = set()
    for scenario in SCENARIOS:
        if upstream == "chat" or not scenario.chat_only:
            seen |= set(validate_events(UPSTREAMS[upstream][1](scenario)))
    expected = (
        EVENT_TYPES
        if upstream == "chat"
        else EVENT_TYPES
        - {
            "response.refusal.delta",
            "response.refusal.done",
            "response.reasoning_text.delta",
            "response.reasoning_text.done",
        }
    )
    assert seen == expected


def test_the_failed_stream_carries_the_error_both_ways() -> None:
    scenario = next(s for s in SCENARIOS if s.name == "failed")
    error, failed = chat_stream(scenario)[-2:]
    assert error["type"] == "error"
    assert (error["code"], error["message"], error["param"]) == ("server_is_overloaded", "Overloaded", None)
    assert error["error"] == GATEWAY_ERROR
    assert failed["response"]["error"] == {"code": "server_error", "message": "Overloaded"}
    assert failed["response"]["usage"] is None
    assert failed["response"]["completed_at"] is None


@pytest.mark.parametrize("upstream", UPSTREAMS)
def test_namespaced_calls_get_their_namespace_back(upstream: str) -> None:
    scenario = next(s for s in SCENARIOS if s.name == "namespaced_tools")
    json_call = UPSTREAMS[upstream][0](scenario)["output"][-1]
    streamed = UPSTREAMS[upstream][1](scenario)
    added = next(e["item"] for e in streamed if e["type"] == "response.output_item.added")
    final_call = streamed[-1]["response"]["output"][-1]
    for item in (json_call, added, final_call):
        assert (item["type"], item["namespace"], item["name"]) == ("function_call", "crm", "lookup")


def test_translated_requests_are_valid_for_the_upstream(sdk: Any) -> None:
    for scenario in SCENARIOS:
        items = input_items(scenario)
        chat = chat_request_from_responses(scenario.request, items)
        sdk.chat_request(chat)
        for message in chat["messages"]:
            if message["role"] != "user" or scenario.name != "image_input":
                assert not isinstance(message.get("content"), list), (scenario.name, message)
        if not scenario.chat_only:
            anthropic = anthropic_request_from_responses(
                scenario.request, items, upstream_model="claude-up", default_max_tokens=1024
            )
            sdk.anthropic_request(anthropic)


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        (lambda r: r.pop("presence_penalty"), "'presence_penalty' is a required property"),
        (lambda r: r.pop("service_tier"), "'service_tier' is a required property"),
        (lambda r: r["tools"][0].pop("strict"), "'strict' is a required property"),
        (lambda r: r["usage"]["input_tokens_details"].pop("cached_tokens"), "'cached_tokens' is a required"),
        (lambda r: r.update(surprise=1), "'surprise' was unexpected"),
    ],
)
def test_the_schema_check_catches_what_a_strict_client_rejects(
    change: Callable[[dict[str, Any]], Any], complaint: str
) -> None:
    from tests.fixtures.openresponses import errors

    scenario = next(s for s in SCENARIOS if s.name == "every_setting")
    response = chat_json(scenario)
    assert errors("ResponseResource", response) == []
    change(response)
    assert any(complaint in found for found in errors("ResponseResource", response))
