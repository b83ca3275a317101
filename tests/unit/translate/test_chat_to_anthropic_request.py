"""Chat Completions request -> Anthropic Messages request."""

from __future__ import annotations

import base64
import copy
import hashlib
from typing import Any

import pytest

from gateway.translate import AnthropicContext, ToolIdMap, TranslationError, anthropic_request_from_chat


def translate(body: dict[str, Any], context: AnthropicContext | None = None, **kwargs: Any) -> dict[str, Any]:
    return anthropic_request_from_chat(
        body, upstream_model="claude-up", default_max_tokens=4096, context=context, **kwargs
    )


def text(value: str) -> dict[str, Any]:
    return {"type": "text", "text": value}


WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        "strict": True,
    },
}
ANTHROPIC_WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Weather for a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


def test_minimal_text(sdk: Any) -> None:
    out = translate({"model": "public", "messages": [{"role": "user", "content": "Hi"}]})
    assert out == {
        "model": "claude-up",
        "max_tokens": 4096,
        "messages": [{"role": "user", "content": [text("Hi")]}],
    }
    sdk.anthropic_request(out)


def test_settings(sdk: Any) -> None:
    out = translate(
        {
            "model": "public",
            "messages": [{"role": "user", "content": "Hi"}],
            "max_completion_tokens": 100,
            "max_tokens": 5,
            "stop": "END",
            "temperature": 1.7,
            "top_p": 0.5,
            "user": "user-42",
            "stream": True,
            "stream_options": {"include_usage": True},
            "seed": 7,
            "frequency_penalty": 0.1,
            "metadata": {"a": "b"},
        }
    )
    assert out == {
        "model": "claude-up",
        "max_tokens": 100,
        "messages": [{"role": "user", "content": [text("Hi")]}],
        "stop_sequences": ["END"],
        "temperature": 1.0,
        "top_p": 0.5,
        "metadata": {"user_id": "user-42"},
        "stream": True,
    }
    sdk.anthropic_request(out)
    assert (
        translate({"messages": [{"role": "user", "content": "x"}], "max_tokens": 5, "stop": ["a", "b"]})[
            "max_tokens"
        ]
        == 5
    )
    assert (
        translate({"messages": [{"role": "user", "content": "x"}], "temperature": -1})["temperature"] == 0.0
    )


def test_system_and_developer_messages_become_system(sdk: Any) -> None:
    single = translate(
        {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]}
    )
    assert single["system"] == "Be brief."
    several = translate(
        {
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "developer", "content": [text("Use French."), text("")]},
                {"role": "user", "content": "Hi"},
                {
                    "role": "system",
                    "content": [
                        {"type": "text", "text": "Late rule.", "cache_control": {"type": "ephemeral"}}
                    ],
                },
            ]
        }
    )
    assert several["system"] == [
        text("Be brief."),
        text("Use French."),
        {"type": "text", "text": "Late rule.", "cache_control": {"type": "ephemeral"}},
    ]
    assert several["messages"] == [{"role": "user", "content": [text("Hi")]}]
    sdk.anthropic_request(single)
    sdk.anthropic_request(several)


def test_consecutive_same_role_turns_are_merged_and_empty_text_dropped(sdk: Any) -> None:
    out = translate(
        {
            "messages": [
                {"role": "user", "content": "One"},
                {"role": "user", "content": [text("Two"), text("")]},
                {"role": "assistant", "content": "A"},
                {"role": "assistant", "content": ""},
                {"role": "assistant", "content": [text("B"), {"type": "refusal", "refusal": "R"}]},
                {"role": "user", "content": "Three"},
            ]
        }
    )
    assert out["messages"] == [
        {"role": "user", "content": [text("One"), text("Two")]},
        {"role": "assistant", "content": [text("A"), text("B"), text("R")]},
        {"role": "user", "content": [text("Three")]},
    ]
    sdk.anthropic_request(out)


