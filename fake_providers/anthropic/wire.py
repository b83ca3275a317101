"""Anthropic Messages shapes (message, stream events, errors, models), in the key order Anthropic sends."""

from __future__ import annotations

from typing import Any

import msgspec


class CacheCreation(msgspec.Struct):
    ephemeral_5m_input_tokens: int = 0
    ephemeral_1h_input_tokens: int = 0


class Usage(msgspec.Struct):
    input_tokens: int
    output_tokens: int
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0
    cache_creation: CacheCreation = msgspec.field(default_factory=CacheCreation)
    service_tier: str = "standard"


class DeltaUsage(msgspec.Struct):
    """`message_delta.usage`: cumulative counts."""

    input_tokens: int
    output_tokens: int
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0


class TextBlock(msgspec.Struct):
    type: str
    text: str


class ToolUseBlock(msgspec.Struct):
    type: str
    id: str
    name: str
    input: Any


class ThinkingBlock(msgspec.Struct):
    type: str
    thinking: str
    signature: str


ContentBlock = TextBlock | ToolUseBlock | ThinkingBlock


class Message(msgspec.Struct):
    id: str
    type: str
    role: str
    model: str
    content: list[ContentBlock]
    stop_reason: str | None
    stop_sequence: str | None
    usage: Usage


class ErrorDetail(msgspec.Struct):
    type: str
    message: str


class ErrorBody(msgspec.Struct):
    type: str
    error: ErrorDetail
    request_id: str


class StreamError(msgspec.Struct):
    type: str
    error: ErrorDetail


class MessageStart(msgspec.Struct):
    type: str
    message: Message


class BlockStart(msgspec.Struct):
    type: str
    index: int
    content_block: ContentBlock


class TextDelta(msgspec.Struct):
    type: str
    text: str


class InputJsonDelta(msgspec.Struct):
    type: str
    partial_json: str


class ThinkingDelta(msgspec.Struct):
    type: str
    thinking: str


class SignatureDelta(msgspec.Struct):
    type: str
    signature: str


class BlockDelta(msgspec.Struct):
    type: str
    index: int
    delta: TextDelta | InputJsonDelta | ThinkingDelta | SignatureDelta


class BlockStop(msgspec.Struct):
    type: str
    index: int


class StopDelta(msgspec.Struct):
    stop_reason: str
    stop_sequence: str | None


class MessageDelta(msgspec.Struct):
    type: str
    delta: StopDelta
    usage: DeltaUsage


class Bare(msgspec.Struct):
    """`ping` and `message_stop`."""

    type: str


class ModelInfo(msgspec.Struct):
    type: str
    id: str
    display_name: str
    created_at: str
    max_input_tokens: int
    max_tokens: int
    lifecycle: str


class ModelPage(msgspec.Struct):
    data: list[ModelInfo]
    first_id: str | None
    last_id: str | None
    has_more: bool


class TokenCount(msgspec.Struct):
    """The answer of ``POST /v1/messages/count_tokens``."""

    input_tokens: int
