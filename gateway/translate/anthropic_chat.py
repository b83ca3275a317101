"""Chat Completions over an Anthropic Messages upstream.

Requests go Chat -> Anthropic (:func:`anthropic_request_from_chat`); answers come back
Anthropic -> Chat (:func:`chat_completion_from_anthropic`, and for streams
:class:`gateway.translate.anthropic_stream.AnthropicToChatStream`).

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

import base64
import binascii
import hashlib
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import msgspec

from gateway.translate.errors import TranslationError, rejects_malformed_input

SchemaRepair = Callable[[object], object]

_ID_INVALID = re.compile(r"[^a-zA-Z0-9_-]")
_TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
_DATA_URL = re.compile(r"^data:([^;,]+)((?:;[^;,]*)*),(.*)$", re.DOTALL)
_JSON_TOOL_DEFAULT_NAME = "json_response"
_JSON_TOOL_DESCRIPTION = "Give your final answer by calling this tool; its input is the answer."
_ENCODER = msgspec.json.Encoder()
_DECODER = msgspec.json.Decoder()

_STOP_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}


class ToolIdMap:
    """Tool-call ids, client form <-> Anthropic form (``[a-zA-Z0-9_-]`` only)."""

    __slots__ = ("_back", "_to")

    def __init__(self) -> None:
        self._to: dict[str, str] = {}
        self._back: dict[str, str] = {}

    def to_anthropic(self, original: str) -> str:
        """The Anthropic-safe id for ``original``; the same input always gives the same output."""
        known = self._to.get(original)
        if known is not None:
            return known
        clean = _ID_INVALID.sub("_", original) or "id"
        taken_by = self._back.get(clean)
        if taken_by is not None and taken_by != original:
            clean = f"{clean}_{hashlib.blake2b(original.encode(), digest_size=4).hexdigest()}"
        self._to[original] = clean
        self._back[clean] = original
        return clean

    def from_anthropic(self, sent: str) -> str:
        """The client's id for an id seen on the Anthropic side (unknown ids are returned as is)."""
        return self._back.get(sent, sent)


class AnthropicContext:
    """What a translated request leaves for the translation of its answer."""

    __slots__ = ("json_tool", "tool_ids")

    def __init__(self) -> None:
        self.tool_ids = ToolIdMap()
        self.json_tool: str | None = None
        """Name of the tool that carries a structured (``response_format``) answer, if any."""


