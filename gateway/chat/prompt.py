"""Chat history to a Chat Completions ``messages`` list (spec §5.4, §8.8).

Only the model's view is built: system text, user text, assistant text with its tool calls,
and each call's result right after it. Repairs on every build: tool-call ids sanitized to
``[a-zA-Z0-9_-]``, arguments normalized to a JSON object, unanswered calls given a synthetic
error result, results without a call dropped.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec

from gateway.chat.model import Message, Part

UNANSWERED = "tool call was interrupted and did not receive a result"
_ID_UNSAFE = re.compile(r"[^a-zA-Z0-9_-]")
_ENC = msgspec.json.Encoder()


def safe_id(call_id: str) -> str:
    return _ID_UNSAFE.sub("_", call_id)


def object_args(args: str | None) -> str:
    try:
        value = msgspec.json.decode(args or "")
    except msgspec.DecodeError:
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
