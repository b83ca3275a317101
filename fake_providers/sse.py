"""Server-sent-event framing shared by the dialects."""

from __future__ import annotations

from typing import Any

import msgspec

_ENCODER = msgspec.json.Encoder()

DONE_FRAME = b"data: [DONE]\n\n"


def data_frame(payload: Any) -> bytes:
    """`data: <json>` and a blank line (OpenAI Chat style, no `event:` line)."""
    return b"data: " + _ENCODER.encode(payload) + b"\n\n"


def event_frame(event: str, payload: Any) -> bytes:
    """`event: <name>`, `data: <json>` and a blank line (Responses and Anthropic style)."""
    return b"event: " + event.encode() + b"\ndata: " + _ENCODER.encode(payload) + b"\n\n"


def truncated(frame: bytes) -> bytes:
    """The same frame with its JSON cut in half: still SSE-framed, no longer parseable."""
    prefix, _, rest = frame.partition(b"data: ")
    body = rest.rstrip(b"\n")
    return prefix + b"data: " + body[: max(1, len(body) // 2)] + b"\n\n"