def test_final_assistant_prefill_loses_trailing_whitespace(sdk: Any) -> None:
    out = translate(
        {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Sure: \n"}]}
    )
    assert out["messages"][-1] == {"role": "assistant", "content": [text("Sure:")]}
    blank = translate(
        {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "  "}]}
    )
    assert blank["messages"] == [{"role": "user", "content": [text("Hi")]}]
    sdk.anthropic_request(out)


def test_images_and_documents(sdk: Any) -> None:
    txt = base64.b64encode(b"plain words").decode()
    out = translate(
        {
            "messages": [
                {
                    "role": "user",
                    "content": [
                        text("Look"),
                        {
                            "type": "image_url",
                            "image_url": {"url": "data:image/png;base64,iVBORw0KGgo=", "detail": "high"},
                        },
                        {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
                        {
                            "type": "file",
                            "file": {
                                "file_data": "data:application/pdf;base64,JVBERi0=",
                                "filename": "a.pdf",
                            },
                        },
                        {"type": "file", "file": {"file_data": f"data:text/plain;base64,{txt}"}},
                    ],
                }
            ]
        }
    )
    assert out["messages"][0]["content"] == [
        text("Look"),
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
        {
            "type": "document",
            "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0="},
            "title": "a.pdf",
        },
        {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "plain words"}},
    ]
    sdk.anthropic_request(out)


@pytest.mark.parametrize(
    "part",
    [
        {"type": "image_url", "image_url": {"url": "ftp://x/y.png"}},
        {"type": "image_url", "image_url": {"url": "data:image/png,rawnotbase64"}},
        {"type": "file", "file": {"file_id": "file-1"}},
        {"type": "file", "file": {"file_data": "data:application/zip;base64,UEs="}},
        {"type": "input_audio", "input_audio": {"data": "AAA", "format": "wav"}},
    ],
)
def test_unsupported_user_content_is_refused(part: dict[str, Any]) -> None:
    with pytest.raises(TranslationError) as err:
        translate({"messages": [{"role": "user", "content": [part]}]})
    assert err.value.param == "messages[0].content[0]"


def test_parallel_tool_calls_and_results(sdk: Any) -> None:
    body = {
        "messages": [
            {"role": "user", "content": "Paris and Rome?"},
            {
                "role": "assistant",
                "content": "Checking.",
                "tool_calls": [
                    {
                        "id": "call_a",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                    },
                    {
                        "id": "call_b",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": "not json"},
                    },
                ],
            },
            {"role": "tool", "tool_call_id": "call_a", "content": "18C"},
            {"role": "tool", "tool_call_id": "call_b", "content": [text("21C"), text("sunny")]},
            {"role": "user", "content": "And tomorrow?"},
        ],
        "tools": [WEATHER_TOOL],
    }
    out = translate(body)
    assert out["messages"] == [
        {"role": "user", "content": [text("Paris and Rome?")]},
        {
            "role": "assistant",
            "content": [
                text("Checking."),
                {"type": "tool_use", "id": "call_a", "name": "get_weather", "input": {"city": "Paris"}},
                {"type": "tool_use", "id": "call_b", "name": "get_weather", "input": {}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "call_a", "content": "18C"},
                {"type": "tool_result", "tool_use_id": "call_b", "content": [text("21C"), text("sunny")]},
                text("And tomorrow?"),
            ],
        },
    ]
    assert out["tools"] == [ANTHROPIC_WEATHER_TOOL]
    assert "tool_choice" not in out
    sdk.anthropic_request(out)


def test_tool_result_with_empty_content_omits_it(sdk: Any) -> None:
    out = translate(
        {
            "messages": [
                {"role": "user", "content": "go"},
                {"role": "assistant", "content": None, "tool_calls": [_call("c1")]},
                {"role": "tool", "tool_call_id": "c1", "content": ""},
            ],
            "tools": [WEATHER_TOOL],
        }
    )
    assert out["messages"][-1] == {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "c1"}]}
    sdk.anthropic_request(out)


