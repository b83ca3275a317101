"""Anthropic Message (and stream) -> Chat completion (and chunks)."""

from __future__ import annotations

from typing import Any

import pytest
from anthropic.types import Message, RawMessageStreamEvent
from pydantic import TypeAdapter

from gateway.translate import (
    AnthropicContext,
    AnthropicToChatStream,
    InbandError,
    anthropic_request_from_chat,
    chat_completion_from_anthropic,
)

_ANTHROPIC_EVENT = TypeAdapter(RawMessageStreamEvent)

USAGE = {
    "input_tokens": 100,
    "output_tokens": 47,
    "cache_creation_input_tokens": 20,
    "cache_read_input_tokens": 300,
    "cache_creation": {"ephemeral_5m_input_tokens": 20, "ephemeral_1h_input_tokens": 0},
    "service_tier": "standard",
}
CHAT_USAGE = {
    "prompt_tokens": 420,
    "completion_tokens": 47,
    "total_tokens": 467,
    "prompt_tokens_details": {"cached_tokens": 300, "cache_write_tokens": 20},
}


def message(content: list[dict[str, Any]], stop_reason: str) -> dict[str, Any]:
    msg = {
        "id": "msg_01",
        "type": "message",
        "role": "assistant",
        "model": "claude-up",
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": USAGE,
    }
    Message.model_validate(msg)  # the fixture itself is a valid Anthropic answer
    return msg


def translate(msg: dict[str, Any], context: AnthropicContext | None = None) -> dict[str, Any]:
    return chat_completion_from_anthropic(
        msg, model="public", completion_id="chatcmpl-1", created=7, context=context
    )


def test_text_answer(sdk: Any) -> None:
    out = translate(message([{"type": "text", "text": "Hel"}, {"type": "text", "text": "lo"}], "end_turn"))
    assert out == {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 7,
        "model": "public",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Hello", "refusal": None, "annotations": []},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": CHAT_USAGE,
    }
    sdk.completion(out)


def test_tool_use_answer_with_restored_ids(sdk: Any) -> None:
    context = AnthropicContext()
    context.tool_ids.to_anthropic("call.old")  # an id that was sanitised on the way in
    out = translate(
        message(
            [
                {"type": "text", "text": "Checking."},
                {"type": "tool_use", "id": "toolu_01", "name": "w", "input": {"city": "Paris"}},
                {"type": "tool_use", "id": "call_old", "name": "w", "input": {}},
            ],
            "tool_use",
        ),
        context,
    )
    assert out["choices"][0] == {
        "index": 0,
        "message": {
            "role": "assistant",
            "content": "Checking.",
            "refusal": None,
            "annotations": [],
            "tool_calls": [
                {
                    "id": "toolu_01",
                    "type": "function",
                    "function": {"name": "w", "arguments": '{"city":"Paris"}'},
                },
                {"id": "call.old", "type": "function", "function": {"name": "w", "arguments": "{}"}},
            ],
        },
        "logprobs": None,
        "finish_reason": "tool_calls",
    }
    sdk.completion(out)


def test_tool_only_answer_has_null_content(sdk: Any) -> None:
    out = translate(message([{"type": "tool_use", "id": "toolu_01", "name": "w", "input": {}}], "tool_use"))
    assert out["choices"][0]["message"]["content"] is None
    sdk.completion(out)


@pytest.mark.parametrize(
    ("stop_reason", "finish_reason"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("refusal", "content_filter"),
        ("pause_turn", "stop"),
        ("model_context_window_exceeded", "length"),
    ],
)
def test_stop_reasons(sdk: Any, stop_reason: str, finish_reason: str) -> None:
    out = translate(message([{"type": "text", "text": "x"}], stop_reason))
    assert out["choices"][0]["finish_reason"] == finish_reason
    sdk.completion(out)


def test_structured_answer_tool_becomes_content(sdk: Any) -> None:
    context = AnthropicContext()
    anthropic_request_from_chat(
        {
            "messages": [{"role": "user", "content": "Who?"}],
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "person", "schema": {"type": "object"}},
            },
        },
        upstream_model="c",
        default_max_tokens=10,
        context=context,
    )
    out = translate(
        message(
            [
                {"type": "text", "text": "Here you go:"},
                {"type": "tool_use", "id": "toolu_01", "name": "person", "input": {"name": "Ada"}},
            ],
            "tool_use",
        ),
        context,
    )
    assert out["choices"][0]["message"] == {
        "role": "assistant",
        "content": '{"name":"Ada"}',
        "refusal": None,
        "annotations": [],
    }
    assert out["choices"][0]["finish_reason"] == "stop"
    sdk.completion(out)


