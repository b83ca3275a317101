"""Messages -> the canonical Chat Completions request (for upstreams that do not speak Messages)."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.translate.errors import TranslationError
from gateway.translate.messages_chat import chat_request_from_messages, context_of

IMAGE = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBOR"}}


def chat(**fields: Any) -> dict[str, Any]:
    data = {"model": "m", "max_tokens": 32, "messages": [{"role": "user", "content": "hi"}], **fields}
    return chat_request_from_messages(data, stream=bool(fields.get("stream")))


def test_system_sampling_stops_and_user() -> None:
    out = chat(
        system=[
            {"type": "text", "text": "one", "cache_control": {"type": "ephemeral", "ttl": "1h"}},
            {"type": "text", "text": "two"},
        ],
        temperature=0.5,
        top_p=0.9,
        top_k=5,
        stop_sequences=["END"],
        metadata={"user_id": "u-1"},
        thinking={"type": "enabled", "budget_tokens": 1024},
        service_tier="auto",
        stream=True,
    )
    assert out == {
        "model": "m",
        "messages": [{"role": "system", "content": "one\n\ntwo"}, {"role": "user", "content": "hi"}],
        "max_completion_tokens": 32,
        "stop": ["END"],
        "temperature": 0.5,
        "top_p": 0.9,
        "user": "u-1",
        "stream": True,
    }


def test_a_tool_round_trip_keeps_its_ids_and_drops_thinking_and_cache_control() -> None:
    out = chat(
        messages=[
            {
                "role": "user",
                "content": [{"type": "text", "text": "weather?", "cache_control": {"type": "ephemeral"}}],
            },
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "let me think", "signature": "EqAbc"},
                    {"type": "redacted_thinking", "data": "xyz"},
                    {"type": "text", "text": "Checking."},
                    {
                        "type": "tool_use",
                        "id": "toolu_01A",
                        "name": "get_weather",
                        "input": {"city": "Paris"},
                    },
                ],
            },
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": "toolu_01A",
                        "content": [{"type": "text", "text": "sunny"}],
                    },
                    {"type": "text", "text": "thanks"},
                    IMAGE,
                ],
            },
        ],
        tools=[
            {
                "name": "get_weather",
                "description": "w",
                "input_schema": {"type": "object"},
                "cache_control": {"type": "ephemeral", "ttl": "1h"},
            }
        ],
        tool_choice={"type": "any", "disable_parallel_tool_use": True},
    )
    assert out["messages"] == [
        {"role": "user", "content": "weather?"},
        {
            "role": "assistant",
            "content": "Checking.",
            "tool_calls": [
                {
                    "id": "toolu_01A",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "toolu_01A", "content": "sunny"},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "thanks"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBOR"}},
            ],
        },
    ]
    assert out["tools"] == [
        {
            "type": "function",
            "function": {"name": "get_weather", "description": "w", "parameters": {"type": "object"}},
        }
    ]
    assert out["tool_choice"] == "required"
    assert out["parallel_tool_calls"] is False
    assert "cache_control" not in repr(out) and "thinking" not in repr(out)


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ({"type": "auto"}, "auto"),
        ({"type": "none"}, "none"),
        ({"type": "tool", "name": "f"}, {"type": "function", "function": {"name": "f"}}),
    ],
)
def test_tool_choice(choice: dict[str, Any], expected: object) -> None:
    assert (
        chat(tools=[{"name": "f", "input_schema": {"type": "object"}}], tool_choice=choice)["tool_choice"]
        == expected
    )


def test_error_results_and_system_messages_between_turns() -> None:
    out = chat(
        messages=[
            {"role": "user", "content": "go"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "f", "input": {}}]},
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "t1", "content": "boom", "is_error": True}
                ],
            },
            {"role": "system", "content": [{"type": "text", "text": "be brief"}]},
        ]
    )
    assert out["messages"][2:] == [
        {"role": "tool", "tool_call_id": "t1", "content": "Error: boom"},
        {"role": "system", "content": "be brief"},
    ]


def test_server_tools_and_unknown_blocks_cannot_be_translated() -> None:
    with pytest.raises(TranslationError, match=r"tools\.0: tools of type 'web_search_20250305'"):
        chat(tools=[{"type": "web_search_20250305", "name": "web_search"}])
    with pytest.raises(
        TranslationError, match=r"messages\.0\.content\.0: content blocks of type 'container_upload'"
    ):
        chat(messages=[{"role": "user", "content": [{"type": "container_upload", "file_id": "f"}]}])


def test_documents() -> None:
    pdf = {
        "type": "document",
        "title": "a.pdf",
        "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBE"},
    }
    text = {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "plain"}}
    out = chat(messages=[{"role": "user", "content": [pdf, text]}])
    assert out["messages"][0]["content"] == [
        {"type": "file", "file": {"file_data": "data:application/pdf;base64,JVBE", "filename": "a.pdf"}},
        {"type": "text", "text": "plain"},
    ]


def test_context() -> None:
    assert context_of({"thinking": {"type": "enabled", "budget_tokens": 1}}).thinking
    assert not context_of({"thinking": {"type": "disabled"}}).thinking
    assert context_of({"stop_sequences": ["a", 1]}).stop_sequences == ("a",)


def test_malformed_parts_inside_a_tool_result_are_the_clients_400() -> None:
    use = {"type": "tool_use", "id": "t1", "name": "f", "input": {}}
    with pytest.raises(TranslationError, match="malformed"):
        chat(
            messages=[
                {"role": "user", "content": "go"},
                {"role": "assistant", "content": [use]},
                {
                    "role": "user",
                    "content": [{"type": "tool_result", "tool_use_id": "t1", "content": [{"type": []}]}],
                },
            ]
        )
