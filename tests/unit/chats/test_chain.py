"""resolve_chain: when a turn may continue the upstream's stored response (spec §6.2)."""

from __future__ import annotations

from gateway.chats.model import Message, Part, text_part
from gateway.chats.prompt import Chain, resolve_chain
from gateway.dialects.responses import responses_input


def _m(role: str, *parts: Part, rid: str | None = None) -> Message:
    return Message(
        id=0,
        chat_id="c",
        role=role,
        content=list(parts),
        created_at="t",
        provider_response_id=rid,
        deployment="p/m" if rid else None,
    )


def test_chain_keeps_system_tool_outputs_and_new_user_messages() -> None:
    call = Part(type="tool-call", tool_call_id="c.1", tool_name="f", args="{}")
    history = [
        _m("system", text_part("sys")),
        _m("user", text_part("one")),
        _m("assistant", text_part("a"), call, rid="resp_1"),
        _m("tool", Part(type="tool-result", tool_call_id="c.1", tool_name="f", result='{"x":1}')),
        _m("user", text_part("  ")),  # says nothing: dropped
        _m("user", text_part("two")),
    ]
    assert resolve_chain(history) == Chain(
        "resp_1",
        "p/m",
        [
            {"role": "system", "content": "sys"},
            {"role": "tool", "tool_call_id": "c_1", "content": '{"x":1}'},
            {"role": "user", "content": "two"},
        ],
    )


def test_no_chain() -> None:
    answered = _m("assistant", text_part("a"), rid="resp_1")
    assert resolve_chain([_m("user", text_part("one"))]) is None  # first turn
    assert (
        resolve_chain(
            [_m("user", text_part("one")), _m("assistant", text_part("a")), _m("user", text_part("b"))]
        )
        is None
    )
    assert resolve_chain([_m("user", text_part("one")), answered]) is None  # no new user message
    tool = _m("tool", Part(type="tool-result", tool_call_id="x", tool_name="f", result="{}"))
    assert resolve_chain([_m("user", text_part("one")), answered, tool]) is None  # tool results: replay


def test_responses_input() -> None:
    messages = [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [{"id": "c", "function": {"name": "f", "arguments": "{}"}}],
        },
        {"role": "tool", "tool_call_id": "c", "content": "{}"},
    ]
    assert responses_input(messages) == [
        {"type": "function_call", "call_id": "c", "name": "f", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c", "output": "{}"},
    ]
