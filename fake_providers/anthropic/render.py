"""Rendering a `Completion` as an Anthropic message (JSON) or event stream.

A stream is `message_start` (empty content, `stop_reason: null`, input tokens and 1 output token),
then per block `content_block_start`, deltas and `content_block_stop` (a `ping` follows the first
`content_block_start`); text blocks start `{"type":"text","text":""}` and get one `text_delta` per
piece; `tool_use` blocks start with `input: {}` and get an empty `input_json_delta` first, then
fragments of up to 16 characters; a scripted thought comes first, as a `thinking` block with one
`thinking_delta` per word and a `signature_delta` before its stop; then `message_delta` with the stop reason and cumulative usage,
and `message_stop`. Every event is named; there is no `[DONE]`.
"""

from __future__ import annotations

import msgspec

from fake_providers.anthropic.thinking import NO_EXTRAS, Extras, sign
from fake_providers.anthropic.wire import (
    Bare,
    BlockDelta,
    BlockStart,
    BlockStop,
    ContentBlock,
    DeltaUsage,
    InputJsonDelta,
    Message,
    MessageDelta,
    MessageStart,
    SignatureDelta,
    StopDelta,
    TextBlock,
    TextDelta,
    ThinkingBlock,
    ThinkingDelta,
    ToolUseBlock,
    Usage,
)
from fake_providers.composer import Completion, split_text
from fake_providers.sse import event_frame

ARGUMENT_FRAGMENT = 16
_STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "content_filter": "refusal",
}
_DECODER = msgspec.json.Decoder()


def stop_reason(completion: Completion) -> str:
    return _STOP_REASONS.get(completion.finish_reason, completion.finish_reason)


def _input_of(arguments: str) -> object:
    """A tool call's input object; arguments cut short (or scripted as broken JSON) give `{}`."""
    try:
        value = _DECODER.decode(arguments)
    except msgspec.DecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def content_blocks(completion: Completion, extras: Extras = NO_EXTRAS) -> list[ContentBlock]:
    blocks: list[ContentBlock] = []
    if extras.thinking is not None:
        blocks.append(
            ThinkingBlock(type="thinking", thinking=extras.thinking, signature=sign(extras.thinking))
        )
    if completion.text is not None and (completion.text or not completion.tool_calls):
        blocks.append(TextBlock(type="text", text=completion.text))
    for call in completion.tool_calls:
        blocks.append(
            ToolUseBlock(type="tool_use", id=call.id, name=call.name, input=_input_of(call.arguments))
        )
    return blocks


def _usage(completion: Completion, extras: Extras, output_tokens: int) -> Usage:
    return Usage(
        input_tokens=completion.input_tokens,
        output_tokens=output_tokens,
        cache_creation_input_tokens=extras.cache_creation_input_tokens,
        cache_read_input_tokens=extras.cache_read_input_tokens,
    )


def message_body(completion: Completion, message_id: str, model: str, extras: Extras = NO_EXTRAS) -> bytes:
    message = Message(
        id=message_id,
        type="message",
        role="assistant",
        model=model,
        content=content_blocks(completion, extras),
        stop_reason=stop_reason(completion),
        stop_sequence=None,
        usage=_usage(completion, extras, completion.output_tokens),
    )
    return msgspec.json.encode(message)


def message_frames(
    completion: Completion, message_id: str, model: str, extras: Extras = NO_EXTRAS
) -> list[bytes]:
    start = Message(
        id=message_id,
        type="message",
        role="assistant",
        model=model,
        content=[],
        stop_reason=None,
        stop_sequence=None,
        usage=_usage(completion, extras, 1),
    )
    frames = [event_frame("message_start", MessageStart(type="message_start", message=start))]
    calls = {call.id: call for call in completion.tool_calls}
    for index, block in enumerate(content_blocks(completion, extras)):
        deltas: list[TextDelta | InputJsonDelta | ThinkingDelta | SignatureDelta]
        if isinstance(block, ThinkingBlock):
            opened: ContentBlock = ThinkingBlock(type="thinking", thinking="", signature="")
            deltas = [
                ThinkingDelta(type="thinking_delta", thinking=piece) for piece in split_text(block.thinking)
            ]
            deltas.append(SignatureDelta(type="signature_delta", signature=block.signature))
        elif isinstance(block, TextBlock):
            opened = TextBlock(type="text", text="")
            deltas = [TextDelta(type="text_delta", text=piece) for piece in completion.chunks]
        else:
            opened = ToolUseBlock(type="tool_use", id=block.id, name=block.name, input={})
            arguments = calls[block.id].arguments
            deltas = [InputJsonDelta(type="input_json_delta", partial_json="")]
            deltas += [
                InputJsonDelta(type="input_json_delta", partial_json=arguments[at : at + ARGUMENT_FRAGMENT])
                for at in range(0, len(arguments), ARGUMENT_FRAGMENT)
            ]
        frames.append(
            event_frame(
                "content_block_start",
                BlockStart(type="content_block_start", index=index, content_block=opened),
            )
        )
        if index == 0:
            frames.append(event_frame("ping", Bare(type="ping")))
        frames += [
            event_frame(
                "content_block_delta", BlockDelta(type="content_block_delta", index=index, delta=delta)
            )
            for delta in deltas
        ]
        frames.append(event_frame("content_block_stop", BlockStop(type="content_block_stop", index=index)))
    delta = MessageDelta(
        type="message_delta",
        delta=StopDelta(stop_reason=stop_reason(completion), stop_sequence=None),
        usage=DeltaUsage(
            input_tokens=completion.input_tokens,
            output_tokens=completion.output_tokens,
            cache_creation_input_tokens=extras.cache_creation_input_tokens,
            cache_read_input_tokens=extras.cache_read_input_tokens,
        ),
    )
    frames.append(event_frame("message_delta", delta))
    frames.append(event_frame("message_stop", Bare(type="message_stop")))
    return frames
