"""Chat history to a Chat Completions ``messages`` list.

Only the model's view is built: system text, user text, assistant text with its tool calls,
and each call's result right after it. Repairs on every build: tool-call ids sanitized to
``[a-zA-Z0-9_-]``, arguments normalized to a JSON object, unanswered calls given a synthetic
error result, results without a call dropped.

Each upstream dialect turns these messages into its own request (``gateway.dialects``). On a
dialect that stores answers a follow-up may instead *chain* (``resolve_chain``): system + new
user messages + ``previous_response_id`` of the last assistant message.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec

from gateway.chats.model import Message, Part
from gateway.errors.decoding import MALFORMED_JSON

UNANSWERED = "tool call was interrupted and did not receive a result"
_ID_UNSAFE = re.compile(r"[^a-zA-Z0-9_-]")
_ENC = msgspec.json.Encoder()


def safe_id(call_id: str) -> str:
    return _ID_UNSAFE.sub("_", call_id)


def object_args(args: str | None) -> str:
    try:
        value = msgspec.json.decode(args or "")
    except MALFORMED_JSON:
        return "{}"
    return args if isinstance(value, dict) and args else "{}"


def _text(parts: list[Part]) -> str:
    return "".join(p.text or "" for p in parts if p.type == "text")


def build_messages(history: list[Message]) -> list[dict[str, Any]]:
    results: dict[str, Part] = {}
    for message in history:
        if message.role == "tool":
            for part in message.content:
                if part.type == "tool-result" and part.tool_call_id:
                    results.setdefault(part.tool_call_id, part)
    out: list[dict[str, Any]] = []
    for message in history:
        if message.role in ("system", "user"):
            out.append({"role": message.role, "content": _text(message.content)})
        elif message.role == "assistant":
            calls = [p for p in message.content if p.type == "tool-call" and p.tool_call_id]
            entry: dict[str, Any] = {"role": "assistant", "content": _text(message.content) or None}
            if calls:
                entry["tool_calls"] = [
                    {
                        "id": safe_id(c.tool_call_id or ""),
                        "type": "function",
                        "function": {"name": c.tool_name or "", "arguments": object_args(c.args)},
                    }
                    for c in calls
                ]
            elif entry["content"] is None:
                entry["content"] = ""
            out.append(entry)
            for call in calls:
                result = results.get(call.tool_call_id or "")
                content = result.result if result is not None and result.result is not None else None
                if content is None:
                    content = _ENC.encode({"error": UNANSWERED}).decode()
                out.append(
                    {"role": "tool", "tool_call_id": safe_id(call.tool_call_id or ""), "content": content}
                )
    return out


class Chain(msgspec.Struct, frozen=True):
    """A follow-up that continues the upstream's stored response.

    ``messages`` (Chat Completions shape) is what the request carries besides
    ``previous_response_id``: every system message, the results of the previous response's tool
    calls that came after it (an upstream refuses a chain that leaves its calls unanswered), and
    the new user messages.
    """

    previous_response_id: str
    deployment: str
    messages: list[dict[str, Any]]


def resolve_chain(history: list[Message]) -> Chain | None:
    """The chain for the first step of a turn, or None for a full replay: the turn must start
    with user messages that say something, right after an assistant message (tool messages
    between them allowed) that recorded its upstream response and deployment."""
    end = len(history)
    start = end
    while start > 0 and history[start - 1].role == "user":
        start -= 1
    users = [m for m in history[start:end] if _text(m.content).strip()]
    if not users:
        return None
    after = start
    while after > 0 and history[after - 1].role == "tool":
        after -= 1
    if after == 0 or history[after - 1].role != "assistant":
        return None
    previous = history[after - 1]
    if not previous.provider_response_id or not previous.deployment:
        return None
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": _text(m.content)} for m in history if m.role == "system"
    ]
    called = {p.tool_call_id for p in previous.content if p.type == "tool-call" and p.tool_call_id}
    for message in history[after:start]:
        for part in message.content:
            if part.type == "tool-result" and part.tool_call_id in called:
                messages.append(
                    {
                        "role": "tool",
                        "tool_call_id": safe_id(part.tool_call_id or ""),
                        "content": part.result if part.result is not None else "{}",
                    }
                )
    messages += [{"role": "user", "content": _text(m.content)} for m in users]
    return Chain(previous.provider_response_id, previous.deployment, messages)
