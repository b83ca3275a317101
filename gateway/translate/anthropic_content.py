"""Chat message content -> Anthropic content blocks: text, images, documents, tool arguments.

Empty text is dropped (Anthropic rejects empty text blocks); ``cache_control`` on a part is
carried to its block. Images come as data URLs (base64) or http(s) URLs; files only inline as
base64 data URLs, PDF or UTF-8 plain text. Tool arguments that are not a JSON object become
``{}`` (Anthropic requires an object).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from typing import Any

import msgspec

from gateway.errors.decoding import MALFORMED_JSON
from gateway.translate.errors import TranslationError

_DATA_URL = re.compile(r"^data:([^;,]+)((?:;[^;,]*)*),(.*)$", re.DOTALL)
_DECODER = msgspec.json.Decoder()


def text_block(text: str, part: Mapping[str, Any] | None) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "text", "text": text}
    if part is not None and part.get("cache_control") is not None:
        block["cache_control"] = part["cache_control"]
    return block


def text_blocks(content: Any, param: str) -> list[dict[str, Any]]:
    """Text (or refusal) content -> non-empty text blocks."""
    if content is None:
        return []
    if isinstance(content, str):
        return [text_block(content, None)] if content else []
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
            blocks.append(text_block(text, part))
    return blocks


def user_blocks(content: Any, index: int) -> list[dict[str, Any]]:
    if content is None or isinstance(content, str):
        return text_blocks(content, f"messages[{index}].content")
    blocks: list[dict[str, Any]] = []
    for j, part in enumerate(content):
        kind = part.get("type")
        param = f"messages[{index}].content[{j}]"
        if kind == "text":
            text = part.get("text") or ""
            if text:
                blocks.append(text_block(text, part))
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


def arguments_object(arguments: Any) -> dict[str, Any]:
    if isinstance(arguments, Mapping):
        return dict(arguments)
    if isinstance(arguments, str) and arguments:
        try:
            value = _DECODER.decode(arguments)
        except MALFORMED_JSON:
            return {}
        if isinstance(value, dict):
            return value
    return {}
