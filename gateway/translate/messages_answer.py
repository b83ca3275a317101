"""Chat Completions answers -> Anthropic Messages answers (the JSON message, and the mappings
the stream translation shares: stop reason, usage, ids).

* ``finish_reason`` -> ``stop_reason``: ``stop`` is ``end_turn``, or ``stop_sequence`` when the
  upstream names the stop string it hit (vLLM's ``stop_reason``) and the client asked for it;
  ``length`` is ``max_tokens``; ``tool_calls`` (and the legacy ``function_call``) ``tool_use``;
  ``content_filter`` ``refusal``.
* Usage: Anthropic's ``input_tokens`` are the fresh ones, so cached prompt tokens move to
  ``cache_read_input_tokens`` (and cache writes, where reported, to
  ``cache_creation_input_tokens``).
* Reasoning the upstream sends (``reasoning_content`` or ``reasoning``) comes back as a
  ``thinking`` block, without a signature, only when the client enabled thinking.
* Tool-call ids are the upstream's, unchanged; arguments that are not a JSON object become
  ``{}`` (Anthropic's ``input`` is always an object).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

import msgspec

from gateway.translate.messages_chat import MessagesContext

_DECODER = msgspec.json.Decoder()
_STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}


def message_id() -> str:
    return "msg_" + uuid.uuid4().hex[:24]


def stop_reason_of(choice: Mapping[str, Any], context: MessagesContext) -> tuple[str, str | None]:
    """(``stop_reason``, ``stop_sequence``) of a finished Chat choice."""
    finish = choice.get("finish_reason")
    hit = choice.get("stop_reason")
    if finish == "stop" and isinstance(hit, str) and hit in context.stop_sequences:
        return "stop_sequence", hit
    return _STOP_REASONS.get(str(finish), "end_turn"), None


def messages_usage(usage: Mapping[str, Any] | None, *, estimate: int = 0) -> dict[str, Any]:
    """A Chat ``usage`` as Anthropic's; ``estimate`` stands in for input tokens not reported."""
    usage = usage or {}
    prompt = usage.get("prompt_tokens")
    details = usage.get("prompt_tokens_details") or {}
    cached = int(details.get("cached_tokens") or 0)
    written = int(details.get("cache_creation_tokens") or details.get("cache_write_tokens") or 0)
    fresh = int(prompt) - cached - written if isinstance(prompt, int) else estimate
    return {
        "input_tokens": max(fresh, 0),
        "cache_creation_input_tokens": written,
        "cache_read_input_tokens": cached,
        "output_tokens": int(usage.get("completion_tokens") or 0),
    }


def reasoning_of(message: Mapping[str, Any]) -> str:
    reasoning = message.get("reasoning_content") or message.get("reasoning")
    return reasoning if isinstance(reasoning, str) else ""


def tool_input(arguments: Any) -> dict[str, Any]:
    if isinstance(arguments, str) and arguments:
        try:
            value = _DECODER.decode(arguments)
        except msgspec.DecodeError:
            return {}
        return value if isinstance(value, dict) else {}
    return dict(arguments) if isinstance(arguments, Mapping) else {}


def message_from_chat_completion(
    completion: Mapping[str, Any], *, context: MessagesContext, model: str, estimate: int
) -> dict[str, Any]:
    """A Chat Completion as an Anthropic ``message``. ``model``: the name to answer with when the
    completion has none; ``estimate``: input tokens when the upstream reported no usage."""
    choices = completion.get("choices") or [{}]
    choice = choices[0]
    message = choice.get("message") or {}
    content: list[dict[str, Any]] = []
    reasoning = reasoning_of(message)
    if reasoning and context.thinking:
        content.append({"type": "thinking", "thinking": reasoning, "signature": ""})
    text = message.get("content")
    refusal = message.get("refusal")
    if isinstance(text, str) and text:
        content.append({"type": "text", "text": text})
    elif isinstance(refusal, str) and refusal:
        content.append({"type": "text", "text": refusal})
    for call in message.get("tool_calls") or ():
        function = call.get("function") or {}
        content.append(
            {
                "type": "tool_use",
                "id": str(call.get("id") or ""),
                "name": function.get("name") or "",
                "input": tool_input(function.get("arguments")),
            }
        )
    stop_reason, stop_sequence = stop_reason_of(choice, context)
    if stop_reason == "end_turn" and isinstance(refusal, str) and refusal:
        stop_reason = "refusal"
    return {
        "id": message_id(),
        "type": "message",
        "role": "assistant",
        "model": completion.get("model") or model,
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": stop_sequence,
        "usage": messages_usage(completion.get("usage"), estimate=estimate),
    }
