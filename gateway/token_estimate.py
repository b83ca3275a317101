"""A cheap prompt-size estimate, to refuse requests that clearly exceed a model's window.

The estimate is deliberately low rather than high: the gateway refuses a request without
calling upstream only when the estimate exceeds the window by a margin, so a wrong
refusal (overestimate) is worse than a missed one (the upstream then answers with its
own context-length error, which is classified as ``config``).

How it counts:

* **Text**: one token per :data:`BYTES_PER_TOKEN` (4) UTF-8 bytes, rounded up, per
  string. Typical ratios of current tokenizers: English prose 4-4.8 bytes per token
  (cl100k, Llama 3, o200k at the high end) and about 3.5 for Claude's tokenizer; code
  and JSON 3-3.5; Chinese/Japanese about 3 (one token per 3-byte character). So the
  estimate is between about 15 % low and 20 % high on English prose, and 0-30 % low on
  code and CJK text. Text that tokenizes unusually well (long runs of one repeated
  character) is overestimated more; refuse only with a margin of at least 1.25x.
* **Structure**: :data:`TOKENS_PER_MESSAGE` (3) per message or input item and
  :data:`TOKENS_PER_REQUEST` (3) for the reply priming, as in OpenAI's published counting
  recipe; :data:`TOKENS_PER_TOOL` (4) per declared tool. Tool and response-format
  schemas count what providers render of them -- property names (+1 each),
  descriptions, titles, types, formats, patterns, enum/const/default values -- not the
  JSON keywords and punctuation, which would overestimate.
* **Media**: an image counts :data:`TOKENS_PER_IMAGE` (85, the smallest per-image cost
  OpenAI documents), audio and files :data:`TOKENS_PER_ATTACHMENT` (0 extra): their real
  cost depends on resolution or extracted text, and counting base64 bytes as text would
  overestimate by orders of magnitude. ``data:`` URLs are never read as text.
* Identifiers (ids, call ids, ``type`` tags, encrypted reasoning) are not counted.

Nothing is JSON-encoded: the estimate walks the decoded structure once and looks at the
length of each string (``str.isascii`` is a fast C check; non-ASCII strings are encoded
to count their bytes).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

BYTES_PER_TOKEN: Final = 4
TOKENS_PER_MESSAGE: Final = 3
TOKENS_PER_REQUEST: Final = 3
TOKENS_PER_TOOL: Final = 4
TOKENS_PER_IMAGE: Final = 85
TOKENS_PER_ATTACHMENT: Final = 0

# Keys whose string values are identifiers or opaque payloads, not prompt text.
_SKIPPED_KEYS: Final = frozenset(
    {
        "id",
        "type",
        "call_id",
        "tool_call_id",
        "status",
        "encrypted_content",
        "signature",
        "file_id",
        "detail",
        "format",
        "mime_type",
        "media_type",
        "cache_control",
        "strict",
    }
)
_IMAGE_TYPES: Final = frozenset({"image_url", "input_image", "image"})
_ATTACHMENT_TYPES: Final = frozenset({"input_audio", "file", "input_file", "audio", "document"})
_MAX_DEPTH: Final = 64


def text_tokens(text: str) -> int:
    """Estimated tokens of one string (0 for the empty string)."""
    if not text:
        return 0
    size = len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))
    return -(-size // BYTES_PER_TOKEN)


def estimate_chat_tokens(body: Mapping[str, Any]) -> int:
    """Estimated prompt tokens of a Chat Completions request body.

    Counts ``messages`` (string or part-list content, ``name``, ``tool_calls`` names and
    arguments, legacy ``function_call``, tool results), ``tools`` / legacy ``functions``
    (name, description, parameter schema) and a ``response_format`` JSON schema.
    """
    total = TOKENS_PER_REQUEST
    messages = body.get("messages")
    if isinstance(messages, Sequence) and not isinstance(messages, str):
        for message in messages:
            total += TOKENS_PER_MESSAGE
            if isinstance(message, Mapping):
                total += _chat_message(message)
            else:
                total += _value_tokens(message, 0)
    total += _tools_tokens(body.get("tools"))
    total += _tools_tokens(body.get("functions"))
    response_format = body.get("response_format")
    if isinstance(response_format, Mapping):
        json_schema = response_format.get("json_schema")
        if isinstance(json_schema, Mapping):
            total += _schema_tokens(json_schema.get("schema"), 0)
    return total


def estimate_responses_tokens(
    input_items: Sequence[Any] | str,
    instructions: str | None,
    tools: Sequence[Any] | None,
) -> int:
    """Estimated prompt tokens of a Responses request (``input``, ``instructions``, ``tools``).

    ``input_items`` may be the string form of ``input``. Message items count their text
    parts; ``function_call`` items their name and arguments; ``function_call_output``
    and custom tool items their output/input; reasoning items their summary text only;
    ``item_reference`` items nothing (their size is unknown here).
    """
    total = TOKENS_PER_REQUEST
    if instructions:
        total += TOKENS_PER_MESSAGE + text_tokens(instructions)
    if isinstance(input_items, str):
        total += TOKENS_PER_MESSAGE + text_tokens(input_items)
    else:
        for item in input_items:
            total += TOKENS_PER_MESSAGE
            if isinstance(item, Mapping):
                total += _responses_item(item)
            else:
                total += _value_tokens(item, 0)
    total += _tools_tokens(tools)
    return total


# --- chat -------------------------------------------------------------------------------


def _chat_message(message: Mapping[str, Any]) -> int:
    total = _content_tokens(message.get("content"))
    name = message.get("name")
    if isinstance(name, str):
        total += 1 + text_tokens(name)
    refusal = message.get("refusal")
    if isinstance(refusal, str):
        total += text_tokens(refusal)
    tool_calls = message.get("tool_calls")
    if isinstance(tool_calls, Sequence) and not isinstance(tool_calls, str):
        for call in tool_calls:
            if isinstance(call, Mapping):
                total += TOKENS_PER_MESSAGE + _function_call(call.get("function"))
    total += _function_call(message.get("function_call"))
    return total


def _function_call(call: object) -> int:
    if not isinstance(call, Mapping):
        return 0
    total = 0
    for key in ("name", "arguments"):
        value = call.get(key)
        if isinstance(value, str):
            total += text_tokens(value)
        elif value is not None:
            total += _value_tokens(value, 0)
    return total


def _content_tokens(content: object) -> int:
    if content is None:
        return 0
    if isinstance(content, str):
        return text_tokens(content)
    if isinstance(content, Sequence):
        return sum(_part_tokens(part) for part in content)
    return _value_tokens(content, 0)


def _part_tokens(part: object) -> int:
    if isinstance(part, str):
        return text_tokens(part)
    if not isinstance(part, Mapping):
        return 0
    kind = part.get("type")
    if not isinstance(kind, str):  # a list or an object is no type (and not hashable)
        return _value_tokens(part, 0)
    if kind in _IMAGE_TYPES:
        return TOKENS_PER_IMAGE
    if kind in _ATTACHMENT_TYPES:
        return TOKENS_PER_ATTACHMENT
    for key in ("text", "refusal"):
        value = part.get(key)
        if isinstance(value, str):
            return text_tokens(value)
    return _value_tokens(part, 0)


# --- responses --------------------------------------------------------------------------


def _responses_item(item: Mapping[str, Any]) -> int:
    kind = item.get("type")
    if kind is None or kind == "message":
        return _content_tokens(item.get("content"))
    if not isinstance(kind, str):  # a list or an object is no type (and not hashable)
        return _value_tokens(item, 0)
    if kind in ("function_call", "custom_tool_call"):
        total = 0
        for key in ("name", "arguments", "input"):
            value = item.get(key)
            if isinstance(value, str):
                total += text_tokens(value)
        return total
    if kind in ("function_call_output", "custom_tool_call_output"):
        return _content_tokens(item.get("output"))
    if kind == "reasoning":
        summary = item.get("summary")
        return _content_tokens(summary) if isinstance(summary, Sequence) else 0
    if kind == "item_reference":
        return 0
    if kind in _IMAGE_TYPES:
        return TOKENS_PER_IMAGE
    return _value_tokens(item, 0)


# --- tools and generic values -----------------------------------------------------------

# Schema keywords whose string values reach the prompt as text.
_SCHEMA_TEXT_KEYS: Final = ("description", "title", "type", "format", "pattern", "const", "default")
_SCHEMA_CHILD_KEYS: Final = ("items", "additionalProperties", "not")
_SCHEMA_LIST_KEYS: Final = ("anyOf", "oneOf", "allOf", "prefixItems")
_SCHEMA_MAP_KEYS: Final = ("$defs", "definitions")


def _tools_tokens(tools: object) -> int:
    if not isinstance(tools, Sequence) or isinstance(tools, str):
        return 0
    total = 0
    for tool in tools:
        total += TOKENS_PER_TOOL
        if not isinstance(tool, Mapping):
            continue
        function = tool.get("function")
        spec = function if isinstance(function, Mapping) else tool
        for key in ("name", "description"):
            value = spec.get(key)
            if isinstance(value, str):
                total += text_tokens(value)
        for key in ("parameters", "input_schema"):
            total += _schema_tokens(spec.get(key), 0)
    return total


def _schema_tokens(schema: object, depth: int) -> int:
    """Property names, descriptions, types, enum values: what a provider renders."""
    if not isinstance(schema, Mapping) or depth > _MAX_DEPTH:
        return 0
    total = 0
    for key in _SCHEMA_TEXT_KEYS:
        value = schema.get(key)
        if isinstance(value, str):
            total += text_tokens(value)
        elif isinstance(value, list):
            total += sum(text_tokens(v) for v in value if isinstance(v, str))
    enum = schema.get("enum")
    if isinstance(enum, list):
        total += sum(text_tokens(v) if isinstance(v, str) else 1 for v in enum)
    props = schema.get("properties")
    if isinstance(props, Mapping):
        for name, child in props.items():
            total += (
                1 + (text_tokens(name) if isinstance(name, str) else 0) + _schema_tokens(child, depth + 1)
            )
    for key in _SCHEMA_CHILD_KEYS:
        total += _schema_tokens(schema.get(key), depth + 1)
    for key in _SCHEMA_LIST_KEYS:
        children = schema.get(key)
        if isinstance(children, list):
            total += sum(_schema_tokens(child, depth + 1) for child in children)
    for key in _SCHEMA_MAP_KEYS:
        children = schema.get(key)
        if isinstance(children, Mapping):
            total += sum(_schema_tokens(child, depth + 1) for child in children.values())
    return total


def _value_tokens(value: object, depth: int) -> int:
    """Text of an arbitrary JSON value: its strings (not identifiers), 1 per other scalar."""
    if isinstance(value, str):
        if value.startswith("data:"):
            return TOKENS_PER_ATTACHMENT
        return text_tokens(value)
    if depth > _MAX_DEPTH:
        return 0
    if isinstance(value, Mapping):
        total = 0
        for key, child in value.items():
            if key in _SKIPPED_KEYS:
                continue
            total += _value_tokens(child, depth + 1)
        return total
    if isinstance(value, Sequence):
        return sum(_value_tokens(child, depth + 1) for child in value)
    if value is None or isinstance(value, bool | int | float):
        return 1
    return 0


__all__ = [
    "BYTES_PER_TOKEN",
    "TOKENS_PER_ATTACHMENT",
    "TOKENS_PER_IMAGE",
    "TOKENS_PER_MESSAGE",
    "TOKENS_PER_REQUEST",
    "TOKENS_PER_TOOL",
    "estimate_chat_tokens",
    "estimate_responses_tokens",
    "text_tokens",
]