# -- streaming ------------------------------------------------------------------------------


def events_for(*pairs: tuple[str, dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    """The fixtures, each checked against the Anthropic SDK's stream event types."""
    for name, data in pairs:
        assert name == data["type"]
        if name not in ("ping", "error"):  # not members of the SDK's event union
            _ANTHROPIC_EVENT.validate_python(data)
    return list(pairs)


MESSAGE_START = (
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
            "usage": {
                "input_tokens": 100,
                "output_tokens": 1,
                "cache_read_input_tokens": 300,
                "cache_creation_input_tokens": 20,
            },
        },
    },
)


def block_start(index: int, block: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    return ("content_block_start", {"type": "content_block_start", "index": index, "content_block": block})


def text_delta(index: int, value: str) -> tuple[str, dict[str, Any]]:
    return (
        "content_block_delta",
        {"type": "content_block_delta", "index": index, "delta": {"type": "text_delta", "text": value}},
    )


def json_delta(index: int, value: str) -> tuple[str, dict[str, Any]]:
    return (
        "content_block_delta",
        {
            "type": "content_block_delta",
            "index": index,
            "delta": {"type": "input_json_delta", "partial_json": value},
        },
    )


def block_stop(index: int) -> tuple[str, dict[str, Any]]:
    return ("content_block_stop", {"type": "content_block_stop", "index": index})


def message_delta(stop_reason: str, output_tokens: int) -> tuple[str, dict[str, Any]]:
    return (
        "message_delta",
        {
            "type": "message_delta",
            "delta": {"stop_reason": stop_reason, "stop_sequence": None},
            "usage": {"output_tokens": output_tokens},
        },
    )


PING = ("ping", {"type": "ping"})
MESSAGE_STOP = ("message_stop", {"type": "message_stop"})


def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 7,
        "model": "public",
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
        "usage": None,
    }


def run(
    events: list[tuple[str, dict[str, Any]]], sdk: Any, context: AnthropicContext | None = None
) -> tuple[list[list[dict[str, Any]]], AnthropicToChatStream]:
    stream = AnthropicToChatStream(model="public", completion_id="chatcmpl-1", created=7, context=context)
    per_event = [stream.feed(name, data) for name, data in events]
    sdk.chunks([c for chunks in per_event for c in chunks])
    return per_event, stream


def test_text_stream(sdk: Any) -> None:
    per_event, stream = run(
        events_for(
            MESSAGE_START,
            block_start(0, {"type": "text", "text": ""}),
            PING,
            text_delta(0, "Hel"),
            text_delta(0, "lo"),
            block_stop(0),
            message_delta("end_turn", 12),
            MESSAGE_STOP,
        ),
        sdk,
    )
    assert per_event == [
        [chunk({"role": "assistant", "content": ""})],
        [],
        [],
        [chunk({"content": "Hel"})],
        [chunk({"content": "lo"})],
        [],
        [chunk({}, "stop")],
        [],
    ]
    assert stream.finished
    assert stream.finish_reason == "stop"
    usage_chunk = stream.usage_chunk()
    assert usage_chunk == {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 7,
        "model": "public",
        "choices": [],
        "usage": {
            "prompt_tokens": 420,
            "completion_tokens": 12,
            "total_tokens": 432,
            "prompt_tokens_details": {"cached_tokens": 300, "cache_write_tokens": 20},
        },
    }
    sdk.chunks([usage_chunk])


def tool_start(index: int, tool_id: str, name: str) -> dict[str, Any]:
    return chunk(
        {
            "tool_calls": [
                {
                    "index": index,
                    "id": tool_id,
                    "type": "function",
                    "function": {"name": name, "arguments": ""},
                }
            ]
        }
    )


def tool_args(index: int, fragment: str) -> dict[str, Any]:
    return chunk({"tool_calls": [{"index": index, "function": {"arguments": fragment}}]})


