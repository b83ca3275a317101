"""Usage of a relayed Anthropic answer: from the JSON message, and from the stream going by.

Anthropic reports fresh input tokens, cache reads and cache writes apart; the gateway's
:class:`~gateway.pricing.Usage` counts them all in ``input_tokens`` (with the cached parts
also on their own). A stream reports usage in ``message_start`` and, cumulatively, in each
``message_delta``; the last one seen wins.
"""

from __future__ import annotations

import msgspec

from gateway.pricing import Usage


class _AnthropicUsage(msgspec.Struct):
    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_creation_input_tokens: int | None = None
    cache_read_input_tokens: int | None = None


class _Message(msgspec.Struct):
    usage: _AnthropicUsage | None = None
    model: str | None = None


class _Event(msgspec.Struct):
    type: str = ""
    message: _Message | None = None
    usage: _AnthropicUsage | None = None


_MESSAGE = msgspec.json.Decoder(_Message)
_EVENT = msgspec.json.Decoder(_Event)
_USAGE_MARK = b'"usage":'


def _usage(found: _AnthropicUsage, previous: Usage | None = None) -> Usage:
    def pick(value: int | None, before: int) -> int:
        return value if value is not None else before

    fresh = pick(found.input_tokens, 0)
    read = pick(found.cache_read_input_tokens, previous.cache_read_tokens if previous else 0)
    written = pick(found.cache_creation_input_tokens, previous.cache_write_tokens if previous else 0)
    if found.input_tokens is None and previous is not None:
        total = previous.input_tokens
    else:
        total = fresh + read + written
    return Usage(
        input_tokens=total,
        cache_read_tokens=read,
        cache_write_tokens=written,
        output_tokens=pick(found.output_tokens, previous.output_tokens if previous else 0),
    )


def usage_from_message(body: bytes) -> tuple[Usage | None, str | None]:
    """(usage, model) of an Anthropic JSON message (other fields skipped, not built)."""
    try:
        message = _MESSAGE.decode(body)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None, None
    return (_usage(message.usage) if message.usage else None), message.model


class AnthropicUsageTap:
    """Sees a passthrough Messages stream go by (whole events) and keeps its usage and model.

    Only events carrying ``"usage":`` are decoded (``message_start`` and ``message_delta``);
    every byte is passed on unchanged.
    """

    __slots__ = ("model", "usage")

    def __init__(self) -> None:
        self.usage: Usage | None = None
        self.model: str | None = None

    def feed(self, chunk: bytes) -> bytes:
        if _USAGE_MARK in chunk:
            for event in chunk.split(b"\n\n"):
                if _USAGE_MARK in event:
                    self._read(event)
        return chunk

    def flush(self) -> bytes:
        return b""

    def _read(self, event: bytes) -> None:
        data = b"".join(line[5:].lstrip() for line in event.splitlines() if line.startswith(b"data:"))
        try:
            decoded = _EVENT.decode(data)
        except (msgspec.DecodeError, msgspec.ValidationError):
            return
        if decoded.message is not None:
            if decoded.message.model:
                self.model = decoded.message.model
            if decoded.message.usage is not None:
                self.usage = _usage(decoded.message.usage, self.usage)
        elif decoded.usage is not None:
            self.usage = _usage(decoded.usage, self.usage)
