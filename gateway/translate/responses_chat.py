"""Responses API over an upstream that speaks only Chat Completions.

Requests go Responses -> Chat here (:func:`chat_request_from_responses`, with message content
from :mod:`.responses_content` and tools from :mod:`.responses_tools`); answers come back
Chat -> Responses in :mod:`.responses_answer` (:func:`response_from_chat_completion`) and, for
streams, :class:`gateway.translate.responses_stream.ChatToResponsesStream`.

Decisions worth knowing:

* ``reasoning`` input items are **dropped**. Chat Completions has no standard way to send
  reasoning back; ``encrypted_content`` only means something to OpenAI, and folding summaries in
  as assistant text would make the model read its own notes as things it said.
* Tool calls and their outputs are re-paired: consecutive ``function_call`` items become one
  assistant message with several ``tool_calls`` (an assistant text message right before them is
  the same message), and the ``tool`` messages for a group follow it immediately, wherever their
  ``function_call_output`` items sat in the input. A call without an output, or an output without
  a call, is rejected with OpenAI's Responses wording. An assistant message that only calls tools
  has no ``content`` key at all (several servers refuse ``content: null`` beside ``tool_calls``).
* Function tools are passed with ``strict`` only when the client set it. The Responses API's
  own "strict when omitted" normalisation is not emulated on Chat upstreams. Namespaces are
  flattened and hosted tools dropped (:mod:`.responses_tools`).
* ``tool_choice`` and ``parallel_tool_calls`` are sent only when there are tools (OpenAI's Chat
  endpoint rejects them otherwise).
* Text-only content goes as one string (:mod:`.responses_content`).
* ``include: ["message.output_text.logprobs"]`` asks for ``logprobs`` (with ``top_logprobs``);
  the answer's token log probabilities come back in the output text's ``logprobs``.
* ``upstream_kind`` is the provider's kind. For ``openai-compatible`` servers (vLLM, llama.cpp,
  Ollama, LM Studio...), many of which ignore ``max_completion_tokens`` and refuse the
  ``developer`` role, ``max_output_tokens`` is sent as both ``max_completion_tokens`` and
  ``max_tokens``, ``developer`` messages go as ``system``, and the system messages that open the
  conversation (``instructions``, then the input's own) are one message, their texts joined by a
  blank line: many chat templates take a single system message, first.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import msgspec

from gateway.translate.errors import TranslationError, rejects_malformed_input
from gateway.translate.responses_content import TEXT_PART_TYPES, chat_message
from gateway.translate.responses_tools import (
    chat_response_format,
    chat_tool_choice,
    chat_tools,
    qualified_name,
)

# Request fields whose meaning and shape are the same in both dialects.
_SAME_FIELDS = (
    "temperature",
    "top_p",
    "user",
    "metadata",
    "stop",
    "safety_identifier",
    "prompt_cache_key",
    "service_tier",
    "presence_penalty",
    "frequency_penalty",
)

OPENAI_COMPATIBLE = "openai-compatible"
LOGPROBS_INCLUDE = "message.output_text.logprobs"


_ENCODER = msgspec.json.Encoder()


def input_items_from_input(value: str | Sequence[Mapping[str, Any]] | None) -> list[dict[str, Any]]:
    """Normalise a request's ``input`` to a list of items (a string is one user message)."""
    if value is None:
        return []
    if isinstance(value, str):
        return [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": value}]}]
    return [dict(item) for item in value]


@rejects_malformed_input
def chat_request_from_responses(
    request: Mapping[str, Any], input_items: Sequence[Mapping[str, Any]], *, upstream_kind: str = "openai"
) -> dict[str, Any]:
    """Build a Chat Completions request body from a Responses request.

    ``input_items`` is the whole conversation the model must see (history already rebuilt by the
    caller). ``model`` is copied from the request; the caller replaces it with the upstream's
    name. ``upstream_kind``: the provider's kind (``openai``, ``openai-compatible``...). Raises
    :class:`TranslationError` for input the Chat dialect cannot carry.
    """
    compatible = upstream_kind == OPENAI_COMPATIBLE
    messages: list[dict[str, Any]] = []
    instructions = request.get("instructions")
    if isinstance(instructions, str) and instructions:
        messages.append({"role": "system", "content": instructions})
    messages.extend(_messages_from_items(input_items, developer_role=not compatible))
    if compatible:
        _merge_leading_system(messages)

    body: dict[str, Any] = {"model": request.get("model"), "messages": messages}

    tools = request.get("tools")
    if tools:
        functions, _ = chat_tools(tools)
        tool_choice = request.get("tool_choice")
        choice = None if tool_choice is None else chat_tool_choice(tool_choice, has_functions=bool(functions))
        if functions:
            body["tools"] = functions
            if choice is not None:
                body["tool_choice"] = choice
            parallel = request.get("parallel_tool_calls")
            if parallel is not None:
                body["parallel_tool_calls"] = parallel

    text = request.get("text")
    if text is not None and isinstance(text, Mapping):
        fmt = text.get("format")
        if isinstance(fmt, Mapping):
            response_format = chat_response_format(fmt)
            if response_format is not None:
                body["response_format"] = response_format
        verbosity = text.get("verbosity")
        if verbosity is not None:
            body["verbosity"] = verbosity

    reasoning = request.get("reasoning")
    if reasoning is not None and isinstance(reasoning, Mapping) and reasoning.get("effort") is not None:
        body["reasoning_effort"] = reasoning["effort"]

    max_output_tokens = request.get("max_output_tokens")
    if max_output_tokens is not None:
        body["max_completion_tokens"] = max_output_tokens
        if compatible:
            body["max_tokens"] = max_output_tokens

    for key in _SAME_FIELDS:
        value = request.get(key)
        if value is not None:
            body[key] = value

    include = request.get("include")
    if isinstance(include, list) and LOGPROBS_INCLUDE in include:
        body["logprobs"] = True
        top = request.get("top_logprobs")
        if isinstance(top, int) and not isinstance(top, bool) and top > 0:
            body["top_logprobs"] = top

    if request.get("stream"):
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    return body


def _merge_leading_system(messages: list[dict[str, Any]]) -> None:
    count = 0
    while count < len(messages) and messages[count]["role"] == "system":
        count += 1
    if count > 1:
        text = "\n\n".join(str(message["content"]) for message in messages[:count])
        messages[:count] = [{"role": "system", "content": text}]


def _messages_from_items(items: Sequence[Mapping[str, Any]], *, developer_role: bool) -> list[dict[str, Any]]:
    outputs: dict[str, Mapping[str, Any]] = {}
    for item in items:
        if item.get("type") == "function_call_output":
            outputs.setdefault(str(item.get("call_id")), item)

    messages: list[dict[str, Any]] = []
    pending: list[str] = []  # call ids of the assistant tool-call group being built
    answered: set[str] = set()
    for item in items:
        kind = item.get("type")
        if kind is None and "role" in item:
            kind = "message"
        if kind == "message":
            if pending:
                _close_group(pending, outputs, answered, messages)
            messages.append(chat_message(item, developer_role=developer_role))
        elif kind == "function_call":
            call_id = str(item.get("call_id"))
            name = item.get("name")
            namespace = item.get("namespace")
            if isinstance(namespace, str) and namespace:
                name = qualified_name(namespace, str(name))
            call = {
                "id": call_id,
                "type": "function",
                "function": {"name": name, "arguments": item.get("arguments") or ""},
            }
            last = messages[-1] if messages else None
            if pending or (last is not None and last["role"] == "assistant" and "tool_calls" not in last):
                assert last is not None
                last.setdefault("tool_calls", []).append(call)
            else:
                messages.append({"role": "assistant", "tool_calls": [call]})
            pending.append(call_id)
        elif kind == "function_call_output":
            if pending:
                _close_group(pending, outputs, answered, messages)
            call_id = str(item.get("call_id"))
            if call_id not in answered:
                raise TranslationError(
                    f"No tool call found for function call output with call_id {call_id}.", param="input"
                )
        elif kind == "reasoning":
            continue  # dropped: see the module docstring
        elif kind == "item_reference":
            raise TranslationError(
                f"Item reference {item.get('id')!r} was not resolved before translation.", param="input"
            )
        else:
            raise TranslationError(
                f"Input items of type {kind!r} are not supported by this model.", param="input"
            )
    if pending:
        _close_group(pending, outputs, answered, messages)
    return messages


def _close_group(
    pending: list[str],
    outputs: Mapping[str, Mapping[str, Any]],
    answered: set[str],
    messages: list[dict[str, Any]],
) -> None:
    """The ``tool`` messages of the assistant's tool-call group, right after it."""
    for call_id in pending:
        output = outputs.get(call_id)
        if output is None:
            raise TranslationError(f"No tool output found for function call {call_id}.", param="input")
        messages.append(
            {"role": "tool", "tool_call_id": call_id, "content": _tool_output_text(output.get("output"))}
        )
        answered.add(call_id)
    pending.clear()


def _tool_output_text(output: Any) -> str:
    if output is None:
        return ""
    if isinstance(output, str):
        return output
    # The API takes a string or a list of parts; some clients send the JSON value itself.
    if not isinstance(output, list):
        return _ENCODER.encode(output).decode()
    texts: list[str] = []
    for part in output:
        if part.get("type") not in TEXT_PART_TYPES:
            raise TranslationError(
                "Function call outputs can only contain text for this model.", param="input"
            )
        texts.append(part.get("text") or "")
    return "\n".join(texts)
