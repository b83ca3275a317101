"""Responses API over an Anthropic upstream: the two pairs composed, end to end."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.translate import (
    AnthropicContext,
    AnthropicToResponsesStream,
    InbandError,
    SequentialIds,
    anthropic_request_from_responses,
    response_from_anthropic_message,
)

TOOLS = [
    {
        "type": "function",
        "name": "get_weather",
        "description": "Weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        "strict": False,
    }
]
REQUEST: dict[str, Any] = {
    "model": "public-claude",
    "instructions": "Be brief.",
    "tools": TOOLS,
    "max_output_tokens": 500,
    "stream": True,
}


def test_request_with_history(sdk: Any) -> None:
    items = [
        {"role": "user", "content": [{"type": "input_text", "text": "Weather in Paris?"}]},
        {"type": "reasoning", "id": "rs_1", "summary": []},
        {
            "type": "function_call",
            "id": "fc_1",
            "call_id": "toolu_01",
            "name": "get_weather",
            "arguments": '{"city":"Paris"}',
        },
        {"type": "function_call_output", "call_id": "toolu_01", "output": "18C"},
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "18C."}]},
        {
            "role": "user",
            "content": [{"type": "input_image", "image_url": "https://x.example/p.png", "detail": "auto"}],
        },
    ]
    out = anthropic_request_from_responses(
        REQUEST, items, upstream_model="claude-up", default_max_tokens=4096
    )
    assert out == {
        "model": "claude-up",
        "max_tokens": 500,
        "system": "Be brief.",
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "Weather in Paris?"}]},
            {
                "role": "assistant",
                "content": [
                    {"type": "tool_use", "id": "toolu_01", "name": "get_weather", "input": {"city": "Paris"}}
                ],
            },
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": "toolu_01", "content": "18C"}],
            },
            {"role": "assistant", "content": [{"type": "text", "text": "18C."}]},
            {
                "role": "user",
                "content": [{"type": "image", "source": {"type": "url", "url": "https://x.example/p.png"}}],
            },
        ],
        "tools": [
            {
                "name": "get_weather",
                "description": "Weather",
                "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
            }
        ],
        "stream": True,
    }
    sdk.anthropic_request(out)


def test_non_streaming_answer(sdk: Any) -> None:
    message = {
        "id": "msg_01",
        "type": "message",
        "role": "assistant",
        "model": "claude-up",
        "content": [
            {"type": "text", "text": "Checking."},
            {"type": "tool_use", "id": "toolu_02", "name": "get_weather", "input": {"city": "Rome"}},
        ],
        "stop_reason": "tool_use",
        "stop_sequence": None,
        "usage": {
            "input_tokens": 10,
            "output_tokens": 5,
            "cache_read_input_tokens": 90,
            "cache_creation_input_tokens": 0,
        },
    }
    response = response_from_anthropic_message(
        message,
        request=REQUEST,
        response_id="resp_1",
        created_at=100,
        ids=SequentialIds(),
        previous_response_id="resp_0",
        context=AnthropicContext(),
        completed_at=101,
    )
    assert response["status"] == "completed"
    assert response["model"] == "public-claude"
    assert response["output"] == [
        {
            "id": "msg_1",
            "type": "message",
            "status": "completed",
            "role": "assistant",
            "content": [{"type": "output_text", "text": "Checking.", "annotations": [], "logprobs": []}],
        },
        {
            "id": "fc_1",
            "type": "function_call",
            "status": "completed",
            "call_id": "toolu_02",
            "name": "get_weather",
            "arguments": '{"city":"Rome"}',
        },
    ]
    assert response["usage"] == {
        "input_tokens": 100,
        "input_tokens_details": {"cached_tokens": 90, "cache_write_tokens": 0},
        "output_tokens": 5,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": 105,
    }
    sdk.response(response)


def anthropic_stream() -> list[tuple[str, dict[str, Any]]]:
    return [
        (
            "message_start",
            {
                "type": "message_start",
                "message": {
                    "id": "msg_01",
                    "type": "message",
                    "role": "assistant",
                    "content": [],
                    "model": "claude-up",
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": {"input_tokens": 50, "output_tokens": 1},
                },
            },
        ),
        (
            "content_block_start",
            {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        ),
        (
            "content_block_delta",
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hi"}},
        ),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        (
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 1,
                "content_block": {"type": "tool_use", "id": "toolu_03", "name": "get_weather", "input": {}},
            },
        ),
        ("ping", {"type": "ping"}),
        (
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 1,
                "delta": {"type": "input_json_delta", "partial_json": '{"city":"Oslo"}'},
            },
        ),
        ("content_block_stop", {"type": "content_block_stop", "index": 1}),
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": "tool_use", "stop_sequence": None},
                "usage": {"output_tokens": 9},
            },
        ),
        ("message_stop", {"type": "message_stop"}),
    ]


def new_stream() -> AnthropicToResponsesStream:
    return AnthropicToResponsesStream(
        request=REQUEST,
        response_id="resp_1",
        created_at=100,
        ids=SequentialIds(),
        previous_response_id=None,
        context=AnthropicContext(),
    )


def test_stream(sdk: Any) -> None:
    stream = new_stream()
    events = stream.start()
    for name, data in anthropic_stream():
        events += stream.feed(name, data)
    assert stream.finished
    events += stream.finish(completed_at=103)
    sdk.events(events)
    assert [(e["sequence_number"], e["type"]) for e in events] == [
        (0, "response.created"),
        (1, "response.in_progress"),
        (2, "response.output_item.added"),
        (3, "response.content_part.added"),
        (4, "response.output_text.delta"),
        (5, "response.output_text.done"),
        (6, "response.content_part.done"),
        (7, "response.output_item.done"),
        (8, "response.output_item.added"),
        (9, "response.function_call_arguments.delta"),
        (10, "response.function_call_arguments.done"),
        (11, "response.output_item.done"),
        (12, "response.completed"),
    ]
    final = events[-1]["response"]
    assert final is stream.response
    assert final["output"] == [
        {
            "id": "msg_1",
            "type": "message",
            "status": "completed",
            "role": "assistant",
            "content": [{"type": "output_text", "text": "Hi", "annotations": [], "logprobs": []}],
        },
        {
            "id": "fc_1",
            "type": "function_call",
            "status": "completed",
            "call_id": "toolu_03",
            "name": "get_weather",
            "arguments": '{"city":"Oslo"}',
        },
    ]
    assert final["usage"] == {
        "input_tokens": 50,
        "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
        "output_tokens": 9,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": 59,
    }
    assert final["completed_at"] == 103


def test_stream_inband_error_then_fail(sdk: Any) -> None:
    stream = new_stream()
    events = stream.start()
    for name, data in anthropic_stream()[:3]:
        events += stream.feed(name, data)
    with pytest.raises(InbandError) as err:
        stream.feed(
            "error", {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
        )
    events += stream.fail(
        {
            "message": err.value.message,
            "type": "server_error",
            "param": None,
            "code": None,
            "kind": "overloaded",
        }
    )
    sdk.events(events)
    assert [e["type"] for e in events][-2:] == ["error", "response.failed"]
    assert stream.response is not None
    assert stream.response["status"] == "failed"
    assert stream.response["error"] == {"code": "server_error", "message": "Overloaded"}
    assert stream.response["output"][0]["status"] == "incomplete"
