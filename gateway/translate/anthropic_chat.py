"""Chat Completions over an Anthropic Messages upstream.

Requests go Chat -> Anthropic here (:func:`anthropic_request_from_chat`, with content blocks
from :mod:`.anthropic_content` and tools from :mod:`.anthropic_tools`); answers come back
Anthropic -> Chat in :mod:`.anthropic_answer` (:func:`chat_completion_from_anthropic`) and, for
streams, :class:`gateway.translate.anthropic_stream.AnthropicToChatStream`.

What a translated request needs to remember for its answer lives in an :class:`AnthropicContext`
that the caller creates, passes to the request translation, and passes again to the answer
translation: the tool-call id mapping and the name of the structured-output tool.

Decisions worth knowing:

* ``system`` and ``developer`` messages, wherever they are, become the top-level ``system``
  (Anthropic has no system role in ``messages``), in order.
* Turns alternate: consecutive messages of one role are merged into one turn; ``tool`` messages
  become ``tool_result`` blocks of a user turn, placed before any other user content.
  Tool-call pairing is checked with OpenAI's own rules and wording: every ``tool`` message must
  answer a call of the assistant message just before it, and every call must be answered before
  the next user or assistant message. Empty text is dropped (Anthropic rejects empty text
  blocks), and a final assistant turn (a prefill) loses trailing whitespace, which Anthropic
  also rejects.
* Tool-call ids are sanitised to ``[a-zA-Z0-9_-]`` (other characters become ``_``); the same id
  always maps to the same result, and two ids that would collide are told apart by a short
  hash suffix. The mapping is kept in the context so answers can be translated back.
* Tool arguments that are not a JSON object become ``{}`` (Anthropic requires an object).
* ``response_format`` (``json_schema`` or ``json_object``) is served with a tool: the schema is
  declared as one more tool, and ``tool_choice`` makes the model call it (forced when the client
  has no tools of its own, ``any`` otherwise). The answer translation turns that call back into
  the message ``content`` (JSON text) with ``finish_reason: "stop"``. This works on every Claude
  model without a beta header; Anthropic's native structured outputs are not used.
* If the history holds tool calls but the request declares no tools, each used tool is declared
  with an open schema and ``tool_choice: none``, because Anthropic wants tools defined whenever
  ``tool_use`` blocks are present.
* ``temperature`` is clamped to Anthropic's 0..1. ``metadata`` keeps only ``user_id`` (from
  ``user``, else ``safety_identifier``). ``strict`` on tools is not sent. Fields with no
  Anthropic counterpart (``seed``, penalties, ``logprobs``...) are dropped; ``n`` > 1 is refused.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from gateway.translate.anthropic_content import arguments_object, text_blocks, user_blocks
from gateway.translate.anthropic_context import AnthropicContext, SchemaRepair, ToolIdMap
from gateway.translate.anthropic_tools import add_tools
from gateway.translate.errors import TranslationError, rejects_malformed_input


@rejects_malformed_input
def anthropic_request_from_chat(
    body: Mapping[str, Any],
    *,
    upstream_model: str,
    default_max_tokens: int,
    schema_repair: SchemaRepair | None = None,
    context: AnthropicContext | None = None,
) -> dict[str, Any]:
    """Build an Anthropic Messages request body from a Chat Completions request.

    ``schema_repair`` is applied to every tool schema (and the ``response_format`` schema).
    Pass a fresh :class:`AnthropicContext` as ``context`` to translate the answer later.
    Raises :class:`TranslationError` for requests Anthropic cannot take.
    """
    ctx = context if context is not None else AnthropicContext()
    n = body.get("n")
    if n is not None and n != 1:
        raise TranslationError("This model supports only n=1.", param="n")

    system, turns = _system_and_turns(body.get("messages") or (), ctx.tool_ids)
    max_tokens = body.get("max_completion_tokens")
    if max_tokens is None:
        max_tokens = body.get("max_tokens")
    out: dict[str, Any] = {
        "model": upstream_model,
        "max_tokens": max_tokens if max_tokens is not None else default_max_tokens,
    }
    if system is not None:
        out["system"] = system
    out["messages"] = turns
    add_tools(out, body, turns, ctx, schema_repair)

    stop = body.get("stop")
    if isinstance(stop, str):
        out["stop_sequences"] = [stop]
    elif stop:
        out["stop_sequences"] = list(stop)
    temperature = body.get("temperature")
    if temperature is not None:
        out["temperature"] = min(max(float(temperature), 0.0), 1.0)
    if body.get("top_p") is not None:
        out["top_p"] = body["top_p"]
    user = body.get("user") or body.get("safety_identifier")
    if user:
        out["metadata"] = {"user_id": str(user)}
    if body.get("stream"):
        out["stream"] = True
    return out


def _system_and_turns(
    messages: Sequence[Mapping[str, Any]], tool_ids: ToolIdMap
) -> tuple[str | list[dict[str, Any]] | None, list[dict[str, Any]]]:
    system_blocks: list[dict[str, Any]] = []
    system_strings = 0
    turns: list[dict[str, Any]] = []
    expected: list[str] = []  # call ids of the last assistant message still waiting for results

    def add(role: str, blocks: list[dict[str, Any]]) -> None:
        if not blocks:
            return
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})

    def require_answered() -> None:
        if expected:
            raise TranslationError(
                "An assistant message with 'tool_calls' must be followed by tool messages responding to "
                "each 'tool_call_id'. The following tool_call_ids did not have response messages: "
                + ", ".join(expected),
                param="messages",
            )

    for i, message in enumerate(messages):
        role = message.get("role")
        content = message.get("content")
        if role in ("system", "developer"):
            if isinstance(content, str):
                system_strings += 1
            system_blocks.extend(text_blocks(content, f"messages[{i}].content"))
        elif role == "user":
            require_answered()
            add("user", user_blocks(content, i))
        elif role == "assistant":
            require_answered()
            blocks = text_blocks(content, f"messages[{i}].content")
            for call in message.get("tool_calls") or ():
                call_id = str(call.get("id") or "")
                function = call.get("function") or {}
                blocks.append(
                    {
                        "type": "tool_use",
                        "id": tool_ids.to_anthropic(call_id),
                        "name": function.get("name") or "",
                        "input": arguments_object(function.get("arguments")),
                    }
                )
                expected.append(call_id)
            add("assistant", blocks)
        elif role == "tool":
            call_id = str(message.get("tool_call_id") or "")
            if call_id not in expected:
                raise TranslationError(
                    "Messages with role 'tool' must be a response to a preceding message with 'tool_calls'.",
                    param=f"messages[{i}]",
                )
            expected.remove(call_id)
            result: dict[str, Any] = {"type": "tool_result", "tool_use_id": tool_ids.to_anthropic(call_id)}
            if isinstance(content, str):
                if content:
                    result["content"] = content
            elif content:
                result["content"] = text_blocks(content, f"messages[{i}].content")
            if turns and turns[-1]["role"] == "user":
                turns[-1]["content"].append(result)
            else:
                turns.append({"role": "user", "content": [result]})
        else:
            raise TranslationError(
                f"Messages with role {role!r} are not supported by this model.", param=f"messages[{i}]"
            )
    require_answered()
    _strip_prefill(turns)

    system: str | list[dict[str, Any]] | None = None
    if len(system_blocks) == 1 and system_strings == 1 and set(system_blocks[0]) == {"type", "text"}:
        system = system_blocks[0]["text"]
    elif system_blocks:
        system = system_blocks
    return system, turns


def _strip_prefill(turns: list[dict[str, Any]]) -> None:
    if not turns or turns[-1]["role"] != "assistant":
        return
    blocks = turns[-1]["content"]
    last = blocks[-1]
    if last["type"] != "text":
        return
    text = last["text"].rstrip()
    if text:
        blocks[-1] = {**last, "text": text}
        return
    blocks.pop()
    if not blocks:
        turns.pop()