def _call(call_id: str, name: str = "get_weather", arguments: str = "{}") -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def test_tool_message_without_a_preceding_call_is_refused() -> None:
    with pytest.raises(TranslationError) as err:
        translate(
            {
                "messages": [
                    {"role": "user", "content": "x"},
                    {"role": "tool", "tool_call_id": "c9", "content": "r"},
                ]
            }
        )
    assert err.value.message == (
        "Messages with role 'tool' must be a response to a preceding message with 'tool_calls'."
    )
    assert err.value.param == "messages[1]"


def test_tool_result_must_answer_the_immediately_preceding_assistant_turn() -> None:
    messages = [
        {"role": "user", "content": "x"},
        {"role": "assistant", "content": None, "tool_calls": [_call("c1")]},
        {"role": "tool", "tool_call_id": "c1", "content": "r"},
        {"role": "assistant", "content": "done"},
        {"role": "tool", "tool_call_id": "c1", "content": "again"},
    ]
    with pytest.raises(TranslationError):
        translate({"messages": messages})


@pytest.mark.parametrize(
    "after",
    [
        [{"role": "user", "content": "next"}],
        [{"role": "assistant", "content": "next"}],
        [],
    ],
)
def test_unanswered_tool_calls_are_refused(after: list[dict[str, Any]]) -> None:
    messages = [
        {"role": "user", "content": "x"},
        {"role": "assistant", "content": None, "tool_calls": [_call("c1"), _call("c2")]},
        {"role": "tool", "tool_call_id": "c1", "content": "r"},
        *after,
    ]
    with pytest.raises(TranslationError) as err:
        translate({"messages": messages})
    assert err.value.message.endswith("The following tool_call_ids did not have response messages: c2")


def test_tool_ids_are_sanitised_consistently_and_restorable(sdk: Any) -> None:
    context = AnthropicContext()
    messages = [
        {"role": "user", "content": "x"},
        {"role": "assistant", "content": None, "tool_calls": [_call("call.1/a"), _call("call_1_a")]},
        {"role": "tool", "tool_call_id": "call_1_a", "content": "second"},
        {"role": "tool", "tool_call_id": "call.1/a", "content": "first"},
    ]
    out = translate({"messages": messages, "tools": [WEATHER_TOOL]}, context)
    uses = [b["id"] for b in out["messages"][1]["content"]]
    results = [b["tool_use_id"] for b in out["messages"][2]["content"]]
    # "call.1/a" came first and took "call_1_a"; the valid "call_1_a" then gets a hash suffix.
    suffix = hashlib.blake2b(b"call_1_a", digest_size=4).hexdigest()
    assert uses == ["call_1_a", f"call_1_a_{suffix}"]
    assert results == [uses[1], uses[0]]
    assert [context.tool_ids.from_anthropic(i) for i in uses] == ["call.1/a", "call_1_a"]
    assert context.tool_ids.from_anthropic("toolu_new") == "toolu_new"
    # The same history translated again gives the same ids (prompt caching depends on it).
    again = translate({"messages": messages, "tools": [WEATHER_TOOL]})
    assert again["messages"] == out["messages"]
    sdk.anthropic_request(out)


