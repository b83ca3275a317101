"""Responses API shapes (response object, items, stream events), in the key order OpenAI sends them."""

from __future__ import annotations

from typing import Any

import msgspec


class InputTokensDetails(msgspec.Struct):
    cached_tokens: int = 0
    cache_write_tokens: int = 0


class OutputTokensDetails(msgspec.Struct):
    reasoning_tokens: int = 0


class ResponseUsage(msgspec.Struct, kw_only=True):
    input_tokens: int
    input_tokens_details: InputTokensDetails = msgspec.field(default_factory=InputTokensDetails)
    output_tokens: int
    output_tokens_details: OutputTokensDetails = msgspec.field(default_factory=OutputTokensDetails)
    total_tokens: int


class OutputText(msgspec.Struct):
    type: str
    text: str
    annotations: list[Any] = []
    logprobs: list[Any] = []


class MessageItem(msgspec.Struct):
    id: str
    type: str
    status: str
    role: str
    content: list[OutputText]


class FunctionCallItem(msgspec.Struct):
    id: str
    type: str
    status: str
    arguments: str
    call_id: str
    name: str


class SummaryText(msgspec.Struct):
    type: str
    text: str


class ReasoningItem(msgspec.Struct, omit_defaults=True):
    """`encrypted_content` only when the request's `include` asks for it."""

    id: str
    type: str
    summary: list[SummaryText]
    encrypted_content: str | None = None


OutputItem = ReasoningItem | MessageItem | FunctionCallItem


class FunctionToolEcho(msgspec.Struct):
    """A flat function tool as the response repeats it (`strict` true unless sent false)."""

    type: str
    name: str
    description: str | None
    parameters: Any
    strict: bool


class Reasoning(msgspec.Struct):
    effort: str | None = None
    summary: str | None = None


class ResponseError(msgspec.Struct):
    code: str
    message: str


class IncompleteDetails(msgspec.Struct):
    reason: str


class ResponseObject(msgspec.Struct, kw_only=True):
    """Every field of OpenAI's Response object, in the order OpenAI sends them: `id`, `object`,
    `created_at`, `status`, the rest alphabetically, `metadata` last."""

    id: str
    object: str = "response"
    created_at: int
    status: str
    background: bool = False
    completed_at: int | None
    error: ResponseError | None = None
    frequency_penalty: float = 0.0
    incomplete_details: IncompleteDetails | None = None
    instructions: str | None
    max_output_tokens: int | None
    max_tool_calls: int | None = None
    model: str
    output: list[OutputItem]
    parallel_tool_calls: bool
    presence_penalty: float = 0.0
    previous_response_id: str | None
    prompt_cache_key: str | None = None
    prompt_cache_retention: str | None = None
    reasoning: Reasoning
    safety_identifier: str | None = None
    service_tier: str = "default"
    store: bool
    temperature: float
    text: Any
    tool_choice: Any
    tools: list[Any]
    top_logprobs: int = 0
    top_p: float
    truncation: str
    usage: ResponseUsage | None
    user: str | None
    metadata: dict[str, str]


class Deleted(msgspec.Struct):
    id: str
    object: str
    deleted: bool


class ItemList(msgspec.Struct):
    object: str
    data: list[Any]
    first_id: str | None
    last_id: str | None
    has_more: bool


# --- stream events: `type` and `sequence_number` first, then the event's own fields ---


class ResponseEvent(msgspec.Struct):
    """response.created, response.in_progress, response.completed, response.incomplete, response.failed."""

    type: str
    sequence_number: int
    response: ResponseObject


class ItemEvent(msgspec.Struct):
    """response.output_item.added and response.output_item.done."""

    type: str
    sequence_number: int
    output_index: int
    item: OutputItem


class PartEvent(msgspec.Struct):
    """response.content_part.added and response.content_part.done."""

    type: str
    sequence_number: int
    item_id: str
    output_index: int
    content_index: int
    part: OutputText


class TextDeltaEvent(msgspec.Struct):
    type: str
    sequence_number: int
    item_id: str
    output_index: int
    content_index: int
    delta: str
    logprobs: list[Any] = []


class TextDoneEvent(msgspec.Struct):
    type: str
    sequence_number: int
    item_id: str
    output_index: int
    content_index: int
    text: str
    logprobs: list[Any] = []


class ArgumentsDeltaEvent(msgspec.Struct):
    type: str
    sequence_number: int
    item_id: str
    output_index: int
    delta: str


class ArgumentsDoneEvent(msgspec.Struct):
    type: str
    sequence_number: int
    item_id: str
    output_index: int
    name: str
    arguments: str


class SummaryPartEvent(msgspec.Struct):
    """response.reasoning_summary_part.added and response.reasoning_summary_part.done."""

    type: str
    sequence_number: int
    item_id: str
    output_index: int
    summary_index: int
    part: SummaryText


class SummaryDeltaEvent(msgspec.Struct):
    type: str
    sequence_number: int
    item_id: str
    output_index: int
    summary_index: int
    delta: str


class SummaryDoneEvent(msgspec.Struct):
    type: str
    sequence_number: int
    item_id: str
    output_index: int
    summary_index: int
    text: str


class StreamErrorDetail(msgspec.Struct):
    type: str
    code: str | None
    message: str
    param: str | None


class StreamErrorEvent(msgspec.Struct):
    """The nested form the live API sends (`error: {...}`), not the flat one of OpenAI's published
    schema (`code`, `message` and `param` at the top)."""

    type: str
    sequence_number: int
    error: StreamErrorDetail
