"""Decoding and checking a Messages request before anything is spent on it.

The body is decoded once, its top level into raw JSON values (:class:`msgspec.Raw`, no objects
built) and each of those into Python values, so that the passthrough can put the body back
together byte for byte (:mod:`gateway.messages.passthrough`). Checked, in Anthropic's words
(``<field path>: <what is wrong>``), and refused with a 400 before any limit is spent or any
upstream called:

* ``model`` (a non-empty string), ``max_tokens`` (an integer of at least 1), ``messages`` (a
  non-empty array) are required; ``stream`` is a boolean, ``system`` a string or text blocks,
  ``temperature``/``top_p`` numbers, ``top_k`` an integer, ``stop_sequences`` strings,
  ``metadata`` an object, ``tools`` objects with a ``name``, ``tool_choice`` one of ``auto``,
  ``any``, ``tool`` (with ``name``) and ``none``;
* each message is an object with role ``user`` or ``assistant`` and content that is a string
  or an array of blocks, each an object with a string ``type``; or role ``system`` (an
  instruction between turns, as Claude Code sends) with text content;
* ``tool_use`` blocks only in assistant messages, with an object ``input``; each
  ``tool_result`` answers a ``tool_use`` of the message just before it, and each ``tool_use``
  that is followed by another message is answered there.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

from gateway.errors.client import InvalidRequest

_RAW = msgspec.json.Decoder(dict[str, msgspec.Raw])
_DECODER = msgspec.json.Decoder()
_CHOICES = frozenset({"auto", "any", "tool", "none"})
_ROLES = frozenset({"user", "assistant", "system"})


class MessagesRequest(msgspec.Struct):
    body: bytes  # as received
    raw: dict[str, msgspec.Raw]  # the top level, each value as its bytes
    data: dict[str, Any]
    model: str
    stream: bool
    max_tokens: int


def invalid(message: str) -> InvalidRequest:
    return InvalidRequest(message)


def _type_error(path: str, expected: str) -> InvalidRequest:
    return invalid(f"{path}: Input should be {expected}")


def parse_messages_request(body: bytes) -> MessagesRequest:
    try:
        raw = _RAW.decode(body)
        data = {key: _DECODER.decode(value) for key, value in raw.items()}
    except (msgspec.DecodeError, msgspec.ValidationError, RecursionError):
        raise invalid("There was an error parsing the body of your request as JSON.") from None
    model = data.get("model")
    if model is None:
        raise invalid("model: Field required")
    if not isinstance(model, str) or not model:
        raise _type_error("model", "a valid string")
    max_tokens = data.get("max_tokens")
    if max_tokens is None:
        raise invalid("max_tokens: Field required")
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool):
        raise _type_error("max_tokens", "a valid integer")
    if max_tokens < 1:
        raise _type_error("max_tokens", "greater than or equal to 1")
    stream = data.get("stream", False)
    if not isinstance(stream, bool):
        raise _type_error("stream", "a valid boolean")
    check_prompt(data)
    _check_options(data)
    return MessagesRequest(body=body, raw=raw, data=data, model=model, stream=stream, max_tokens=max_tokens)


def check_prompt(data: Mapping[str, Any]) -> None:
    """``messages``, ``system``, ``tools`` and ``tool_choice`` (what ``count_tokens`` takes too)."""
    messages = data.get("messages")
    if messages is None:
        raise invalid("messages: Field required")
    if not isinstance(messages, list):
        raise _type_error("messages", "a valid list")
    if not messages:
        raise invalid("messages: at least one message is required")
    _check_system(data.get("system"))
    pending: list[str] = []  # tool_use ids of the previous message
    for i, message in enumerate(messages):
        pending = _check_message(message, i, pending)
    tools = data.get("tools")
    if tools is not None:
        if not isinstance(tools, list):
            raise _type_error("tools", "a valid list")
        for i, tool in enumerate(tools):
            if not isinstance(tool, dict):
                raise _type_error(f"tools.{i}", "a valid dictionary")
            if not isinstance(tool.get("name"), str) or not tool["name"]:
                raise invalid(f"tools.{i}.name: Field required")
    choice = data.get("tool_choice")
    if choice is not None:
        if (
            not isinstance(choice, dict)
            or not isinstance(choice.get("type"), str)
            or choice["type"] not in _CHOICES
        ):
            raise invalid(
                "tool_choice: Input tag does not match any of the expected tags: 'auto', 'any', 'tool', 'none'"
            )
        if choice["type"] == "tool" and not isinstance(choice.get("name"), str):
            raise invalid("tool_choice.tool.name: Field required")


def _check_system(system: Any, path: str = "system") -> None:
    if system is None or isinstance(system, str):
        return
    if not isinstance(system, list):
        raise _type_error(path, "a valid string or a list of text blocks")
    for i, block in enumerate(system):
        if (
            not isinstance(block, dict)
            or block.get("type") != "text"
            or not isinstance(block.get("text"), str)
        ):
            raise _type_error(f"{path}.{i}", "a text block")


def _check_message(message: Any, i: int, pending: list[str]) -> list[str]:
    """Check one message; returns the ids of its ``tool_use`` blocks."""
    if not isinstance(message, dict):
        raise _type_error(f"messages.{i}", "a valid dictionary")
    role = message.get("role")
    if not isinstance(role, str) or role not in _ROLES:
        raise invalid(f"messages.{i}.role: Input should be 'user', 'assistant' or 'system'")
    content = message.get("content")
    if content is None:
        raise invalid(f"messages.{i}.content: Field required")
    if role == "system":  # an instruction between turns (Claude Code sends them): text only
        _check_system(content, f"messages.{i}.content")
        return pending
    uses: list[str] = []
    answered: list[str] = []
    if isinstance(content, list):
        for j, block in enumerate(content):
            path = f"messages.{i}.content.{j}"
            if not isinstance(block, dict) or not isinstance(block.get("type"), str):
                raise _type_error(path, "a valid dictionary with a 'type'")
            kind = block["type"]
            if kind == "tool_use":
                if role != "assistant":
                    raise invalid(f"{path}: tool_use blocks are only allowed in assistant messages")
                if not isinstance(block.get("input"), dict):
                    raise invalid(f"{path}.tool_use.input: Input should be a valid dictionary")
                uses.append(str(block.get("id")))
            elif kind == "tool_result":
                used = str(block.get("tool_use_id"))
                if role != "user" or used not in pending:
                    raise invalid(
                        f"{path}: unexpected `tool_use_id` found in `tool_result` blocks: {used}. Each "
                        "`tool_result` block must have a corresponding `tool_use` block in the previous message."
                    )
                answered.append(used)
            elif kind == "text" and not isinstance(block.get("text"), str):
                raise invalid(f"{path}.text: Field required")
    elif not isinstance(content, str):
        raise _type_error(f"messages.{i}.content", "a valid string or a list of content blocks")
    missing = [used for used in pending if used not in answered]
    if missing:
        raise invalid(
            f"messages.{i - 1}: `tool_use` ids were found without `tool_result` blocks immediately after: "
            f"{', '.join(missing)}. Each `tool_use` block must have a corresponding `tool_result` block in the "
            "next message."
        )
    return uses


def _check_options(data: Mapping[str, Any]) -> None:
    for field in ("temperature", "top_p"):
        value = data.get(field)
        if value is not None and (not isinstance(value, int | float) or isinstance(value, bool)):
            raise _type_error(field, "a valid number")
    top_k = data.get("top_k")
    if top_k is not None and (not isinstance(top_k, int) or isinstance(top_k, bool)):
        raise _type_error("top_k", "a valid integer")
    stops = data.get("stop_sequences")
    if stops is not None and (not isinstance(stops, list) or not all(isinstance(s, str) for s in stops)):
        raise _type_error("stop_sequences", "a valid list of strings")
    metadata = data.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        raise _type_error("metadata", "a valid dictionary")