def test_tool_id_map_is_stable_per_id() -> None:
    ids = ToolIdMap()
    assert ids.to_anthropic("a:b") == "a_b"
    assert ids.to_anthropic("a:b") == "a_b"
    assert ids.to_anthropic("toolu_01AbC-x") == "toolu_01AbC-x"
    assert ids.to_anthropic("") == "id"


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ("auto", {"type": "auto"}),
        ("none", {"type": "none"}),
        ("required", {"type": "any"}),
        ({"type": "function", "function": {"name": "get_weather"}}, {"type": "tool", "name": "get_weather"}),
    ],
)
def test_tool_choice(sdk: Any, choice: Any, expected: dict[str, Any]) -> None:
    out = translate(
        {"messages": [{"role": "user", "content": "x"}], "tools": [WEATHER_TOOL], "tool_choice": choice}
    )
    assert out["tools"] == [ANTHROPIC_WEATHER_TOOL]
    assert out["tool_choice"] == expected
    sdk.anthropic_request(out)


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        (None, {"type": "auto", "disable_parallel_tool_use": True}),
        ("required", {"type": "any", "disable_parallel_tool_use": True}),
        (
            {"type": "function", "function": {"name": "get_weather"}},
            {"type": "tool", "name": "get_weather", "disable_parallel_tool_use": True},
        ),
        ("none", {"type": "none"}),
    ],
)
def test_parallel_tool_calls_false(sdk: Any, choice: Any, expected: dict[str, Any]) -> None:
    body: dict[str, Any] = {
        "messages": [{"role": "user", "content": "x"}],
        "tools": [WEATHER_TOOL],
        "parallel_tool_calls": False,
    }
    if choice is not None:
        body["tool_choice"] = choice
    out = translate(body)
    assert out["tool_choice"] == expected
    sdk.anthropic_request(out)


def test_allowed_tools_narrows_the_tool_list(sdk: Any) -> None:
    other = {"type": "function", "function": {"name": "now"}}
    out = translate(
        {
            "messages": [{"role": "user", "content": "x"}],
            "tools": [WEATHER_TOOL, other],
            "tool_choice": {
                "type": "allowed_tools",
                "allowed_tools": {
                    "mode": "required",
                    "tools": [{"type": "function", "function": {"name": "now"}}],
                },
            },
        }
    )
    assert out["tools"] == [{"name": "now", "input_schema": {"type": "object", "properties": {}}}]
    assert out["tool_choice"] == {"type": "any"}
    sdk.anthropic_request(out)


def test_schema_repair_hook_is_applied_to_every_schema(sdk: Any) -> None:
    seen: list[object] = []

    def repair(schema: object) -> object:
        seen.append(schema)
        return {"type": "object", "properties": {}, "repaired": True}

    out = translate(
        {
            "messages": [{"role": "user", "content": "x"}],
            "tools": [WEATHER_TOOL],
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "answer", "schema": {"type": "object"}},
            },
        },
        schema_repair=repair,
    )
    assert seen == [WEATHER_TOOL["function"]["parameters"], {"type": "object"}]
    assert [t["input_schema"] for t in out["tools"]] == [
        {"type": "object", "properties": {}, "repaired": True}
    ] * 2
    sdk.anthropic_request(out)


def test_json_schema_response_format_without_tools_forces_the_answer_tool(sdk: Any) -> None:
    context = AnthropicContext()
    schema = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}
    out = translate(
        {
            "messages": [{"role": "user", "content": "Who?"}],
            "response_format": {
                "type": "json_schema",
                "json_schema": {
                    "name": "person",
                    "description": "A person",
                    "schema": schema,
                    "strict": True,
                },
            },
        },
        context,
    )
    assert out["tools"] == [{"name": "person", "description": "A person", "input_schema": schema}]
    assert out["tool_choice"] == {"type": "tool", "name": "person"}
    assert context.json_tool == "person"
    sdk.anthropic_request(out)


def test_json_object_with_client_tools_requires_some_tool(sdk: Any) -> None:
    context = AnthropicContext()
    out = translate(
        {
            "messages": [{"role": "user", "content": "x"}],
            "tools": [WEATHER_TOOL],
            "tool_choice": "auto",
            "response_format": {"type": "json_object"},
        },
        context,
    )
    assert out["tools"] == [
        ANTHROPIC_WEATHER_TOOL,
        {
            "name": "json_response",
            "description": "Give your final answer by calling this tool; its input is the answer.",
            "input_schema": {"type": "object"},
        },
    ]
    assert out["tool_choice"] == {"type": "any"}
    assert context.json_tool == "json_response"
    sdk.anthropic_request(out)


