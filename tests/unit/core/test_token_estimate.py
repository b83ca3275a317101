"""gateway.token_estimate: exact counts on small bodies, and what must not be counted."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.token_estimate import (
    TOKENS_PER_IMAGE,
    TOKENS_PER_MESSAGE,
    TOKENS_PER_REQUEST,
    estimate_chat_tokens,
    estimate_responses_tokens,
    text_tokens,
)

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the weather",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string", "description": "City name"}},
            "required": ["city"],
        },
    },
}


def test_text_tokens_is_utf8_bytes_over_four_rounded_up() -> None:
    assert text_tokens("") == 0
    assert text_tokens("a") == 1
    assert text_tokens("abcd") == 1
    assert text_tokens("abcde") == 2
    assert text_tokens("\u65e5\u672c\u8a9e") == 3  # 9 bytes
    assert text_tokens("\u00e9") == 1  # 2 bytes
    assert text_tokens("\ud83d") == 1  # a lone surrogate does not raise


def test_plain_chat() -> None:
    body = {
        "model": "m",
        "messages": [
            {"role": "system", "content": "You are terse."},  # 14 bytes -> 4
            {"role": "user", "content": "Hello there!"},  # 12 bytes -> 3
        ],
    }
    assert estimate_chat_tokens(body) == 3 + (3 + 4) + (3 + 3)


def test_empty_chat_is_just_the_priming() -> None:
    assert estimate_chat_tokens({}) == TOKENS_PER_REQUEST
    assert estimate_chat_tokens({"messages": "not a list"}) == TOKENS_PER_REQUEST


def test_image_data_is_not_read_as_text() -> None:
    body = {
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is this?"},  # 13 bytes -> 4
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64," + "A" * 100_000}},
                ],
            }
        ]
    }
    assert estimate_chat_tokens(body) == 3 + 3 + 4 + TOKENS_PER_IMAGE


def test_audio_and_file_parts_count_nothing_extra() -> None:
    body = {
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "input_audio", "input_audio": {"data": "UklGR" * 1000, "format": "wav"}},
                    {"type": "file", "file": {"file_data": "data:application/pdf;base64,JVBER" * 100}},
                ],
            }
        ]
    }
    assert estimate_chat_tokens(body) == 3 + 3


def test_tool_calls_and_results() -> None:
    body = {
        "messages": [
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        # name 11 bytes -> 3, arguments 16 bytes -> 4
                        "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": "sunny, 21 C"},  # 11 bytes -> 3
        ]
    }
    assert estimate_chat_tokens(body) == 3 + (3 + 3 + 3 + 4) + (3 + 3)


def test_tools_count_what_is_rendered() -> None:
    # tool 4 + name 3 + description "Get the weather" 4 + schema: "object" 2,
    # property city: 1 + "city" 1 + "string" 2 + "City name" 3.
    assert estimate_chat_tokens({"tools": [WEATHER_TOOL]}) == 3 + 4 + 3 + 4 + 2 + (1 + 1 + 2 + 3)
    legacy = {"functions": [WEATHER_TOOL["function"]]}
    assert estimate_chat_tokens(legacy) == estimate_chat_tokens({"tools": [WEATHER_TOOL]})


def test_response_format_schema_counts() -> None:
    body = {
        "response_format": {
            "type": "json_schema",
            "json_schema": {
                "name": "out",
                "schema": {"type": "object", "properties": {"ok": {"type": "boolean"}}},
            },
        }
    }
    # "object" 2 + property ok: 1 + "ok" 1 + "boolean" 2
    assert estimate_chat_tokens(body) == 3 + 2 + 1 + 1 + 2


def test_named_message_and_legacy_function_call() -> None:
    body = {
        "messages": [
            {"role": "user", "name": "alice", "content": "hi"},  # name: 1 + 2; "hi": 1
            {"role": "assistant", "function_call": {"name": "f", "arguments": "{}"}},  # 1 + 1
        ]
    }
    assert estimate_chat_tokens(body) == 3 + (3 + 1 + 2 + 1) + (3 + 2)


def test_responses_string_input_and_instructions() -> None:
    # instructions "Be brief." 9 bytes -> 3; input "Hello there!" -> 3
    assert estimate_responses_tokens("Hello there!", "Be brief.", None) == 3 + (3 + 3) + (3 + 3)


def test_responses_items() -> None:
    items = [
        {"role": "user", "content": "Hi"},  # 1
        {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},  # 1 + 1
        {"type": "function_call_output", "call_id": "c1", "output": "42"},  # 1
        {
            "type": "reasoning",
            "id": "rs_1",
            "summary": [{"type": "summary_text", "text": "Thinking about it"}],  # 17 bytes -> 5
            "encrypted_content": "x" * 5000,
        },
        {"type": "item_reference", "id": "msg_1"},  # 0
        {
            "type": "message",
            "role": "user",
            "content": [
                {"type": "input_text", "text": "Look"},  # 1
                {"type": "input_image", "image_url": "data:image/jpeg;base64," + "B" * 50_000},
            ],
        },
    ]
    expected = 3 + 6 * TOKENS_PER_MESSAGE + 1 + 2 + 1 + 5 + 0 + (1 + TOKENS_PER_IMAGE)
    assert estimate_responses_tokens(items, None, None) == expected


def test_responses_tools_flat_and_builtin() -> None:
    tools = [
        {
            "type": "function",
            "name": "f",
            "description": "Does f",
            "parameters": {"type": "object", "properties": {}},
        },
        {"type": "web_search"},
    ]
    # function: 4 + "f" 1 + "Does f" 2 + "object" 2; web_search: 4
    assert estimate_responses_tokens([], None, tools) == 3 + (4 + 1 + 2 + 2) + 4


def test_unknown_items_count_their_text_but_not_identifiers() -> None:
    item = {
        "type": "local_shell_call",
        "id": "lsh_1",
        "call_id": "call_9",
        "action": {"command": ["ls", "-la"]},
    }
    # "ls" 1 + "-la" 1
    assert estimate_responses_tokens([item], None, None) == 3 + 3 + 2


@settings(max_examples=100, deadline=None)
@given(st.lists(st.text(max_size=200), max_size=8))
def test_estimate_stays_below_the_json_size(texts: list[str]) -> None:
    """Never more than one token per byte of the request's JSON (a gross-overestimate guard)."""
    body: dict[str, Any] = {"messages": [{"role": "user", "content": text} for text in texts]}
    encoded = json.dumps(body, ensure_ascii=False).encode("utf-8", "surrogatepass")
    estimate = estimate_chat_tokens(body)
    assert estimate <= len(encoded)
    assert estimate >= TOKENS_PER_REQUEST + TOKENS_PER_MESSAGE * len(texts)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.text(max_size=50), min_size=1, max_size=5), st.text(min_size=1, max_size=50))
def test_estimate_grows_with_content(texts: list[str], extra: str) -> None:
    body = {"messages": [{"role": "user", "content": text} for text in texts]}
    longer = {"messages": [*body["messages"], {"role": "user", "content": extra}]}
    assert estimate_chat_tokens(longer) == estimate_chat_tokens(body) + TOKENS_PER_MESSAGE + text_tokens(
        extra
    )
