"""Rendering a `Completion` as a Responses API object (JSON) or event stream.

A stream is `response.created` and `response.in_progress` (the response `in_progress`, no output,
`usage: null`); for the text, `output_item.added`, `content_part.added`, one `output_text.delta`
per piece, `output_text.done`, `content_part.done`, `output_item.done`; for each function call,
`output_item.added` (empty `arguments`), `function_call_arguments.delta` fragments of up to 16
characters, `function_call_arguments.done`, `output_item.done`; and last `response.completed` (or
`response.incomplete` when the output was cut by `max_output_tokens`). Every event is named
(`event: <type>`), carries a `sequence_number` counting from 0, and no `[DONE]` follows unless
`FakeOptions.responses_done_marker` is set.

When the request asks for reasoning, a `reasoning` item (`rs_…`) comes first: `output_item.added`
(empty summary), then per summary part `reasoning_summary_part.added`, one
`reasoning_summary_text.delta` per word, `reasoning_summary_text.done`,
`reasoning_summary_part.done`, and `output_item.done`.
"""

from __future__ import annotations

import base64
from typing import Any

import msgspec

from fake_providers.composer import Completion, split_text
from fake_providers.logprobs import RESPONSES_INCLUDE, token_logprob, tokens_logprobs
from fake_providers.openai.errors import ErrorDetail
from fake_providers.openai.responses_request import ResponsesRequest
from fake_providers.openai.responses_wire import (
    ArgumentsDeltaEvent,
    ArgumentsDoneEvent,
    FunctionCallItem,
    IncompleteDetails,
    ItemEvent,
    MessageItem,
    OutputItem,
    OutputText,
    OutputTokensDetails,
    PartEvent,
    ReasoningItem,
    ResponseError,
    ResponseEvent,
    ResponseObject,
    ResponseUsage,
    StreamErrorDetail,
    StreamErrorEvent,
    SummaryDeltaEvent,
    SummaryDoneEvent,
    SummaryPartEvent,
    SummaryText,
    TextDeltaEvent,
    TextDoneEvent,
)
from fake_providers.sse import DONE_FRAME, event_frame

ARGUMENT_FRAGMENT = 16
_INCOMPLETE_REASONS = {"length": "max_output_tokens", "content_filter": "content_filter"}


class ResponseIdentity(msgspec.Struct, frozen=True, kw_only=True):
    """The ids and time of one answer, chosen before rendering."""

    id: str
    created_at: int
    message_id: str
    call_item_ids: tuple[str, ...]  # one `fc_…` per tool call
    reasoning_id: str | None = None  # `rs_…` when the request asks for reasoning


# Reasoning tokens by `reasoning.effort` (a `summary` without an effort reasons at "medium").
REASONING_TOKENS = {"minimal": 4, "low": 16, "medium": 64, "high": 256, "xhigh": 512, "max": 512}
ENCRYPTED_INCLUDE = "reasoning.encrypted_content"


def reasons(request: ResponsesRequest) -> bool:
    """The fake reasons when asked to: `reasoning.effort` other than "none", or a `summary`."""
    effort = request.reasoning.effort
    if effort == "none":
        return False
    return effort is not None or request.reasoning.summary is not None


def reasoning_tokens(request: ResponsesRequest) -> int:
    if not reasons(request):
        return 0
    return REASONING_TOKENS.get(request.reasoning.effort or "medium", REASONING_TOKENS["medium"])


def reasoning_item(
    request: ResponsesRequest, identity: ResponseIdentity, completion: Completion
) -> ReasoningItem:
    """The summary (only when `reasoning.summary` is set) says what the answer will be."""
    assert identity.reasoning_id is not None
    summary: list[SummaryText] = []
    if request.reasoning.summary is not None:
        if completion.tool_calls:
            plan = "call " + ", ".join(call.name for call in completion.tool_calls)
        else:
            plan = "answer: " + (completion.text or "")[:80]
        summary = [SummaryText(type="summary_text", text=f"**Planning the reply**\n\nI will {plan}")]
    encrypted = None
    if ENCRYPTED_INCLUDE in request.include:
        encrypted = "gAAAAA" + base64.urlsafe_b64encode(identity.reasoning_id.encode()).decode()
    return ReasoningItem(
        id=identity.reasoning_id, type="reasoning", summary=summary, encrypted_content=encrypted
    )


def skeleton(request: ResponsesRequest, identity: ResponseIdentity) -> ResponseObject:
    """The response as `response.created` shows it: in progress, no output, no usage."""
    return ResponseObject(
        id=identity.id,
        created_at=identity.created_at,
        status="in_progress",
        completed_at=None,
        frequency_penalty=request.frequency_penalty,
        instructions=request.instructions,
        max_output_tokens=request.max_output_tokens,
        max_tool_calls=request.max_tool_calls,
        model=request.model,
        output=[],
        parallel_tool_calls=request.parallel_tool_calls,
        presence_penalty=request.presence_penalty,
        previous_response_id=request.previous_response_id,
        prompt_cache_key=request.prompt_cache_key,
        prompt_cache_retention=request.prompt_cache_retention,
        reasoning=request.reasoning,
        safety_identifier=request.safety_identifier,
        service_tier=request.service_tier,
        store=request.store,
        temperature=request.temperature,
        text={"format": request.text_format, "verbosity": request.text_verbosity},
        tool_choice=request.tool_choice_echo,
        tools=request.tools_echo,
        top_logprobs=request.top_logprobs,
        top_p=request.top_p,
        truncation=request.truncation,
        usage=None,
        user=request.user,
        metadata=request.metadata,
    )