def test_json_schema_name_clashing_with_a_client_tool_is_renamed() -> None:
    context = AnthropicContext()
    out = translate(
        {
            "messages": [{"role": "user", "content": "x"}],
            "tools": [WEATHER_TOOL],
            "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "get_weather", "schema": {"type": "object"}},
            },
        },
        context,
    )
    assert context.json_tool == "json_response"
    assert out["tool_choice"] == {"type": "tool", "name": "get_weather"}


def test_text_response_format_is_ignored() -> None:
    context = AnthropicContext()
    out = translate(
        {"messages": [{"role": "user", "content": "x"}], "response_format": {"type": "text"}}, context
    )
    assert "tools" not in out
    assert context.json_tool is None


def test_history_with_tool_calls_but_no_tools_declares_stubs(sdk: Any) -> None:
    out = translate(
        {
            "messages": [
                {"role": "user", "content": "x"},
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [_call("c1", "lookup"), _call("c2", "lookup")],
                },
                {"role": "tool", "tool_call_id": "c1", "content": "a"},
                {"role": "tool", "tool_call_id": "c2", "content": "b"},
            ],
            "tool_choice": "auto",
        }
    )
    assert out["tools"] == [{"name": "lookup", "input_schema": {"type": "object"}}]
    assert out["tool_choice"] == {"type": "none"}
    sdk.anthropic_request(out)


def test_no_tools_means_no_tool_fields() -> None:
    out = translate(
        {"messages": [{"role": "user", "content": "x"}], "tool_choice": "auto", "parallel_tool_calls": False}
    )
    assert "tools" not in out
    assert "tool_choice" not in out


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"messages": [{"role": "user", "content": "x"}], "n": 2}, "n"),
        (
            {
                "messages": [{"role": "user", "content": "x"}],
                "tools": [{"type": "custom", "custom": {"name": "c"}}],
            },
            "tools[0]",
        ),
        ({"messages": [{"role": "function", "name": "f", "content": "x"}]}, "messages[0]"),
        (
            {
                "messages": [{"role": "user", "content": "x"}],
                "tools": [WEATHER_TOOL],
                "tool_choice": {"type": "custom"},
            },
            "tool_choice",
        ),
    ],
)
def test_untranslatable_requests_are_refused(body: dict[str, Any], param: str) -> None:
    with pytest.raises(TranslationError) as err:
        translate(body)
    assert err.value.param == param


def test_caller_body_is_not_mutated() -> None:
    body = {
        "messages": [
            {"role": "system", "content": "s"},
            {"role": "user", "content": [text("u")]},
            {"role": "assistant", "content": "a ", "tool_calls": [_call("c.1")]},
            {"role": "tool", "tool_call_id": "c.1", "content": "r"},
            {"role": "assistant", "content": "end "},
        ],
        "tools": [WEATHER_TOOL, {"type": "function", "function": {"name": "now"}}],
        "tool_choice": {
            "type": "allowed_tools",
            "allowed_tools": {"mode": "auto", "tools": [{"type": "function", "function": {"name": "now"}}]},
        },
        "response_format": {"type": "json_object"},
    }
    before = copy.deepcopy(body)
    translate(body)
    assert body == before


@pytest.mark.parametrize(
    "body",
    [
        {"messages": "hello"},
        {"messages": [{"role": "user", "content": [7]}]},
        {"messages": [{"role": "user", "content": "x"}], "temperature": "hot"},
        {"messages": [{"role": "user", "content": "x"}], "tools": ["get_weather"]},
    ],
)
def test_malformed_bodies_are_translation_errors(body: dict[str, Any]) -> None:
    with pytest.raises(TranslationError) as err:
        translate(body)
    assert err.value.message.startswith("The request is malformed")