def test_text_then_parallel_tool_calls(sdk: Any) -> None:
    per_event, stream = run(
        events_for(
            MESSAGE_START,
            block_start(0, {"type": "text", "text": ""}),
            text_delta(0, "Checking."),
            block_stop(0),
            block_start(1, {"type": "tool_use", "id": "toolu_a", "name": "w", "input": {}}),
            json_delta(1, ""),
            json_delta(1, '{"city": '),
            json_delta(1, '"Paris"}'),
            block_stop(1),
            block_start(2, {"type": "tool_use", "id": "toolu_b", "name": "now", "input": {}}),
            json_delta(2, ""),
            block_stop(2),
            message_delta("tool_use", 30),
            MESSAGE_STOP,
        ),
        sdk,
    )
    assert per_event == [
        [chunk({"role": "assistant", "content": ""})],
        [],
        [chunk({"content": "Checking."})],
        [],
        [tool_start(0, "toolu_a", "w")],
        [],
        [tool_args(0, '{"city": ')],
        [tool_args(0, '"Paris"}')],
        [],
        [tool_start(1, "toolu_b", "now")],
        [],
        [tool_args(1, "{}")],  # nothing streamed: the call still gets a parseable "{}"
        [chunk({}, "tool_calls")],
        [],
    ]
    assert stream.usage["completion_tokens"] == 30


def test_structured_answer_streams_as_content(sdk: Any) -> None:
    context = AnthropicContext()
    context.json_tool = "person"
    per_event, stream = run(
        events_for(
            MESSAGE_START,
            block_start(0, {"type": "tool_use", "id": "toolu_a", "name": "person", "input": {}}),
            json_delta(0, '{"name":'),
            json_delta(0, '"Ada"}'),
            block_stop(0),
            message_delta("tool_use", 5),
            MESSAGE_STOP,
        ),
        sdk,
        context,
    )
    assert per_event == [
        [chunk({"role": "assistant", "content": ""})],
        [],
        [chunk({"content": '{"name":'})],
        [chunk({"content": '"Ada"}'})],
        [],
        [chunk({}, "stop")],
        [],
    ]
    assert stream.finish_reason == "stop"


def test_thinking_blocks_and_unknown_events_are_ignored(sdk: Any) -> None:
    per_event, _ = run(
        [
            MESSAGE_START,
            block_start(0, {"type": "thinking", "thinking": "", "signature": ""}),
            (
                "content_block_delta",
                {
                    "type": "content_block_delta",
                    "index": 0,
                    "delta": {"type": "thinking_delta", "thinking": "hmm"},
                },
            ),
            block_stop(0),
            ("brand_new_event", {"type": "brand_new_event"}),
            block_start(1, {"type": "text", "text": "Hi"}),
            block_stop(1),
        ],
        sdk,
    )
    assert per_event == [
        [chunk({"role": "assistant", "content": ""})],
        [],
        [],
        [],
        [],
        [chunk({"content": "Hi"})],
        [],
    ]


def test_tool_ids_are_restored_in_streams(sdk: Any) -> None:
    context = AnthropicContext()
    context.tool_ids.to_anthropic("call:1")
    per_event, _ = run(
        [MESSAGE_START, block_start(0, {"type": "tool_use", "id": "call_1", "name": "w", "input": {}})],
        sdk,
        context,
    )
    assert per_event[1] == [tool_start(0, "call:1", "w")]


def test_inband_error_is_raised_with_its_payload() -> None:
    stream = AnthropicToChatStream(model="public", completion_id="chatcmpl-1", created=7)
    stream.feed(*MESSAGE_START)
    payload = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    with pytest.raises(InbandError) as err:
        stream.feed("error", payload)
    assert err.value.payload == payload
    assert err.value.error_type == "overloaded_error"
    assert err.value.message == "Overloaded"
    assert not stream.finished


def test_cache_tokens_reach_the_official_sdk_types() -> None:
    """Cache reads and writes count in ``prompt_tokens``; reads are OpenAI's ``cached_tokens``."""
    from openai.types.chat import ChatCompletion

    completion = chat_completion_from_anthropic(
        {
            "type": "message",
            "role": "assistant",
            "content": [{"type": "text", "text": "Hi"}],
            "stop_reason": "end_turn",
            "usage": {
                "input_tokens": 10,
                "output_tokens": 5,
                "cache_read_input_tokens": 300,
                "cache_creation_input_tokens": 20,
            },
        },
        model="claude-haiku-4-5",
        completion_id="chatcmpl-1",
        created=1,
    )
    usage = ChatCompletion.model_validate(completion).usage
    assert usage is not None and usage.prompt_tokens_details is not None
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (330, 5, 335)
    assert usage.prompt_tokens_details.cached_tokens == 300
