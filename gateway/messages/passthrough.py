"""The body for an Anthropic upstream: the client's bytes, only the model name changed.

Prompt caching and thinking signatures depend on the request reaching Anthropic as the client
built it, so the body is never re-encoded: the top-level ``model`` value is located and
replaced in place, every other byte (``cache_control`` with its ``ttl``, thinking blocks and
their signatures, fields the gateway does not know, whitespace, key order) is kept.

The value's position comes from walking the top-level keys with the lengths of their raw
values (already decoded once by the request parser), so the cost is a few regular-expression
matches per top-level key, whatever the size of the conversation. A body that does not walk
cleanly (a duplicated key, for instance) is re-encoded from its decoded values instead.
"""

from __future__ import annotations

import re

import msgspec

_SPACE = re.compile(rb"[ \t\r\n]*")
_KEY = re.compile(rb'"(?:[^"\\]|\\.)*"[ \t\r\n]*:[ \t\r\n]*', re.DOTALL)
_COMMA = re.compile(rb"[ \t\r\n]*,?")
_ENCODER = msgspec.json.Encoder()


def _model_span(body: bytes, raw: dict[str, msgspec.Raw]) -> tuple[int, int] | None:
    """Where the top-level ``model`` value is in ``body`` (None when the walk fails)."""
    position = _SPACE.match(body).end()  # type: ignore[union-attr]  # matches the empty string
    if body[position : position + 1] != b"{":
        return None
    position += 1
    span: tuple[int, int] | None = None
    for key, value in raw.items():
        position = _SPACE.match(body, position).end()  # type: ignore[union-attr]
        found = _KEY.match(body, position)
        if found is None:
            return None
        start = found.end()
        end = start + len(value)
        if body[start:end] != bytes(value):
            return None
        if key == "model":
            span = (start, end)
        position = _COMMA.match(body, end).end()  # type: ignore[union-attr]
    return span


def with_model(body: bytes, raw: dict[str, msgspec.Raw], model: str) -> bytes:
    """``body`` with its top-level ``model`` set to ``model`` (unchanged when already so)."""
    encoded = _ENCODER.encode(model)
    current = raw.get("model")
    if current is not None and bytes(current) == encoded:
        return body
    span = _model_span(body, raw)
    if span is None:
        rebuilt = {key: msgspec.json.decode(value) for key, value in raw.items()}
        rebuilt["model"] = model
        return _ENCODER.encode(rebuilt)
    start, end = span
    return body[:start] + encoded + body[end:]
