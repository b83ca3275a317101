"""Chat Completions answers -> Anthropic messages: content, stop reasons, usage with cache tokens."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.translate.messages_answer import message_from_chat_completion
from gateway.translate.messages_chat import MessagesContext


def completion(message: dict[str, Any], finish: str = "stop", **choice: Any) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "model": "gpt-up",
        "choices": [
            {"index": 0, "message": {"role": "assistant", **message}, "finish_reason": finish, **choice}
        ],
        "usage": {
            "prompt_tokens": 100,
            "completion_tokens": 7,
            "prompt_tokens_details": {"cached_tokens": 60},
        },
    }


def translate(chat: dict[str, Any], context: MessagesContext | None = None) -> dict[str, Any]:
    return message_from_chat_completion(
        chat, context=context or MessagesContext(), model="asked", estimate=42
    )


def test_text_tools_and_usage() -> None:
    message = translate(
        completion(
            {
                "content": "Let me look.",
                "reasoning_content": "hidden",
                "tool_calls": [
                    {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": '{"a":1}'}},
                    {"id": "call_2", "type": "function", "function": {"name": "g", "arguments": "not json"}},
                ],
            },
            "tool_calls",
        )
    )
    assert message["id"].startswith("msg_")
    assert {k: message[k] for k in ("type", "role", "model", "stop_reason", "stop_sequence")} == {
        "type": "message",
        "role": "assistant",
        "model": "gpt-up",
        "stop_reason": "tool_use",
        "stop_sequence": None,
    }
    assert message["content"] == [
        {"type": "text", "text": "Let me look."},
        {"type": "tool_use", "id": "call_1", "name": "f", "input": {"a": 1}},
        {"type": "tool_use", "id": "call_2", "name": "g", "input": {}},
    ]
    assert message["usage"] == {
        "input_tokens": 40,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 60,
        "output_tokens": 7,
    }


def test_reasoning_is_a_thinking_block_only_when_the_client_enabled_thinking() -> None:
    message = translate(completion({"content": "42", "reasoning": "6*7"}), MessagesContext(thinking=True))
    assert message["content"] == [
        {"type": "thinking", "thinking": "6*7", "signature": ""},
        {"type": "text", "text": "42"},
    ]


@pytest.mark.parametrize(
    ("finish", "extra", "expected"),
    [
        ("stop", {}, ("end_turn", None)),
        ("length", {}, ("max_tokens", None)),
        ("tool_calls", {}, ("tool_use", None)),
        ("function_call", {}, ("tool_use", None)),
        ("content_filter", {}, ("refusal", None)),
        ("stop", {"stop_reason": "END"}, ("stop_sequence", "END")),
        ("stop", {"stop_reason": "OTHER"}, ("end_turn", None)),
    ],
)
def test_stop_reasons(finish: str, extra: dict[str, Any], expected: tuple[str, str | None]) -> None:
    message = translate(
        completion({"content": "x"}, finish, **extra), MessagesContext(stop_sequences=("END",))
    )
    assert (message["stop_reason"], message["stop_sequence"]) == expected


def test_a_refusal_and_no_usage() -> None:
    chat = completion({"content": None, "refusal": "I can't."})
    del chat["usage"]
    message = translate(chat)
    assert message["content"] == [{"type": "text", "text": "I can't."}]
    assert message["stop_reason"] == "refusal"
    assert message["usage"]["input_tokens"] == 42
