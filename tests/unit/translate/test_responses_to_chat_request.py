"""Responses request -> Chat Completions request."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.translate import TranslationError, chat_request_from_responses, input_items_from_input


def user(text: str) -> dict[str, Any]:
    return {"role": "user", "content": text}


def test_minimal_text_request(sdk: Any) -> None:
    request = {"model": "gpt-test", "input": "Hi"}
    body = chat_request_from_responses(request, input_items_from_input(request["input"]))
    assert body == {
        "model": "gpt-test",
        "messages": [{"role": "user", "content": "Hi"}],
    }
    sdk.chat_request(body)


def test_instructions_settings_and_stream(sdk: Any) -> None:
    request = {
        "model": "gpt-test",
        "instructions": "Be brief.",
        "temperature": 0.2,
        "top_p": 0.9,
        "max_output_tokens": 300,
        "user": "u-1",
        "metadata": {"k": "v"},
        "stop": ["END"],
        "stream": True,
        "store": False,
        "truncation": "disabled",
        "include": ["reasoning.encrypted_content"],
        "reasoning": {"effort": "low", "summary": "auto"},
        "text": {"format": {"type": "text"}, "verbosity": "low"},
    }
    body = chat_request_from_responses(request, [user("Hello")])
    assert body == {
        "model": "gpt-test",
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello"}],
        "verbosity": "low",
        "reasoning_effort": "low",
        "max_completion_tokens": 300,
        "temperature": 0.2,
        "top_p": 0.9,
        "user": "u-1",
        "metadata": {"k": "v"},
        "stop": ["END"],
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    sdk.chat_request(body)


def test_multi_turn_with_all_roles_and_assistant_output_text(sdk: Any) -> None:
    items = [
        {"role": "developer", "content": "Answer in French."},
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Hello"}]},
        {
            "type": "message",
            "id": "msg_1",
            "status": "completed",
            "role": "assistant",
            "content": [
                {"type": "output_text", "text": "Bon", "annotations": []},
                {"type": "output_text", "text": "jour", "annotations": []},
            ],
        },
        {"role": "system", "content": [{"type": "input_text", "text": "Keep it short."}]},
        {"role": "user", "content": "Again"},
    ]
    body = chat_request_from_responses({"model": "m"}, items)
    assert body["messages"] == [
        {"role": "developer", "content": "Answer in French."},
        {"role": "user", "content": "Hello"},
        {"role": "assistant", "content": "Bonjour"},
        {"role": "system", "content": "Keep it short."},
        {"role": "user", "content": "Again"},
    ]
    sdk.chat_request(body)


def test_images_and_files(sdk: Any) -> None:
    items = [
        {
            "role": "user",
            "content": [
                {"type": "input_text", "text": "What is this?"},
                {"type": "input_image", "image_url": "https://example.com/a.png", "detail": "high"},
                {"type": "input_image", "image_url": "data:image/png;base64,AAAA", "detail": "auto"},
                {"type": "input_file", "file_data": "data:application/pdf;base64,JVBE", "filename": "a.pdf"},
            ],
        }
    ]
    body = chat_request_from_responses({"model": "m"}, items)
    assert body["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is this?"},
                {"type": "image_url", "image_url": {"url": "https://example.com/a.png", "detail": "high"}},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA", "detail": "auto"}},
                {
                    "type": "file",
                    "file": {"file_data": "data:application/pdf;base64,JVBE", "filename": "a.pdf"},
                },
            ],
        }
    ]
    sdk.chat_request(body)


def test_tools_flat_to_nested_and_tool_choice_forms(sdk: Any) -> None:
    tools = [
        {
            "type": "function",
            "name": "get_weather",
            "description": "Weather for a city",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
            "strict": True,
        },
        {"type": "function", "name": "now", "parameters": None},
    ]
    expected_tools = [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Weather for a city",
                "parameters": {
                    "type": "object",
                    "properties": {"city": {"type": "string"}},
                    "required": ["city"],
                },
                "strict": True,
            },
        },
        {"type": "function", "function": {"name": "now"}},
    ]
    cases: list[tuple[Any, Any]] = [
        ("auto", "auto"),
        ("none", "none"),
        ("required", "required"),
        ({"type": "function", "name": "now"}, {"type": "function", "function": {"name": "now"}}),
        (
            {"type": "allowed_tools", "mode": "required", "tools": [{"type": "function", "name": "now"}]},
            {
                "type": "allowed_tools",
                "allowed_tools": {
                    "mode": "required",
                    "tools": [{"type": "function", "function": {"name": "now"}}],
                },
            },
        ),
    ]
    for given, expected in cases:
        request = {"model": "m", "tools": tools, "tool_choice": given, "parallel_tool_calls": False}
        body = chat_request_from_responses(request, [user("hi")])
        assert body["tools"] == expected_tools
        assert body["tool_choice"] == expected
        assert body["parallel_tool_calls"] is False
        sdk.chat_request(body)


def test_tool_settings_are_not_sent_without_tools() -> None:
    body = chat_request_from_responses(
        {"model": "m", "tool_choice": "auto", "parallel_tool_calls": True}, [user("x")]
    )
    assert "tool_choice" not in body
    assert "parallel_tool_calls" not in body
    assert "tools" not in body


def test_hosted_tools_are_dropped() -> None:
    request = {
        "model": "m",
        "tools": [{"type": "web_search"}, {"type": "function", "name": "f"}, {"type": "file_search"}],
        "tool_choice": "auto",
    }
    body = chat_request_from_responses(request, [user("x")])
    assert body["tools"] == [{"type": "function", "function": {"name": "f"}}]
    assert body["tool_choice"] == "auto"


def test_only_hosted_tools_send_no_tools_at_all() -> None:
    request = {
        "model": "m",
        "tools": [{"type": "web_search"}],
        "tool_choice": "auto",
        "parallel_tool_calls": True,
    }
    body = chat_request_from_responses(request, [user("x")])
    assert "tools" not in body
    assert "tool_choice" not in body
    assert "parallel_tool_calls" not in body


@pytest.mark.parametrize(
    ("tools", "tool_choice", "message"),
    [
        (
            [{"type": "web_search"}, {"type": "function", "name": "f"}],
            {"type": "web_search"},
            "tool_choice requires the hosted tool 'web_search', which this model cannot run.",
        ),
        (
            [{"type": "web_search"}],
            "required",
            "tool_choice is 'required' but this model can run none of the given tools: "
            "hosted tools are not available on it.",
        ),
        (
            [{"type": "file_search"}, {"type": "function", "name": "f"}],
            {"type": "allowed_tools", "mode": "required", "tools": [{"type": "file_search"}]},
            "tool_choice requires the hosted tool 'file_search', which this model cannot run.",
        ),
    ],
)
def test_a_tool_choice_that_requires_a_hosted_tool_is_refused(
    tools: list[dict[str, Any]], tool_choice: Any, message: str
) -> None:
    with pytest.raises(TranslationError) as err:
        chat_request_from_responses({"model": "m", "tools": tools, "tool_choice": tool_choice}, [user("x")])
    assert (err.value.message, err.value.param) == (message, "tool_choice")


def test_allowed_tools_naming_only_hosted_tools_in_auto_mode_allow_none() -> None:
    request = {
        "model": "m",
        "tools": [{"type": "web_search"}, {"type": "function", "name": "f"}],
        "tool_choice": {"type": "allowed_tools", "mode": "auto", "tools": [{"type": "web_search"}]},
    }
    body = chat_request_from_responses(request, [user("x")])
    assert body["tool_choice"] == "none"


def test_custom_tools_are_refused() -> None:
    with pytest.raises(TranslationError) as err:
        chat_request_from_responses(
            {"model": "m", "tools": [{"type": "custom", "name": "apply_patch"}]}, [user("x")]
        )
    assert err.value.param == "tools[0]"


@pytest.mark.parametrize(
    ("text_format", "expected"),
    [
        ({"type": "text"}, None),
        ({"type": "json_object"}, {"type": "json_object"}),
        (
            {"type": "json_schema", "name": "person", "schema": {"type": "object"}, "strict": True},
            {
                "type": "json_schema",
                "json_schema": {"name": "person", "schema": {"type": "object"}, "strict": True},
            },
        ),
        (
            {"type": "json_schema", "name": "p", "description": "d", "schema": {"type": "object"}},
            {
                "type": "json_schema",
                "json_schema": {"name": "p", "description": "d", "schema": {"type": "object"}},
            },
        ),
    ],
)
def test_text_format_to_response_format(sdk: Any, text_format: Any, expected: Any) -> None:
    body = chat_request_from_responses({"model": "m", "text": {"format": text_format}}, [user("x")])
    assert body.get("response_format") == expected
    sdk.chat_request(body)


def test_parallel_function_calls_become_one_assistant_message(sdk: Any) -> None:
    items = [
        user("Weather in Paris and Rome?"),
        {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "two calls"}]},
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Checking."}]},
        {
            "type": "function_call",
            "id": "fc_1",
            "call_id": "call_a",
            "name": "w",
            "arguments": '{"c":"Paris"}',
        },
        {
            "type": "function_call",
            "id": "fc_2",
            "call_id": "call_b",
            "name": "w",
            "arguments": '{"c":"Rome"}',
        },
        {"type": "function_call_output", "call_id": "call_a", "output": "18C"},
        {
            "type": "function_call_output",
            "call_id": "call_b",
            "output": [{"type": "input_text", "text": "21C"}, {"type": "input_text", "text": "sunny"}],
        },
        user("Thanks"),
    ]
    body = chat_request_from_responses({"model": "m"}, items)
    assert body["messages"] == [
        {"role": "user", "content": "Weather in Paris and Rome?"},
        {
            "role": "assistant",
            "content": "Checking.",
            "tool_calls": [
                {"id": "call_a", "type": "function", "function": {"name": "w", "arguments": '{"c":"Paris"}'}},
                {"id": "call_b", "type": "function", "function": {"name": "w", "arguments": '{"c":"Rome"}'}},
            ],
        },
        {"role": "tool", "tool_call_id": "call_a", "content": "18C"},
        {"role": "tool", "tool_call_id": "call_b", "content": "21C\nsunny"},
        {"role": "user", "content": "Thanks"},
    ]
    sdk.chat_request(body)


def test_interleaved_calls_and_outputs_stay_paired(sdk: Any) -> None:
    items = [
        user("go"),
        {"type": "function_call", "call_id": "c1", "name": "a", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c1", "output": "one"},
        {"type": "function_call", "call_id": "c2", "name": "b", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c2", "output": "two"},
    ]
    body = chat_request_from_responses({"model": "m"}, items)
    assert body["messages"] == [
        {"role": "user", "content": "go"},
        {"role": "assistant", "tool_calls": [_call("c1", "a")]},
        {"role": "tool", "tool_call_id": "c1", "content": "one"},
        {"role": "assistant", "tool_calls": [_call("c2", "b")]},
        {"role": "tool", "tool_call_id": "c2", "content": "two"},
    ]
    sdk.chat_request(body)


def test_outputs_placed_after_a_later_message_are_pulled_up_to_their_calls() -> None:
    items = [
        user("go"),
        {"type": "function_call", "call_id": "c1", "name": "a", "arguments": "{}"},
        user("(meanwhile)"),
        {"type": "function_call_output", "call_id": "c1", "output": "one"},
    ]
    body = chat_request_from_responses({"model": "m"}, items)
    assert body["messages"] == [
        {"role": "user", "content": "go"},
        {"role": "assistant", "tool_calls": [_call("c1", "a")]},
        {"role": "tool", "tool_call_id": "c1", "content": "one"},
        {"role": "user", "content": "(meanwhile)"},
    ]


def _call(call_id: str, name: str) -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": "{}"}}


def test_call_without_output_is_refused() -> None:
    items = [user("go"), {"type": "function_call", "call_id": "call_x", "name": "a", "arguments": "{}"}]
    with pytest.raises(TranslationError) as err:
        chat_request_from_responses({"model": "m"}, items)
    assert err.value.message == "No tool output found for function call call_x."
    assert err.value.param == "input"


def test_output_without_call_is_refused() -> None:
    items = [user("go"), {"type": "function_call_output", "call_id": "call_y", "output": "?"}]
    with pytest.raises(TranslationError) as err:
        chat_request_from_responses({"model": "m"}, items)
    assert err.value.message == "No tool call found for function call output with call_id call_y."


def test_unresolved_item_reference_is_refused() -> None:
    with pytest.raises(TranslationError, match="msg_9"):
        chat_request_from_responses({"model": "m"}, [{"type": "item_reference", "id": "msg_9"}])


@pytest.mark.parametrize(
    "item",
    [
        {"role": "user", "content": [{"type": "input_image", "file_id": "file-1", "detail": "auto"}]},
        {"role": "user", "content": [{"type": "input_file", "file_url": "https://x/y.pdf"}]},
        {"type": "web_search_call", "id": "ws_1", "status": "completed"},
        {"role": "system", "content": [{"type": "input_image", "image_url": "https://x/i.png"}]},
    ],
)
def test_unsupported_input_is_refused(item: dict[str, Any]) -> None:
    with pytest.raises(TranslationError):
        chat_request_from_responses({"model": "m"}, [item])


def test_caller_objects_are_not_mutated() -> None:
    import copy

    request = {"model": "m", "tools": [{"type": "function", "name": "a", "parameters": {"type": "object"}}]}
    items = [
        {"type": "message", "role": "assistant", "content": "x"},
        {"type": "function_call", "call_id": "c", "name": "a", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c", "output": "r"},
    ]
    before = copy.deepcopy((request, items))
    chat_request_from_responses(request, items)
    assert (request, items) == before


def test_function_call_output_given_as_a_json_value_is_encoded() -> None:
    items = [
        {"type": "function_call", "call_id": "c", "name": "a", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c", "output": {"temp": 21}},
    ]
    body = chat_request_from_responses({"model": "m"}, items)
    assert body["messages"][-1] == {"role": "tool", "tool_call_id": "c", "content": '{"temp":21}'}


@pytest.mark.parametrize(
    "items",
    [
        ["just a string"],
        [{"role": "user", "content": ["not a part"]}],
        [{"role": "user", "content": 42}],
    ],
)
def test_malformed_input_is_a_translation_error(items: list[Any]) -> None:
    with pytest.raises(TranslationError) as err:
        chat_request_from_responses({"model": "m"}, items)
    assert err.value.message == "The request is malformed: a field does not have the expected type or shape."
    assert err.value.__cause__ is not None


def test_openai_compatible_upstreams_get_system_max_tokens_and_one_opening_system_message(sdk: Any) -> None:
    request = {"model": "m", "instructions": "Be brief.", "max_output_tokens": 64}
    items = [
        {"role": "developer", "content": [{"type": "input_text", "text": "Answer in French."}]},
        {"role": "system", "content": "No emojis."},
        user("Hello"),
        {"role": "developer", "content": "Later advice."},
    ]
    body = chat_request_from_responses(request, items, upstream_kind="openai-compatible")
    assert body["messages"] == [
        {"role": "system", "content": "Be brief.\n\nAnswer in French.\n\nNo emojis."},
        {"role": "user", "content": "Hello"},
        {"role": "system", "content": "Later advice."},
    ]
    assert (body["max_completion_tokens"], body["max_tokens"]) == (64, 64)
    sdk.chat_request(body)

    for kind in ("openai", "anthropic"):
        openai_body = chat_request_from_responses(request, items, upstream_kind=kind)
        assert [m["role"] for m in openai_body["messages"]] == [
            "system",
            "developer",
            "system",
            "user",
            "developer",
        ]
        assert "max_tokens" not in openai_body


def test_user_text_parts_are_one_string_and_images_keep_the_parts() -> None:
    items = [
        {
            "role": "user",
            "content": [{"type": "input_text", "text": "one"}, {"type": "input_text", "text": "two"}],
        },
        {"role": "user", "content": []},
    ]
    body = chat_request_from_responses({"model": "m"}, items)
    assert body["messages"] == [{"role": "user", "content": "one\ntwo"}, {"role": "user", "content": ""}]


def test_namespaces_are_flattened_and_replayed_calls_named_alike(sdk: Any) -> None:
    request = {
        "model": "m",
        "tools": [
            {
                "type": "namespace",
                "name": "crm",
                "description": "The CRM",
                "tools": [{"type": "function", "name": "lookup", "parameters": {"type": "object"}}],
            },
            {
                "type": "namespace",
                "name": "mcp__fs__",
                "description": "Files",
                "tools": [{"type": "function", "name": "read", "description": "Read a file"}],
            },
        ],
        "tool_choice": {"type": "function", "name": "lookup", "namespace": "crm"},
    }
    items = [
        user("go"),
        {
            "type": "function_call",
            "call_id": "c1",
            "name": "read",
            "namespace": "mcp__fs__",
            "arguments": "{}",
        },
        {"type": "function_call_output", "call_id": "c1", "output": "text"},
    ]
    body = chat_request_from_responses(request, items)
    assert body["tools"] == [
        {"type": "function", "function": {"name": "crm__lookup", "parameters": {"type": "object"}}},
        {"type": "function", "function": {"name": "mcp__fs__read", "description": "Read a file"}},
    ]
    assert body["tool_choice"] == {"type": "function", "function": {"name": "crm__lookup"}}
    assert body["messages"][1]["tool_calls"][0]["function"]["name"] == "mcp__fs__read"
    sdk.chat_request(body)
