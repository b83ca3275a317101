"""Anthropic Messages requests over a Chat Completions upstream: Messages -> Chat.

A ``POST /v1/messages`` routed to a deployment that does not speak Messages is translated once,
here, into the canonical Chat Completions request; the answer comes back through
:mod:`.messages_answer` (JSON) or :mod:`.messages_stream` (events). A :class:`MessagesContext`
carries what the answer needs from the request.

What changes on the way:

* ``system`` (a string or text blocks) becomes the first ``system`` message, its text blocks
  joined with blank lines; ``system`` messages between turns stay ``system`` messages.
* User content: ``text`` (and the Agent SDK's ``input_text``) blocks stay text parts, images
  become ``image_url`` parts (base64 as data URLs), PDF documents ``file`` parts and plain-text
  documents text parts. ``tool_result`` blocks become ``tool`` messages placed before the rest
  of the turn, their content joined as text (``is_error`` results are prefixed ``Error:``).
* Assistant content: text blocks joined, ``tool_use`` blocks become ``tool_calls`` with the same
  ids (tool-use ids pass unchanged both ways, so a client's ids stay stable across turns).
* ``thinking`` and ``redacted_thinking`` blocks are dropped: a Chat upstream can neither check
  nor continue a signed Claude thought, and unsigned ones came from another provider.
* ``cache_control`` is dropped everywhere (Chat upstreams cache on their own or not at all).
* Tools become function tools (``input_schema`` as ``parameters``); ``tool_choice`` ``auto``,
  ``any`` (``required``), ``tool`` (the named function) and ``none``;
  ``disable_parallel_tool_use`` becomes ``parallel_tool_calls: false``. Server tools (a ``type``
  other than ``custom``) cannot run on a Chat upstream: 400.
* ``max_tokens`` -> ``max_completion_tokens``, ``stop_sequences`` -> ``stop``,
  ``metadata.user_id`` -> ``user``; ``temperature`` and ``top_p`` as they are; ``thinking``,
  ``service_tier`` and fields Chat has no counterpart for are not sent.
* For ``openai-compatible`` servers (:func:`for_compatible_server`): ``top_k`` as it is (vLLM,
  llama.cpp, Ollama, OpenRouter take it; OpenAI refuses it, so it is not sent there), and
  ``max_tokens`` beside ``max_completion_tokens`` (many such servers read only the older name).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

from gateway.translate.errors import TranslationError, rejects_malformed_input

_ENCODER = msgspec.json.Encoder()
_DROPPED_BLOCKS = frozenset({"thinking", "redacted_thinking"})
_TEXT_BLOCKS = frozenset({"text", "input_text"})


class MessagesContext:
    """What a translated Messages request leaves for its answer."""

    __slots__ = ("stop_sequences", "thinking")

    def __init__(self, *, thinking: bool = False, stop_sequences: tuple[str, ...] = ()) -> None:
        self.thinking = thinking
        """The client enabled extended thinking: upstream reasoning comes back as thinking blocks."""
        self.stop_sequences = stop_sequences


def context_of(data: Mapping[str, Any]) -> MessagesContext:
    thinking = data.get("thinking")
    enabled = isinstance(thinking, Mapping) and thinking.get("type") in ("enabled", "adaptive")
    stops = data.get("stop_sequences")
    sequences = tuple(s for s in stops if isinstance(s, str)) if isinstance(stops, list) else ()
    return MessagesContext(thinking=enabled, stop_sequences=sequences)


@rejects_malformed_input
def chat_request_from_messages(data: Mapping[str, Any], *, stream: bool) -> dict[str, Any]:
    """The canonical Chat Completions request for a (checked) Messages request.

    Raises :class:`TranslationError` for what a Chat upstream cannot take.
    """
    messages: list[dict[str, Any]] = []
    system = _system_text(data.get("system"))
    if system:
        messages.append({"role": "system", "content": system})
    for i, message in enumerate(data["messages"]):
        if message["role"] == "system":
            text = _system_text(message["content"])
            if text:
                messages.append({"role": "system", "content": text})
        elif message["role"] == "user":
            messages.extend(_user_messages(message["content"], i))
        else:
            assistant = _assistant_message(message["content"])
            if assistant is not None:
                messages.append(assistant)
    out: dict[str, Any] = {"model": data["model"], "messages": messages}
    out["max_completion_tokens"] = data["max_tokens"]
    tools = data.get("tools")
    if tools:
        out["tools"] = [_function_tool(tool, i) for i, tool in enumerate(tools)]
    _tool_choice(out, data.get("tool_choice"))
    stops = data.get("stop_sequences")
    if stops:
        out["stop"] = list(stops)
    for field in ("temperature", "top_p"):
        if data.get(field) is not None:
            out[field] = data[field]
    metadata = data.get("metadata")
    if isinstance(metadata, Mapping) and isinstance(metadata.get("user_id"), str):
        out["user"] = metadata["user_id"]
    if stream:
        out["stream"] = True
    return out


def for_compatible_server(chat: Mapping[str, Any], data: Mapping[str, Any]) -> dict[str, Any]:
    """``chat`` (from :func:`chat_request_from_messages`) for an ``openai-compatible`` server."""
    out = {**chat, "max_tokens": chat["max_completion_tokens"]}
    if data.get("top_k") is not None:
        out["top_k"] = data["top_k"]
    return out


def _system_text(system: Any) -> str:
    if isinstance(system, str):
        return system
    if not system:
        return ""
    return "\n\n".join(block.get("text") or "" for block in system if block.get("type") in _TEXT_BLOCKS)


def _blocks(content: Any) -> list[Mapping[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    blocks: list[Mapping[str, Any]] = content
    return blocks


def _result_text(block: Mapping[str, Any]) -> str:
    content = block.get("content")
    if content is None:
        text = ""
    elif isinstance(content, str):
        text = content
    else:
        text = "\n".join(part.get("text") or "" for part in content if part.get("type") in _TEXT_BLOCKS)
    return f"Error: {text}" if block.get("is_error") is True else text


def _user_messages(content: Any, index: int) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    parts: list[dict[str, Any]] = []
    for j, block in enumerate(_blocks(content)):
        kind = block.get("type")
        param = f"messages.{index}.content.{j}"
        if kind in _TEXT_BLOCKS:
            text = block.get("text") or ""
            if text:
                parts.append({"type": "text", "text": text})
        elif kind == "image":
            parts.append(_image_part(block.get("source"), param))
        elif kind == "document":
            parts.append(_document_part(block, param))
        elif kind == "tool_result":
            results.append(
                {
                    "role": "tool",
                    "tool_call_id": str(block.get("tool_use_id")),
                    "content": _result_text(block),
                }
            )
            for inner in block.get("content") or ():
                if isinstance(inner, Mapping) and inner.get("type") == "image":
                    parts.append(_image_part(inner.get("source"), param))
        elif kind in _DROPPED_BLOCKS:
            continue
        else:
            raise TranslationError(
                f"{param}: content blocks of type {kind!r} are not supported by this model."
            )
    out = results
    if parts:
        if len(parts) == 1 and parts[0]["type"] == "text":
            out.append({"role": "user", "content": parts[0]["text"]})
        else:
            out.append({"role": "user", "content": parts})
    return out


def _assistant_message(content: Any) -> dict[str, Any] | None:
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for block in _blocks(content):
        kind = block.get("type")
        if kind in _TEXT_BLOCKS:
            texts.append(block.get("text") or "")
        elif kind == "tool_use":
            calls.append(
                {
                    "id": str(block.get("id")),
                    "type": "function",
                    "function": {
                        "name": block.get("name"),
                        "arguments": _ENCODER.encode(block.get("input") or {}).decode(),
                    },
                }
            )
        # thinking, redacted_thinking and server-tool blocks have no Chat counterpart.
    text = "".join(texts)
    if not text and not calls:
        return None
    message: dict[str, Any] = {"role": "assistant", "content": text or None}
    if calls:
        message["tool_calls"] = calls
    return message


def _image_part(source: Any, param: str) -> dict[str, Any]:
    if isinstance(source, Mapping):
        if source.get("type") == "base64":
            url = f"data:{source.get('media_type')};base64,{source.get('data')}"
            return {"type": "image_url", "image_url": {"url": url}}
        if source.get("type") == "url" and isinstance(source.get("url"), str):
            return {"type": "image_url", "image_url": {"url": source["url"]}}
    raise TranslationError(f"{param}.source: images must be base64 data or a URL for this model.")


def _document_part(block: Mapping[str, Any], param: str) -> dict[str, Any]:
    source = block.get("source")
    if isinstance(source, Mapping):
        if source.get("type") == "text" and isinstance(source.get("data"), str):
            return {"type": "text", "text": source["data"]}
        if source.get("type") == "base64" and source.get("media_type") == "application/pdf":
            file: dict[str, Any] = {"file_data": f"data:application/pdf;base64,{source.get('data')}"}
            file["filename"] = str(block.get("title") or "document.pdf")
            return {"type": "file", "file": file}
    raise TranslationError(f"{param}.source: documents must be base64 PDF or plain text for this model.")


def _function_tool(tool: Mapping[str, Any], index: int) -> dict[str, Any]:
    kind = tool.get("type")
    if kind not in (None, "custom"):
        raise TranslationError(f"tools.{index}: tools of type {kind!r} are not supported by this model.")
    function: dict[str, Any] = {"name": tool.get("name")}
    if tool.get("description"):
        function["description"] = tool["description"]
    function["parameters"] = tool.get("input_schema") or {"type": "object", "properties": {}}
    return {"type": "function", "function": function}


def _tool_choice(out: dict[str, Any], choice: Any) -> None:
    if not isinstance(choice, Mapping):
        return
    kind = choice.get("type")
    if kind == "none":
        if "tools" in out:
            out["tool_choice"] = "none"
        return
    if "tools" not in out:
        return
    if kind == "any":
        out["tool_choice"] = "required"
    elif kind == "tool":
        out["tool_choice"] = {"type": "function", "function": {"name": choice.get("name")}}
    elif kind == "auto":
        out["tool_choice"] = "auto"
    if choice.get("disable_parallel_tool_use") is True:
        out["parallel_tool_calls"] = False
