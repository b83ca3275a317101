"""Rendering a `Completion` as an Anthropic message (JSON) or event stream.

A stream is `message_start` (empty content, `stop_reason: null`, input tokens and 1 output token),
then per block `content_block_start`, deltas and `content_block_stop` (a `ping` follows the first
`content_block_start`); text blocks start `{"type":"text","text":""}` and get one `text_delta` per
piece; `tool_use` blocks start with `input: {}` and get an empty `input_json_delta` first, then
fragments of up to 16 characters; then `message_delta` with the stop reason and cumulative usage,
and `message_stop`. Every event is named; there is no `[DONE]`.
"""

from __future__ import annotations

import msgspec

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
    StopDelta,
    TextBlock,
    TextDelta,
    ToolUseBlock,
    Usage,
)
from fake_providers.composer import Completion
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


def content_blocks(completion: Completion) -> list[ContentBlock]:
    blocks: list[ContentBlock] = []
    if completion.text is not None and (completion.text or not completion.tool_calls):
        blocks.append(TextBlock(type="text", text=completion.text))
    for call in completion.tool_calls:
        blocks.append(
            ToolUseBlock(type="tool_use", id=call.id, name=call.name, input=_input_of(call.arguments))
        )
    return blocks


def message_body(completion: Completion, message_id: str, model: str) -> bytes:
    message = Message(
        id=message_id,
        type="message",
        role="assistant",
        model=model,
        content=content_blocks(completion),
        stop_reason=stop_reason(completion),
        stop_sequence=None,
        usage=Usage(input_tokens=completion.input_tokens, output_tokens=completion.output_tokens),
    )
    return msgspec.json.encode(message)


def message_frames(completion: Completion, message_id: str, model: str) -> list[bytes]:
    start = Message(
        id=message_id,
        type="message",
        role="assistant",
        model=model,
        content=[],
        stop_reason=None,
        stop_sequence=None,
        usage=Usage(input_tokens=completion.input_tokens, output_tokens=1),
    )
    frames = [event_frame("message_start", MessageStart(type="message_start", message=start))]
    calls = {call.id: call for call in completion.tool_calls}
    for index, block in enumerate(content_blocks(completion)):
        if isinstance(block, TextBlock):
            opened: ContentBlock = TextBlock(type="text", text="")
            deltas: list[TextDelta | InputJsonDelta] = [
                TextDelta(type="text_delta", text=piece) for piece in completion.chunks
            ]
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
        usage=DeltaUsage(input_tokens=completion.input_tokens, output_tokens=completion.output_tokens),
    )
    frames.append(event_frame("message_delta", delta))
    frames.append(event_frame("message_stop", Bare(type="message_stop")))
    return frames
