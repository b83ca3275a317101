"""Responses API over an upstream that speaks only Chat Completions.

Requests go Responses -> Chat (:func:`chat_request_from_responses`); answers come back
Chat -> Responses (:func:`response_from_chat_completion`, and for streams
:class:`gateway.translate.responses_stream.ChatToResponsesStream`).

Decisions worth knowing:

* ``reasoning`` input items are **dropped**. Chat Completions has no standard way to send
  reasoning back; ``encrypted_content`` only means something to OpenAI, and folding summaries in
  as assistant text would make the model read its own notes as things it said.
* Tool calls and their outputs are re-paired: consecutive ``function_call`` items become one
  assistant message with several ``tool_calls`` (an assistant text message right before them is
  the same message), and the ``tool`` messages for a group follow it immediately, wherever their
  ``function_call_output`` items sat in the input. A call without an output, or an output without
  a call, is rejected with OpenAI's Responses wording.
* Function tools are passed with ``strict`` only when the client set it. The Responses API's
  own "strict when omitted" normalisation is not emulated on Chat upstreams.
* ``tool_choice`` and ``parallel_tool_calls`` are sent only when there are tools (OpenAI's Chat
  endpoint rejects them otherwise).
* Assistant message content is replayed as one string (the text of its parts joined), the form
  every OpenAI-compatible server accepts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import msgspec

from gateway.translate.errors import TranslationError, rejects_malformed_input
from gateway.translate.ids import Ids

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
)

_ENCODER = msgspec.json.Encoder()
_TEXT_PART_TYPES = frozenset({"input_text", "output_text", "text"})

# ResponseErrorCode values (the SDK validates `response.error.code` against this set).
RESPONSE_ERROR_CODES = frozenset(
    {
        "server_error",
        "rate_limit_exceeded",
        "invalid_prompt",
        "data_residency_mismatch",
        "bio_policy",
        "vector_store_timeout",
        "invalid_image",
        "invalid_image_format",
        "invalid_base64_image",
        "invalid_image_url",
        "image_too_large",
        "image_too_small",
        "image_parse_error",
        "image_content_policy_violation",
        "invalid_image_mode",
        "image_file_too_large",
        "unsupported_image_media_type",
        "empty_image_file",
        "failed_to_download_image",
        "image_file_not_found",
    }
)


# --------------------------------------------------------------------------------------------
# Request: Responses -> Chat
# --------------------------------------------------------------------------------------------


def input_items_from_input(value: str | Sequence[Mapping[str, Any]] | None) -> list[dict[str, Any]]:
    """Normalise a request's ``input`` to a list of items (a string is one user message)."""
    if value is None:
        return []
    if isinstance(value, str):
        return [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": value}]}]
    return [dict(item) for item in value]


@rejects_malformed_input
def chat_request_from_responses(
    request: Mapping[str, Any], input_items: Sequence[Mapping[str, Any]]
) -> dict[str, Any]:
    """Build a Chat Completions request body from a Responses request.

    ``input_items`` is the whole conversation the model must see (history already rebuilt by the
    caller). ``model`` is copied from the request; the caller replaces it with the upstream's
    name. Raises :class:`TranslationError` for input the Chat dialect cannot carry.
    """
    messages: list[dict[str, Any]] = []
    instructions = request.get("instructions")
    if isinstance(instructions, str) and instructions:
        messages.append({"role": "system", "content": instructions})
    messages.extend(_messages_from_items(input_items))

    body: dict[str, Any] = {"model": request.get("model"), "messages": messages}

    tools = request.get("tools")
    if tools:
        body["tools"] = [_chat_tool(tool, i) for i, tool in enumerate(tools)]
        tool_choice = request.get("tool_choice")
        if tool_choice is not None:
            body["tool_choice"] = _chat_tool_choice(tool_choice)
        parallel = request.get("parallel_tool_calls")
        if parallel is not None:
            body["parallel_tool_calls"] = parallel

    text = request.get("text")
    if isinstance(text, Mapping):
        fmt = text.get("format")
        if isinstance(fmt, Mapping):
            response_format = _chat_response_format(fmt)
            if response_format is not None:
                body["response_format"] = response_format
        verbosity = text.get("verbosity")
        if verbosity is not None:
            body["verbosity"] = verbosity

    reasoning = request.get("reasoning")
    if isinstance(reasoning, Mapping) and reasoning.get("effort") is not None:
        body["reasoning_effort"] = reasoning["effort"]

    max_output_tokens = request.get("max_output_tokens")
    if max_output_tokens is not None:
        body["max_completion_tokens"] = max_output_tokens

    for key in _SAME_FIELDS:
        value = request.get(key)
        if value is not None:
            body[key] = value

    if request.get("stream"):
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    return body


def _messages_from_items(items: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    outputs: dict[str, Mapping[str, Any]] = {}
    for item in items:
        if item.get("type") == "function_call_output":
            outputs.setdefault(str(item.get("call_id")), item)

    messages: list[dict[str, Any]] = []
    pending: list[str] = []  # call ids of the assistant tool-call group being built
    answered: set[str] = set()

    def close_group() -> None:
        for call_id in pending:
            output = outputs.get(call_id)
            if output is None:
                raise TranslationError(f"No tool output found for function call {call_id}.", param="input")
            messages.append(
                {"role": "tool", "tool_call_id": call_id, "content": _tool_output_text(output.get("output"))}
            )
            answered.add(call_id)
        pending.clear()

    for item in items:
        kind = item.get("type")
        if kind is None and "role" in item:
            kind = "message"
        if kind == "function_call":
            call_id = str(item.get("call_id"))
            call = {
                "id": call_id,
                "type": "function",
                "function": {"name": item.get("name"), "arguments": item.get("arguments") or ""},
            }
            last = messages[-1] if messages else None
            if pending or (last is not None and last["role"] == "assistant" and "tool_calls" not in last):
                assert last is not None
                last.setdefault("tool_calls", []).append(call)
            else:
                messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
            pending.append(call_id)
        elif kind == "function_call_output":
            close_group()
            call_id = str(item.get("call_id"))
            if call_id not in answered:
                raise TranslationError(
                    f"No tool call found for function call output with call_id {call_id}.", param="input"
                )
        elif kind == "message":
            close_group()
            messages.append(_chat_message(item))
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
    close_group()
    return messages


def _chat_message(item: Mapping[str, Any]) -> dict[str, Any]:
    role = item.get("role")
    content = item.get("content")
    if role == "assistant":
        if isinstance(content, str):
            return {"role": "assistant", "content": content}
        pieces: list[str] = []
        for part in content or ():
            kind = part.get("type")
            if kind in _TEXT_PART_TYPES:
                pieces.append(part.get("text") or "")
            elif kind == "refusal":
                pieces.append(part.get("refusal") or "")
            else:
                raise TranslationError(f"Assistant content of type {kind!r} is not supported.", param="input")
        return {"role": "assistant", "content": "".join(pieces)}
    if role in ("system", "developer"):
        if isinstance(content, str):
            return {"role": role, "content": content}
        parts: list[dict[str, Any]] = []
        for part in content or ():
            if part.get("type") not in _TEXT_PART_TYPES:
                raise TranslationError(f"{role} messages can only contain text.", param="input")
            parts.append({"type": "text", "text": part.get("text") or ""})
        return {"role": role, "content": parts}
    if role == "user":
        if isinstance(content, str):
            return {"role": "user", "content": content}
        return {"role": "user", "content": [_chat_user_part(part) for part in content or ()]}
    raise TranslationError(f"Unsupported message role {role!r}.", param="input")


def _chat_user_part(part: Mapping[str, Any]) -> dict[str, Any]:
    kind = part.get("type")
    if kind in _TEXT_PART_TYPES:
        return {"type": "text", "text": part.get("text") or ""}
    if kind == "input_image":
        url = part.get("image_url")
        if not url:
            raise TranslationError(
                "Images given by file_id are not supported by this model; send image_url.", param="input"
            )
        image: dict[str, Any] = {"url": url}
        if part.get("detail") is not None:
            image["detail"] = part["detail"]
        return {"type": "image_url", "image_url": image}
    if kind == "input_file":
        if part.get("file_url"):
            raise TranslationError(
                "Files given by file_url are not supported by this model; send file_data.", param="input"
            )
        file = {key: part[key] for key in ("file_data", "file_id", "filename") if part.get(key) is not None}
        return {"type": "file", "file": file}
    raise TranslationError(f"Input content of type {kind!r} is not supported by this model.", param="input")


def _tool_output_text(output: Any) -> str:
    if output is None:
        return ""
    if isinstance(output, str):
        return output
    if not isinstance(output, list):  # not in the spec, but some clients send the JSON value itself
        return _ENCODER.encode(output).decode()
    texts: list[str] = []
    for part in output:
        if part.get("type") not in _TEXT_PART_TYPES:
            raise TranslationError(
                "Function call outputs can only contain text for this model.", param="input"
            )
        texts.append(part.get("text") or "")
    return "\n".join(texts)


def _chat_tool(tool: Mapping[str, Any], index: int) -> dict[str, Any]:
    if tool.get("type") != "function":
        raise TranslationError(
            f"Tools of type {tool.get('type')!r} are not supported by this model.", param=f"tools[{index}]"
        )
    function: dict[str, Any] = {"name": tool.get("name")}
    for key in ("description", "parameters", "strict"):
        if tool.get(key) is not None:
            function[key] = tool[key]
    return {"type": "function", "function": function}


def _chat_tool_choice(choice: Any) -> Any:
    if isinstance(choice, str):
        return choice
    kind = choice.get("type")
    if kind == "function":
        return {"type": "function", "function": {"name": choice.get("name")}}
    if kind == "allowed_tools":
        allowed = []
        for tool in choice.get("tools") or ():
            if tool.get("type") != "function":
                raise TranslationError(
                    "Only function tools can be allowed for this model.", param="tool_choice"
                )
            allowed.append({"type": "function", "function": {"name": tool.get("name")}})
        return {
            "type": "allowed_tools",
            "allowed_tools": {"mode": choice.get("mode", "auto"), "tools": allowed},
        }
    raise TranslationError(
        f"tool_choice of type {kind!r} is not supported by this model.", param="tool_choice"
    )


def _chat_response_format(fmt: Mapping[str, Any]) -> dict[str, Any] | None:
    kind = fmt.get("type")
    if kind == "text":
        return None
    if kind == "json_object":
        return {"type": "json_object"}
    if kind == "json_schema":
        schema: dict[str, Any] = {"name": fmt.get("name")}
        for key in ("description", "schema", "strict"):
            if fmt.get(key) is not None:
                schema[key] = fmt[key]
        return {"type": "json_schema", "json_schema": schema}
    raise TranslationError(f"text.format of type {kind!r} is not supported.", param="text.format")


# --------------------------------------------------------------------------------------------
# Answer: Chat -> Responses
# --------------------------------------------------------------------------------------------


def response_shell(
    request: Mapping[str, Any], *, response_id: str, created_at: int, previous_response_id: str | None
) -> dict[str, Any]:
    """A Response object echoing the request's settings, ``in_progress``, with no output yet."""
    reasoning = request.get("reasoning")
    text = request.get("text")
    if isinstance(text, Mapping):
        text = dict(text)
        text.setdefault("format", {"type": "text"})
    else:
        text = {"format": {"type": "text"}}
    return {
        "id": response_id,
        "object": "response",
        "created_at": created_at,
        "status": "in_progress",
        "background": False,
        "completed_at": None,
        "error": None,
        "incomplete_details": None,
        "instructions": request.get("instructions"),
        "max_output_tokens": request.get("max_output_tokens"),
        "max_tool_calls": request.get("max_tool_calls"),
        "model": request.get("model"),
        "output": [],
        "parallel_tool_calls": request.get("parallel_tool_calls", True),
        "previous_response_id": previous_response_id,
        "prompt_cache_key": request.get("prompt_cache_key"),
        "reasoning": {
            "effort": reasoning.get("effort") if isinstance(reasoning, Mapping) else None,
            "summary": reasoning.get("summary") if isinstance(reasoning, Mapping) else None,
        },
        "safety_identifier": request.get("safety_identifier"),
        "store": request.get("store", True),
        "temperature": request.get("temperature", 1.0),
        "text": text,
        "tool_choice": request.get("tool_choice", "auto"),
        "tools": list(request.get("tools") or ()),
        "top_p": request.get("top_p", 1.0),
        "truncation": request.get("truncation", "disabled"),
        "usage": None,
        "user": request.get("user"),
        "metadata": dict(request.get("metadata") or {}),
    }


def usage_from_chat(usage: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """Chat ``usage`` -> Responses ``usage`` (cached and reasoning counts included)."""
    if not usage:
        return None
    prompt = int(usage.get("prompt_tokens") or 0)
    completion = int(usage.get("completion_tokens") or 0)
    prompt_details = usage.get("prompt_tokens_details") or {}
    completion_details = usage.get("completion_tokens_details") or {}
    total = usage.get("total_tokens")
    return {
        "input_tokens": prompt,
        "input_tokens_details": {
            "cached_tokens": int(prompt_details.get("cached_tokens") or 0),
            "cache_write_tokens": int(prompt_details.get("cache_write_tokens") or 0),
        },
        "output_tokens": completion,
        "output_tokens_details": {"reasoning_tokens": int(completion_details.get("reasoning_tokens") or 0)},
        "total_tokens": int(total) if total is not None else prompt + completion,
    }


def terminal_status(finish_reason: str | None) -> tuple[str, dict[str, Any] | None]:
    """Chat ``finish_reason`` -> Responses ``(status, incomplete_details)``."""
    if finish_reason == "length":
        return "incomplete", {"reason": "max_output_tokens"}
    if finish_reason == "content_filter":
        return "incomplete", {"reason": "content_filter"}
    return "completed", None


def response_error(error: Mapping[str, Any]) -> dict[str, Any]:
    """An OpenAI error object -> the ``{code, message}`` of a failed Response.

    ``code`` must be one of the ResponseErrorCode values; anything else becomes
    ``rate_limit_exceeded`` for rate limits and ``server_error`` otherwise.
    """
    code = error.get("code")
    if code not in RESPONSE_ERROR_CODES:
        rate_limited = error.get("kind") == "rate_limit" or error.get("type") in (
            "tokens",
            "requests",
            "rate_limit_error",
        )
        code = "rate_limit_exceeded" if rate_limited else "server_error"
    return {"code": code, "message": str(error.get("message") or "The upstream model failed.")}


def message_text_part(text: str, annotations: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": annotations or [], "logprobs": []}


def reasoning_text(message: Mapping[str, Any]) -> str | None:
    """The reasoning text some Chat servers add (``reasoning_content``, or ``reasoning``)."""
    value = message.get("reasoning_content")
    if not isinstance(value, str):
        value = message.get("reasoning")
    return value if isinstance(value, str) and value else None


def _annotations(chat_annotations: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for annotation in chat_annotations or ():
        citation = annotation.get("url_citation") if annotation.get("type") == "url_citation" else None
        if isinstance(citation, Mapping):
            out.append({"type": "url_citation", **citation})
    return out


def response_from_chat_completion(
    completion: Mapping[str, Any],
    *,
    request: Mapping[str, Any],
    response_id: str,
    created_at: int,
    ids: Ids,
    previous_response_id: str | None,
    completed_at: int | None = None,
) -> dict[str, Any]:
    """Build the full Response object for a (non-streaming) Chat completion.

    Only the first choice is used (Responses has no ``n``). ``completed_at`` is set on the
    response when given and the status is ``completed``.
    """
    response = response_shell(
        request, response_id=response_id, created_at=created_at, previous_response_id=previous_response_id
    )
    choices = completion.get("choices") or ()
    choice: Mapping[str, Any] = choices[0] if choices else {}
    message: Mapping[str, Any] = choice.get("message") or {}
    output: list[dict[str, Any]] = []

    thought = reasoning_text(message)
    if thought is not None:
        output.append(
            {
                "id": ids.reasoning(),
                "type": "reasoning",
                "summary": [],
                "content": [{"type": "reasoning_text", "text": thought}],
                "status": "completed",
            }
        )

    parts: list[dict[str, Any]] = []
    content = message.get("content")
    if isinstance(content, list):  # a few servers answer with parts
        content = "".join(p.get("text") or "" for p in content if isinstance(p, Mapping))
    if content:
        parts.append(message_text_part(content, _annotations(message.get("annotations"))))
    if message.get("refusal"):
        parts.append({"type": "refusal", "refusal": message["refusal"]})
    if parts:
        output.append(
            {
                "id": ids.message(),
                "type": "message",
                "status": "completed",
                "role": "assistant",
                "content": parts,
            }
        )

    for call in message.get("tool_calls") or ():
        function = call.get("function") or {}
        output.append(
            {
                "id": ids.function_call(),
                "type": "function_call",
                "status": "completed",
                "call_id": call.get("id") or ids.call(),
                "name": function.get("name") or "",
                "arguments": function.get("arguments") or "",
            }
        )

    status, incomplete = terminal_status(choice.get("finish_reason"))
    if status == "incomplete" and output:
        output[-1]["status"] = "incomplete"
    response["status"] = status
    response["incomplete_details"] = incomplete
    response["completed_at"] = completed_at if status == "completed" else None
    response["output"] = output
    response["usage"] = usage_from_chat(completion.get("usage"))
    return response