def _incomplete(completion: Completion) -> IncompleteDetails | None:
    reason = _INCOMPLETE_REASONS.get(completion.finish_reason)
    return IncompleteDetails(reason=reason) if reason is not None else None


def _top_logprobs(request: ResponsesRequest) -> int | None:
    """How many alternatives each token carries when the request includes the text's log
    probabilities; None when it does not."""
    return request.top_logprobs if RESPONSES_INCLUDE in request.include else None


def _text_logprobs(request: ResponsesRequest, pieces: tuple[str, ...]) -> list[Any]:
    top = _top_logprobs(request)
    return [] if top is None else list(tokens_logprobs(pieces, top))


def output_items(
    request: ResponsesRequest, completion: Completion, identity: ResponseIdentity
) -> list[OutputItem]:
    status = "incomplete" if _incomplete(completion) is not None else "completed"
    items: list[OutputItem] = []
    if identity.reasoning_id is not None:
        items.append(reasoning_item(request, identity, completion))
    if completion.text is not None:
        part = OutputText(
            type="output_text", text=completion.text, logprobs=_text_logprobs(request, completion.chunks)
        )
        items.append(
            MessageItem(
                id=identity.message_id, type="message", status=status, role="assistant", content=[part]
            )
        )
    for item_id, call in zip(identity.call_item_ids, completion.tool_calls, strict=True):
        items.append(
            FunctionCallItem(
                id=item_id,
                type="function_call",
                status="completed",
                arguments=call.arguments,
                call_id=call.id,
                name=call.name,
            )
        )
    return items


def final_response(
    request: ResponsesRequest, identity: ResponseIdentity, completion: Completion
) -> ResponseObject:
    incomplete = _incomplete(completion)
    thought = reasoning_tokens(request) if identity.reasoning_id is not None else 0
    output = completion.output_tokens + thought
    return msgspec.structs.replace(
        skeleton(request, identity),
        status="incomplete" if incomplete is not None else "completed",
        completed_at=None if incomplete is not None else identity.created_at,
        incomplete_details=incomplete,
        output=output_items(request, completion, identity),
        usage=ResponseUsage(
            input_tokens=completion.input_tokens,
            output_tokens=output,
            total_tokens=completion.input_tokens + output,
            output_tokens_details=OutputTokensDetails(reasoning_tokens=thought),
        ),
    )


# What `response.error.code` may be (OpenAI's ResponseErrorCode); an in-band error with another
# code fails the response with `rate_limit_exceeded` (rate limits) or `server_error`.
RESPONSE_ERROR_CODES = frozenset(
    {
        "server_error",
        "rate_limit_exceeded",
        "invalid_prompt",
        "data_residency_mismatch",
        "bio_policy",
        "misalignment_policy_violation",
        "vector_store_timeout",
        "invalid_image",
        "invalid_image_format",
        "invalid_base64_image",
        "invalid_image_url",
        "image_too_large",
        "image_too_small",
        "image_parse_error",
        "image_content_policy_violation",
        "invalid_image_mode",
        "image_file_too_large",
        "unsupported_image_media_type",
        "empty_image_file",
        "failed_to_download_image",
        "image_file_not_found",
    }
)


def response_error_code(detail: ErrorDetail) -> str:
    if detail.code in RESPONSE_ERROR_CODES:
        return detail.code
    return "rate_limit_exceeded" if detail.type in ("requests", "tokens") else "server_error"


def failed_response(base: ResponseObject, detail: ErrorDetail) -> ResponseObject:
    return msgspec.structs.replace(
        base,
        status="failed",
        error=ResponseError(code=response_error_code(detail), message=detail.message),
        output=[],
        usage=None,
    )


class _Events:
    """Collects named frames; `seq` is the sequence number of the next event."""

    def __init__(self) -> None:
        self.frames: list[bytes] = []

    @property
    def seq(self) -> int:
        return len(self.frames)

    def add(
        self,
        event: ResponseEvent
        | ItemEvent
        | PartEvent
        | TextDeltaEvent
        | TextDoneEvent
        | ArgumentsDeltaEvent
        | ArgumentsDoneEvent
        | SummaryPartEvent
        | SummaryDeltaEvent
        | SummaryDoneEvent,
    ) -> None:
        self.frames.append(event_frame(event.type, event))


