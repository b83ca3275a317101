"""Reading upstream error bodies and in-band error payloads.

The shapes understood (first match wins):

* OpenAI / OpenAI-compatible: ``{"error": {"message", "type", "param", "code"}}``
* Anthropic: ``{"type": "error", "error": {"type", "message"}, "request_id"}``
* Google: ``{"error": {"code": 429, "message", "status": "RESOURCE_EXHAUSTED"}}`` (also as a
  one-element list)
* OpenAI Responses stream events: nested ``{"type": "error", "error": {...}, "status": 400}``,
  flat ``{"type": "error", "code", "message", "param"}``, and ``response.failed`` with
  ``response.error``
* vLLM and friends: a top-level ``{"object": "error", "message", "type", "code": 400}``
* Ollama and friends: ``{"error": "text"}``; FastAPI: ``{"detail": "text"}``
"""

from __future__ import annotations

import html
import re
import zlib
from collections.abc import Mapping
from typing import Any, NamedTuple

import msgspec

SCAN_LIMIT = 64 * 1024
DETAIL_LIMIT = 500

_DECODER = msgspec.json.Decoder()
_HTTP_DUMP = re.compile(r"(?:HTTP/\d(?:\.\d)?\s+\d{3}|[A-Z]+\s+\S+\s+HTTP/\d(?:\.\d)?)[^\n]*\n")
_DROPPED_ELEMENTS = re.compile(r"<(script|style)\b.*?</\1\s*>", re.IGNORECASE | re.DOTALL)
_TAG = re.compile(r"<[^>]*>")
_SPACES = re.compile(r"\s+")


class ErrorFields(NamedTuple):
    """What an upstream error object says about itself. Empty strings become ``None``."""

    message: str = ""
    type: str | None = None
    code: str | None = None
    param: str | None = None
    status_name: str | None = None  # Google's "status": "RESOURCE_EXHAUSTED"
    embedded_status: int = 0  # a numeric "code"/"status" in the body (OpenRouter, Google, vLLM)

    def signal_text(self) -> str:
        """The fields that carry classification signals, joined and lower-cased."""
        parts = (self.type, self.code, self.status_name, self.message)
        return " ".join(part for part in parts if part).lower()

    def label_text(self) -> str:
        """Only the machine-readable labels (type, code, status name), lower-cased."""
        parts = (self.type, self.code, self.status_name)
        return " ".join(part for part in parts if part).lower()


class ParsedBody(NamedTuple):
    fields: ErrorFields | None  # None when the body is not a recognisable error object
    text: str  # what to classify: the error object's signal text, or the cleaned body text
    detail: str  # the provider's own message, already truncated


def truncate_detail(text: str) -> str:
    """Trim, then cap at 500 characters (499 and an ellipsis)."""
    text = text.strip()
    if len(text) <= DETAIL_LIMIT:
        return text
    return text[: DETAIL_LIMIT - 1] + "…"


def _string(value: Any) -> str | None:
    if isinstance(value, str):
        value = value.strip()
        return value or None
    return None


def _status_number(value: Any) -> int:
    if isinstance(value, bool):
        return 0
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and len(value) == 3 and value.isdigit():
        number = int(value)
    else:
        return 0
    return number if 400 <= number <= 599 else 0


def error_fields(obj: Mapping[str, Any], *, status: Any = None) -> ErrorFields:
    """Read an error object; ``status`` is an enclosing event's ``status`` if any."""
    code = obj.get("code")
    raw_status = obj.get("status")
    embedded = _status_number(status) or _status_number(raw_status) or _status_number(code)
    return ErrorFields(
        message=_string(obj.get("message")) or "",
        type=_string(obj.get("type")),
        code=None if _status_number(code) or not isinstance(code, str) else _string(code),
        param=_string(obj.get("param")),
        status_name=_string(raw_status) if not _status_number(raw_status) else None,
        embedded_status=embedded,
    )


def locate_error(payload: Any) -> ErrorFields | None:
    """Find the error object in a decoded JSON document or stream event."""
    if isinstance(payload, list) and payload and isinstance(payload[0], Mapping):
        payload = payload[0]
    if not isinstance(payload, Mapping):
        return None
    kind = payload.get("type")
    status = payload.get("status")
    if kind == "response.failed":
        response = payload.get("response")
        inner = response.get("error") if isinstance(response, Mapping) else None
        if isinstance(inner, Mapping):
            return error_fields(inner)
        return ErrorFields()
    inner = payload.get("error")
    if isinstance(inner, Mapping):
        fields = error_fields(inner, status=status)
        if not fields.message:  # no message inside "error": the top-level "message"
            fields = fields._replace(message=_string(payload.get("message")) or "")
        return fields
    if isinstance(inner, str) and inner.strip():
        return ErrorFields(message=inner.strip(), embedded_status=_status_number(status))
    if kind == "error":  # the flat Responses event: its "type" names the event, not the error
        return error_fields(payload)._replace(type=None)
    if "message" in payload:
        return error_fields(payload)
    detail = _string(payload.get("detail"))
    if detail is not None:
        return ErrorFields(message=detail)
    return None


def _decompress(body: bytes) -> bytes:
    if body[:2] != b"\x1f\x8b":
        return body
    try:
        return zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(body, SCAN_LIMIT)
    except zlib.error:
        return body


def strip_http_dump(text: str) -> str:
    """Drop an HTTP dump's start line and headers (up to the first blank line)."""
    stripped = text.lstrip()
    if not _HTTP_DUMP.match(stripped):
        return text
    for separator in ("\r\n\r\n", "\n\n"):
        _, found, rest = stripped.partition(separator)
        if found:
            return rest
    return ""


def _first_sse_data(text: str) -> str | None:
    head = text.lstrip()
    if not (head.startswith("data:") or head.startswith("event:")):
        return None
    for line in head.splitlines():
        if line.startswith("data:"):
            return line[5:].strip()
    return None


def _plain(text: str) -> str:
    if text.lstrip().startswith("<"):
        text = html.unescape(_TAG.sub(" ", _DROPPED_ELEMENTS.sub(" ", text)))
    return _SPACES.sub(" ", text).strip()


def _decode_json(text: str) -> Any:
    candidate = text.strip()
    if not candidate or candidate[0] not in "{[":
        return None
    try:
        return _DECODER.decode(candidate)
    except msgspec.DecodeError:
        return None


def parse_body(body: bytes) -> ParsedBody:
    """Read at most 64 KiB of an upstream error body."""
    raw = _decompress(body[:SCAN_LIMIT])[:SCAN_LIMIT]
    text = strip_http_dump(raw.decode("utf-8", "replace"))
    data = _first_sse_data(text)
    document = _decode_json(data if data is not None else text)
    fields = locate_error(document) if document is not None else None
    if fields is not None:
        detail = fields.message or fields.code or fields.type or fields.status_name or ""
        return ParsedBody(fields, fields.signal_text(), truncate_detail(detail))
    plain = _plain(text)
    return ParsedBody(None, plain.lower(), truncate_detail(plain))
