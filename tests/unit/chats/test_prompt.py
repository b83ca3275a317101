"""Pure pieces of the chat engine: the prompt built from history, tool schemas, titles."""

from __future__ import annotations

from gateway.chats.model import Message, Part, text_part
from gateway.chats.prompt import build_messages, object_args, safe_id
from gateway.chats.service import fallback_title
from gateway.chats.tools import dynamic_parameters


def _m(role: str, *parts: Part) -> Message:
    return Message(id=0, chat_id="c", role=role, content=list(parts), created_at="t")


def _call(call_id: str, args: str | None = '{"a":1}') -> Part:
    return Part(type="tool-call", tool_call_id=call_id, tool_name="f", args=args)


def _result(call_id: str, result: str) -> Part:
    return Part(type="tool-result", tool_call_id=call_id, tool_name="f", result=result)


def test_history_to_messages_with_repairs() -> None:
    history = [
        _m("system", text_part("be brief")),
        _m("user", text_part("hi")),
        _m("assistant", text_part("calling"), _call("call.1"), _call("call 2", "not json")),
        _m("tool", _result("call.1", '{"ok":true}')),
        # a result whose call is unknown is dropped; call 2 never got one
        _m("tool", _result("orphan", "{}")),
        _m("assistant"),
        _m("user", text_part("and?")),
    ]
    assert build_messages(history) == [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "hi"},
        {
            "role": "assistant",
            "content": "calling",
            "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": '{"a":1}'}},
                {"id": "call_2", "type": "function", "function": {"name": "f", "arguments": "{}"}},
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": '{"ok":true}'},
        {
            "role": "tool",
            "tool_call_id": "call_2",
            "content": '{"error":"tool call was interrupted and did not receive a result"}',
        },
        {"role": "assistant", "content": ""},
        {"role": "user", "content": "and?"},
    ]


def test_ids_and_args() -> None:
    assert safe_id("toolu_01:ab/c") == "toolu_01_ab_c"
    assert object_args("[1]") == "{}"
    assert object_args("") == "{}"
    assert object_args(None) == "{}"
    assert object_args('{"x":null}') == '{"x":null}'


def test_dynamic_schema_keeps_properties_and_non_empty_required() -> None:
    assert dynamic_parameters(None) == {"type": "object", "properties": {}}
    assert dynamic_parameters({"properties": None, "required": None}) == {"type": "object", "properties": {}}
    assert dynamic_parameters(
        {"type": "object", "properties": {"q": {"type": "string"}}, "required": []}
    ) == {
        "type": "object",
        "properties": {"q": {"type": "string"}},
    }
    assert dynamic_parameters(
        {"properties": {"q": {}}, "required": ["q"], "additionalProperties": False}
    ) == {
        "type": "object",
        "properties": {"q": {}},
        "required": ["q"],
    }


def test_fallback_title() -> None:
    assert fallback_title("") == "New Chat"
    assert fallback_title("  Weather in Paris?  ") == "Weather in Paris?"
    assert fallback_title("one two three four five six seven") == "one two three four five six…"
    assert fallback_title("x" * 100) == "x" * 79 + "…"
