"""The fake model: a deterministic answer computed from the request alone.

Without a script, the answer is:
1. a call to the forced tool when `tool_choice` names a function, or to the first tool when it is
   `required`, with arguments generated from the tool's schema (`arguments.py`);
2. otherwise, when the conversation ends with tool results:
   `Tool results: <name> returned <result>; <name> returned <result>` (in message order);
3. otherwise `You said: <text of the last user message>` (text parts joined with a space);
4. otherwise (no user message) `Hello!`.
A scripted reply replaces any part of that (text, chunks, tool calls, finish reason, usage).
The output is cut to `max_tokens` (4 characters per token, `finish_reason: "length"`).
A structured-output request (:func:`formatted_reply`) gets JSON instead of the text of 2-4.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import msgspec

from fake_providers.arguments import example_for_schema
from fake_providers.conversation import ChoiceMode, Conversation, Role, ToolSpec
from fake_providers.ids import IdSource
from fake_providers.script import ScriptedReply, ScriptedToolCall
from fake_providers.tokens import chars_for_tokens, message_tokens, text_tokens

_ENCODER = msgspec.json.Encoder()
_WORDS = re.compile(r"\S+\s*|\s+")


class GeneratedToolCall(msgspec.Struct, frozen=True):
    id: str
    name: str
    arguments: str


class Completion(msgspec.Struct, frozen=True, kw_only=True):
    text: str | None
    chunks: tuple[str, ...]
    tool_calls: tuple[GeneratedToolCall, ...]
    finish_reason: str
    input_tokens: int
    output_tokens: int


def input_tokens(conversation: Conversation) -> int:
    total = 0
    for turn in conversation.turns:
        chars = len(turn.text) + sum(len(call.name) + len(call.arguments) for call in turn.tool_calls)
        total += message_tokens(chars)
    for tool in conversation.tools:
        total += text_tokens(tool.name + tool.description + _ENCODER.encode(tool.parameters).decode())
    return total


def output_tokens(text: str | None, calls: tuple[GeneratedToolCall, ...]) -> int:
    total = text_tokens(text or "") + sum(text_tokens(call.name + call.arguments) for call in calls)
    return max(1, total)


def split_text(text: str) -> tuple[str, ...]:
    """Stream pieces: one word with its trailing whitespace each."""
    return tuple(_WORDS.findall(text))


def default_text(conversation: Conversation) -> str:
    turns = conversation.turns
    results = []
    index = len(turns) - 1
    while index >= 0 and turns[index].role is Role.TOOL:
        results.append(turns[index])
        index -= 1
    if results:
        names = {call.id: call.name for turn in turns for call in turn.tool_calls}
        described = (
            f"{names.get(result.tool_call_id or '', result.tool_call_id)} returned {result.text}"
            for result in reversed(results)
        )
        return "Tool results: " + "; ".join(described)
    for turn in reversed(turns):
        if turn.role is Role.USER:
            return "You said: " + turn.text
    return "Hello!"


def _forced_tool(conversation: Conversation) -> ToolSpec | None:
    choice = conversation.tool_choice
    if choice.mode is ChoiceMode.FUNCTION and choice.name is not None:
        return conversation.tool(choice.name)
    if choice.mode is ChoiceMode.REQUIRED and conversation.tools:
        return conversation.tools[0]
    return None


def _arguments(conversation: Conversation, name: str, given: Any) -> str:
    if given is msgspec.UNSET:
        tool = conversation.tool(name)
        given = example_for_schema(tool.parameters if tool is not None else None)
    if isinstance(given, str):
        return given
    return _ENCODER.encode(given).decode()


def _scripted_call(
    conversation: Conversation, call: ScriptedToolCall, new_call_id: Callable[[], str]
) -> GeneratedToolCall:
    return GeneratedToolCall(
        id=call.id or new_call_id(),
        name=call.name,
        arguments=_arguments(conversation, call.name, call.arguments),
    )


def _truncate(
    text: str | None, calls: tuple[GeneratedToolCall, ...], limit: int
) -> tuple[str | None, tuple[GeneratedToolCall, ...]]:
    budget = chars_for_tokens(limit)
    if text is not None:
        text = text[:budget]
        budget -= len(text)
    kept: list[GeneratedToolCall] = []
    for call in calls:
        if budget <= len(call.name):
            break
        arguments = call.arguments[: budget - len(call.name)]
        kept.append(msgspec.structs.replace(call, arguments=arguments))
        budget -= len(call.name) + len(arguments)
    return text, tuple(kept)


def compose(
    conversation: Conversation,
    scripted: ScriptedReply | None,
    ids: IdSource,
    *,
    new_call_id: Callable[[], str] | None = None,
) -> Completion:
    """`new_call_id` makes the ids of tool calls (default: `call_…`; Anthropic passes `toolu_…`)."""
    scripted = scripted or ScriptedReply()
    new_call_id = new_call_id or ids.tool_call_id
    calls: tuple[GeneratedToolCall, ...] = ()
    text: str | None = None
    if scripted.chunks is not None:
        text = "".join(scripted.chunks)
    elif scripted.text is not None:
        text = scripted.text
    if scripted.tool_calls is not None:
        calls = tuple(_scripted_call(conversation, call, new_call_id) for call in scripted.tool_calls)
    elif text is None:
        tool = _forced_tool(conversation)
        if tool is not None:
            calls = (
                GeneratedToolCall(
                    new_call_id(), tool.name, _arguments(conversation, tool.name, msgspec.UNSET)
                ),
            )
        else:
            text = default_text(conversation)
    finish = "tool_calls" if calls else "stop"
    limit = conversation.max_output_tokens
    if limit is not None and output_tokens(text, calls) > limit:
        text, calls = _truncate(text, calls, limit)
        finish = "length"
    if scripted.chunks is not None and text == "".join(scripted.chunks):
        chunks = tuple(scripted.chunks)
    else:
        chunks = split_text(text or "")
    usage = scripted.usage
    return Completion(
        text=text,
        chunks=chunks,
        tool_calls=calls,
        finish_reason=scripted.finish_reason or finish,
        input_tokens=usage.input_tokens
        if usage and usage.input_tokens is not None
        else input_tokens(conversation),
        output_tokens=(
            usage.output_tokens if usage and usage.output_tokens is not None else output_tokens(text, calls)
        ),
    )


def formatted_reply(
    response_format: Any, conversation: Conversation, scripted: ScriptedReply | None
) -> ScriptedReply | None:
    """The scripted reply of a structured-output request: with ``response_format`` (in the
    Responses ``text.format`` shape) of type ``json_schema`` the answer is an example of the schema,
    with ``json_object`` it is ``{"text": <the usual answer>}``. A scripted text or tool call, or a
    forced tool, wins."""
    kind = response_format.get("type") if isinstance(response_format, dict) else None
    if kind not in ("json_schema", "json_object"):
        return scripted
    if scripted is not None and (scripted.text, scripted.chunks, scripted.tool_calls) != (None, None, None):
        return scripted
    if conversation.tool_choice.mode in (ChoiceMode.FUNCTION, ChoiceMode.REQUIRED) and conversation.tools:
        return scripted
    if kind == "json_schema":
        value: Any = example_for_schema(response_format.get("schema"))
    else:
        value = {"text": default_text(conversation)}
    text = _ENCODER.encode(value).decode()
    return msgspec.structs.replace(scripted or ScriptedReply(), text=text)