def response_frames(
    request: ResponsesRequest, identity: ResponseIdentity, completion: Completion, *, done_marker: bool
) -> list[bytes]:
    start = skeleton(request, identity)
    final = final_response(request, identity, completion)
    events = _Events()
    events.add(ResponseEvent(type="response.created", sequence_number=events.seq, response=start))
    events.add(ResponseEvent(type="response.in_progress", sequence_number=events.seq, response=start))
    for index, item in enumerate(final.output):
        if isinstance(item, ReasoningItem):
            _reasoning_events(events, index, item)
        elif isinstance(item, MessageItem):
            _message_events(events, index, item, completion.chunks, _top_logprobs(request))
        else:
            _call_events(events, index, item)
    terminal = "response.incomplete" if final.status == "incomplete" else "response.completed"
    events.add(ResponseEvent(type=terminal, sequence_number=events.seq, response=final))
    if done_marker:
        events.frames.append(DONE_FRAME)
    return events.frames


def _part_event(events: _Events, name: str, index: int, item_id: str, part: OutputText) -> PartEvent:
    return PartEvent(
        type=name, sequence_number=events.seq, item_id=item_id, output_index=index, content_index=0, part=part
    )


def _message_events(
    events: _Events, index: int, item: MessageItem, chunks: tuple[str, ...], top: int | None
) -> None:
    text = item.content[0].text
    opened = msgspec.structs.replace(item, status="in_progress", content=[])
    events.add(
        ItemEvent(
            type="response.output_item.added", sequence_number=events.seq, output_index=index, item=opened
        )
    )
    empty = OutputText(type="output_text", text="")
    events.add(_part_event(events, "response.content_part.added", index, item.id, empty))
    for piece in chunks:
        events.add(
            TextDeltaEvent(
                type="response.output_text.delta",
                sequence_number=events.seq,
                item_id=item.id,
                output_index=index,
                content_index=0,
                delta=piece,
                logprobs=[] if top is None or not piece else [token_logprob(piece, top)],
            )
        )
    events.add(
        TextDoneEvent(
            type="response.output_text.done",
            sequence_number=events.seq,
            item_id=item.id,
            output_index=index,
            content_index=0,
            text=text,
            logprobs=item.content[0].logprobs,
        )
    )
    full = item.content[0]
    events.add(_part_event(events, "response.content_part.done", index, item.id, full))
    events.add(
        ItemEvent(type="response.output_item.done", sequence_number=events.seq, output_index=index, item=item)
    )


def _reasoning_events(events: _Events, index: int, item: ReasoningItem) -> None:
    opened = msgspec.structs.replace(item, summary=[])
    events.add(
        ItemEvent(
            type="response.output_item.added", sequence_number=events.seq, output_index=index, item=opened
        )
    )
    rs, empty = item.id, SummaryText(type="summary_text", text="")
    for n, part in enumerate(item.summary):
        name = "response.reasoning_summary_part.added"
        events.add(SummaryPartEvent(name, events.seq, rs, index, n, empty))
        for piece in split_text(part.text):
            events.add(
                SummaryDeltaEvent("response.reasoning_summary_text.delta", events.seq, rs, index, n, piece)
            )
        events.add(
            SummaryDoneEvent("response.reasoning_summary_text.done", events.seq, rs, index, n, part.text)
        )
        events.add(SummaryPartEvent("response.reasoning_summary_part.done", events.seq, rs, index, n, part))
    events.add(
        ItemEvent(type="response.output_item.done", sequence_number=events.seq, output_index=index, item=item)
    )


def _call_events(events: _Events, index: int, item: FunctionCallItem) -> None:
    opened = msgspec.structs.replace(item, status="in_progress", arguments="")
    events.add(
        ItemEvent(
            type="response.output_item.added", sequence_number=events.seq, output_index=index, item=opened
        )
    )
    arguments = item.arguments
    for start in range(0, len(arguments), ARGUMENT_FRAGMENT):
        events.add(
            ArgumentsDeltaEvent(
                type="response.function_call_arguments.delta",
                sequence_number=events.seq,
                item_id=item.id,
                output_index=index,
                delta=arguments[start : start + ARGUMENT_FRAGMENT],
            )
        )
    events.add(
        ArgumentsDoneEvent(
            type="response.function_call_arguments.done",
            sequence_number=events.seq,
            item_id=item.id,
            output_index=index,
            name=item.name,
            arguments=arguments,
        )
    )
    events.add(
        ItemEvent(type="response.output_item.done", sequence_number=events.seq, output_index=index, item=item)
    )


def inband_error_frames(base: ResponseObject, detail: ErrorDetail, sent: int) -> list[bytes]:
    """The nested `error` event (`{"type": "error", "error": {...}}`, as the live API sends it),
    then `response.failed`."""
    error = StreamErrorEvent(
        type="error",
        sequence_number=sent,
        error=StreamErrorDetail(
            type=detail.type, code=detail.code, message=detail.message, param=detail.param
        ),
    )
    failed = ResponseEvent(
        type="response.failed", sequence_number=sent + 1, response=failed_response(base, detail)
    )
    return [event_frame("error", error), event_frame("response.failed", failed)]
