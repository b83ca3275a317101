"""Anthropic Messages answers -> Chat Completions (non-streaming; the stream converter
shares the stop-reason and usage mappings).

A call of the structured-output tool (see :mod:`gateway.translate.anthropic_tools`) becomes the
message ``content`` (JSON text) with ``finish_reason: "stop"``; tool-call ids go back to the
client's form through the request's :class:`AnthropicContext`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

from gateway.translate.anthropic_context import AnthropicContext

_ENCODER = msgspec.json.Encoder()

_STOP_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}


def finish_reason_from_stop_reason(stop_reason: str | None) -> str:
    """Anthropic ``stop_reason`` -> Chat ``finish_reason``."""
    return _STOP_REASONS.get(stop_reason or "", "stop")


def chat_usage_from_anthropic(usage: Mapping[str, Any] | None) -> dict[str, Any]:
    """Anthropic ``usage`` -> Chat ``usage``: prompt tokens include cache reads and writes."""
    usage = usage or {}
    fresh = int(usage.get("input_tokens") or 0)
    cache_read = int(usage.get("cache_read_input_tokens") or 0)
    cache_write = int(usage.get("cache_creation_input_tokens") or 0)
    prompt = fresh + cache_read + cache_write
    completion = int(usage.get("output_tokens") or 0)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": cache_read, "cache_write_tokens": cache_write},
    }


def encode_arguments(value: Any) -> str:
    """A tool ``input`` object as the JSON string Chat puts in ``arguments``."""
    return _ENCODER.encode(value if value is not None else {}).decode()


def chat_completion_from_anthropic(
    message: Mapping[str, Any],
    *,
    model: str,
    completion_id: str,
    created: int,
    context: AnthropicContext | None = None,
) -> dict[str, Any]:
    """Build a ``chat.completion`` from an Anthropic Message (non-streaming)."""
    ctx = context if context is not None else AnthropicContext()
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    json_answer: str | None = None
    for block in message.get("content") or ():
        kind = block.get("type")
        if kind == "text":
            texts.append(block.get("text") or "")
        elif kind == "tool_use":
            arguments = encode_arguments(block.get("input"))
            if ctx.json_tool is not None and block.get("name") == ctx.json_tool and json_answer is None:
                json_answer = arguments
                continue
            calls.append(
                {
                    "id": ctx.tool_ids.from_anthropic(str(block.get("id") or "")),
                    "type": "function",
                    "function": {"name": block.get("name") or "", "arguments": arguments},
                }
            )
    content: str | None
    if json_answer is not None:
        content = json_answer  # the structured answer replaces any chatter around it
    elif texts or not calls:
        content = "".join(texts)
    else:
        content = None
    finish_reason = finish_reason_from_stop_reason(message.get("stop_reason"))
    if finish_reason == "tool_calls" and not calls:
        finish_reason = "stop"
    chat_message: dict[str, Any] = {
        "role": "assistant",
        "content": content,
        "refusal": None,
        "annotations": [],
    }
    if calls:
        chat_message["tool_calls"] = calls
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [{"index": 0, "message": chat_message, "logprobs": None, "finish_reason": finish_reason}],
        "usage": chat_usage_from_anthropic(message.get("usage")),
    }
