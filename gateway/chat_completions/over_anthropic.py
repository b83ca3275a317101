"""Chat Completions over an Anthropic upstream: request, answer and stream translation glue."""

from __future__ import annotations

import uuid
from typing import Any

import msgspec

from gateway.errors import ClassifiedError, chat_stream_error_frame, classify_stream_error
from gateway.policy.usage import usage_from_dict
from gateway.pricing import Usage
from gateway.schema_fix import Target, repair_schema
from gateway.translate import (
    AnthropicContext,
    AnthropicToChatStream,
    InbandError,
    anthropic_request_from_chat,
    chat_completion_from_anthropic,
)
from gateway.upstream.call import malformed_event
from gateway.upstream.committed import StreamFailure, StreamTruncated
from gateway.upstream.sse import DONE_FRAME, SSEEvent, data_frame

_ENCODER = msgspec.json.Encoder()
_DECODER = msgspec.json.Decoder()
DEFAULT_MAX_TOKENS = 4096


def repair_for_anthropic(schema: object) -> object:
    return repair_schema(schema, Target.ANTHROPIC).schema


def completion_id() -> str:
    return "chatcmpl-" + uuid.uuid4().hex[:24]


def anthropic_body(chat: dict[str, Any], upstream_model: str, context: AnthropicContext) -> bytes:
    request = anthropic_request_from_chat(
        chat,
        upstream_model=upstream_model,
        default_max_tokens=DEFAULT_MAX_TOKENS,
        schema_repair=repair_for_anthropic,
        context=context,
    )
    return _ENCODER.encode(request)


def chat_completion_body(message: bytes, *, model: str, created: int, context: AnthropicContext) -> bytes:
    decoded = _DECODER.decode(message)
    completion = chat_completion_from_anthropic(
        decoded, model=model, completion_id=completion_id(), created=created, context=context
    )
    return _ENCODER.encode(completion)


class AnthropicToChatTranslator:
    """Anthropic stream events in, Chat Completions SSE frames out."""

    def __init__(
        self, *, model: str, created: int, include_usage: bool, provider: str, context: AnthropicContext
    ) -> None:
        self._stream = AnthropicToChatStream(
            model=model, completion_id=completion_id(), created=created, context=context
        )
        self._include_usage = include_usage
        self._provider = provider
        self._usage_seen = False

    @property
    def usage(self) -> Usage | None:
        """What Anthropic reported so far (message_start, then message_delta); None before any."""
        return usage_from_dict(self._stream.usage) if self._usage_seen else None

    def event(self, event: SSEEvent) -> bytes:
        try:
            payload = _DECODER.decode(event.data)
        except msgspec.DecodeError:
            raise StreamFailure(malformed_event(self._provider)) from None
        if not isinstance(payload, dict):
            raise StreamFailure(malformed_event(self._provider))
        kind = event.event if event.event != "message" else str(payload.get("type", ""))
        if kind == "message_start" or kind == "message_delta":
            self._usage_seen = True
        try:
            chunks = self._stream.feed(kind, payload)
        except InbandError as inband:
            raise StreamFailure(classify_stream_error(inband.payload, provider=self._provider)) from None
        return b"".join(data_frame(_ENCODER.encode(chunk)) for chunk in chunks)

    def end(self) -> bytes:
        if not self._stream.finished:
            raise StreamTruncated
        tail = data_frame(_ENCODER.encode(self._stream.usage_chunk())) if self._include_usage else b""
        return tail + DONE_FRAME

    def failure(self, classified: ClassifiedError) -> bytes:
        return chat_stream_error_frame(classified)