# --------------------------------------------------------------------------------------------
# Request: Chat -> Anthropic
# --------------------------------------------------------------------------------------------


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
    _add_tools(out, body, turns, ctx, schema_repair)

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
            system_blocks.extend(_text_blocks(content, f"messages[{i}].content"))
        elif role == "user":
            require_answered()
            add("user", _user_blocks(content, i))
        elif role == "assistant":
            require_answered()
            blocks = _text_blocks(content, f"messages[{i}].content")
            for call in message.get("tool_calls") or ():
                call_id = str(call.get("id") or "")
                function = call.get("function") or {}
                blocks.append(
                    {
                        "type": "tool_use",
                        "id": tool_ids.to_anthropic(call_id),
                        "name": function.get("name") or "",
                        "input": _arguments_object(function.get("arguments")),
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
                result["content"] = _text_blocks(content, f"messages[{i}].content")
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


def _text_block(text: str, part: Mapping[str, Any] | None) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "text", "text": text}
    if part is not None and part.get("cache_control") is not None:
        block["cache_control"] = part["cache_control"]
    return block


def _text_blocks(content: Any, param: str) -> list[dict[str, Any]]:
    """Text (or refusal) content -> non-empty text blocks."""
    if content is None:
        return []
    if isinstance(content, str):
        return [_text_block(content, None)] if content else []
    blocks: list[dict[str, Any]] = []
    for part in content:
        kind = part.get("type")
        if kind == "text":
            text = part.get("text") or ""
        elif kind == "refusal":
            text = part.get("refusal") or ""
        else:
            raise TranslationError(f"Content of type {kind!r} is not allowed here.", param=param)
        if text:
            blocks.append(_text_block(text, part))
    return blocks


def _user_blocks(content: Any, index: int) -> list[dict[str, Any]]:
    if content is None or isinstance(content, str):
        return _text_blocks(content, f"messages[{index}].content")
    blocks: list[dict[str, Any]] = []
    for j, part in enumerate(content):
        kind = part.get("type")
        param = f"messages[{index}].content[{j}]"
        if kind == "text":
            text = part.get("text") or ""
            if text:
                blocks.append(_text_block(text, part))
        elif kind == "image_url":
            blocks.append(_image_block(part, param))
        elif kind == "file":
            blocks.append(_document_block(part, param))
        else:
            raise TranslationError(f"Content of type {kind!r} is not supported by this model.", param=param)
    return blocks


def _image_block(part: Mapping[str, Any], param: str) -> dict[str, Any]:
    image = part.get("image_url")
    url = image.get("url") if isinstance(image, Mapping) else image
    if not isinstance(url, str):
        raise TranslationError("image_url.url is required.", param=param)
    source: dict[str, Any]
    if url.startswith("data:"):
        media_type, data = _base64_data_url(url, param)
        source = {"type": "base64", "media_type": media_type, "data": data}
    elif url.startswith(("https://", "http://")):
        source = {"type": "url", "url": url}
    else:
        raise TranslationError("Images must be given as a data URL or an http(s) URL.", param=param)
    block: dict[str, Any] = {"type": "image", "source": source}
    if part.get("cache_control") is not None:
        block["cache_control"] = part["cache_control"]
    return block


def _document_block(part: Mapping[str, Any], param: str) -> dict[str, Any]:
    file = part.get("file") or {}
    data_url = file.get("file_data")
    if not isinstance(data_url, str) or not data_url.startswith("data:"):
        raise TranslationError(
            "Files must be given inline as file_data (a data URL) for this model.", param=param
        )
    media_type, data = _base64_data_url(data_url, param)
    source: dict[str, Any]
    if media_type == "application/pdf":
        source = {"type": "base64", "media_type": media_type, "data": data}
    elif media_type == "text/plain":
        try:
            text = base64.b64decode(data, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise TranslationError("file_data is not valid base64 UTF-8 text.", param=param) from exc
        source = {"type": "text", "media_type": "text/plain", "data": text}
    else:
        raise TranslationError(f"Files of type {media_type!r} are not supported by this model.", param=param)
    block: dict[str, Any] = {"type": "document", "source": source}
    if file.get("filename"):
        block["title"] = file["filename"]
    return block


def _base64_data_url(url: str, param: str) -> tuple[str, str]:
    match = _DATA_URL.match(url)
    if match is None or ";base64" not in match.group(2):
        raise TranslationError("Data URLs must be base64 encoded (data:<type>;base64,<data>).", param=param)
    return match.group(1), match.group(3)


def _arguments_object(arguments: Any) -> dict[str, Any]:
    if isinstance(arguments, Mapping):
        return dict(arguments)
    if isinstance(arguments, str) and arguments:
        try:
            value = _DECODER.decode(arguments)
        except msgspec.DecodeError:
            return {}
        if isinstance(value, dict):
            return value
    return {}


def _add_tools(
    out: dict[str, Any],
    body: Mapping[str, Any],
    turns: list[dict[str, Any]],
    ctx: AnthropicContext,
    schema_repair: SchemaRepair | None,
) -> None:
    tools: list[dict[str, Any]] = []
    for i, tool in enumerate(body.get("tools") or ()):
        if tool.get("type") != "function":
            raise TranslationError(
                f"Tools of type {tool.get('type')!r} are not supported by this model.", param=f"tools[{i}]"
            )
        function = tool.get("function") or {}
        schema: Any = function.get("parameters")
        if schema is None:
            schema = {"type": "object", "properties": {}}
        if schema_repair is not None:
            schema = schema_repair(schema)
        declared: dict[str, Any] = {"name": function.get("name")}
        if function.get("description"):
            declared["description"] = function["description"]
        declared["input_schema"] = schema
        if tool.get("cache_control") is not None:
            declared["cache_control"] = tool["cache_control"]
        tools.append(declared)

    choice = _anthropic_tool_choice(body.get("tool_choice"), tools)
    json_tool = _json_tool(body.get("response_format"), tools, schema_repair)
    if json_tool is not None:
        ctx.json_tool = json_tool["name"]
        if not tools or (choice is not None and choice["type"] == "none"):
            choice = {"type": "tool", "name": json_tool["name"]}
        elif choice is None or choice["type"] in ("auto", "any"):
            choice = {"type": "any"}
        tools.append(json_tool)
    if not tools:
        used = _used_tool_names(turns)
        if not used:
            return
        tools = [{"name": name, "input_schema": {"type": "object"}} for name in used]
        choice = {"type": "none"}
    out["tools"] = tools
    if body.get("parallel_tool_calls") is False and (choice is None or choice["type"] != "none"):
        choice = dict(choice) if choice is not None else {"type": "auto"}
        choice["disable_parallel_tool_use"] = True
    if choice is not None:
        out["tool_choice"] = choice


def _anthropic_tool_choice(choice: Any, tools: list[dict[str, Any]]) -> dict[str, Any] | None:
    if choice is None:
        return None
    if choice == "auto":
        return {"type": "auto"}
    if choice == "none":
        return {"type": "none"}
    if choice == "required":
        return {"type": "any"}
    if isinstance(choice, Mapping):
        kind = choice.get("type")
        if kind == "function":
            return {"type": "tool", "name": (choice.get("function") or {}).get("name")}
        if kind == "allowed_tools":
            allowed = choice.get("allowed_tools") or {}
            names = {(t.get("function") or {}).get("name") for t in allowed.get("tools") or ()}
            tools[:] = [t for t in tools if t["name"] in names]
            return {"type": "any" if allowed.get("mode") == "required" else "auto"}
    raise TranslationError("Unsupported tool_choice for this model.", param="tool_choice")


def _json_tool(
    response_format: Any, tools: list[dict[str, Any]], schema_repair: SchemaRepair | None
) -> dict[str, Any] | None:
    if not isinstance(response_format, Mapping):
        return None
    kind = response_format.get("type")
    if kind == "json_object":
        spec: Mapping[str, Any] = {}
    elif kind == "json_schema":
        spec = response_format.get("json_schema") or {}
    else:
        return None
    schema: Any = spec.get("schema") or {"type": "object"}
    if schema_repair is not None:
        schema = schema_repair(schema)
    taken = {t["name"] for t in tools}
    name = spec.get("name")
    if not isinstance(name, str) or not _TOOL_NAME.match(name) or name in taken:
        name = _JSON_TOOL_DEFAULT_NAME
        while name in taken:
            name = "_" + name
    return {
        "name": name,
        "description": spec.get("description") or _JSON_TOOL_DESCRIPTION,
        "input_schema": schema,
    }


def _used_tool_names(turns: list[dict[str, Any]]) -> list[str]:
    names: dict[str, None] = {}
    for turn in turns:
        if turn["role"] == "assistant":
            for block in turn["content"]:
                if block["type"] == "tool_use":
                    names[block["name"]] = None
    return list(names)


# --------------------------------------------------------------------------------------------
# Answer: Anthropic -> Chat
# --------------------------------------------------------------------------------------------


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
