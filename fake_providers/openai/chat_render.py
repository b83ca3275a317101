"""Rendering a `Completion` as a Chat Completions JSON body or SSE stream.

A stream is: the role chunk `{"role": "assistant", "content": ""}` (when there is text), one chunk
per text piece, tool-call deltas keyed by `index` (the first fragment of each call carries `id`,
`type`, `function.name` and empty `arguments`; a tool-only answer puts the first call in the role
chunk with `content: null`), argument fragments of up to 16 characters, a chunk with `delta: {}` and
the finish reason, the usage chunk with `choices: []` when `stream_options.include_usage` is set
(every other chunk then has `"usage": null`), and `data: [DONE]`. With `logprobs: true` each text
chunk carries its token's log probabilities (:mod:`fake_providers.logprobs`), as the answer does.
"""

from __future__ import annotations

import msgspec
from msgspec import UNSET

from fake_providers.composer import Completion, GeneratedToolCall
from fake_providers.ids import system_fingerprint
from fake_providers.logprobs import ChoiceLogprobs, tokens_logprobs
from fake_providers.openai.chat_wire import (
    ChatCompletion,
    ChatCompletionChunk,
    Choice,
    ChunkChoice,
    Delta,
    FunctionCall,
    FunctionDelta,
    Message,
    ToolCall,
    ToolCallDelta,
    Usage,
)
from fake_providers.sse import DONE_FRAME, data_frame

_ENCODER = msgspec.json.Encoder()
ARGUMENT_FRAGMENT = 16
SERVICE_TIER = "default"


class ChatIdentity(msgspec.Struct, frozen=True):
    """What every chunk of one answer repeats."""

    id: str
    created: int
    model: str


def usage_of(completion: Completion) -> Usage:
    return Usage(
        prompt_tokens=completion.input_tokens,
        completion_tokens=completion.output_tokens,
        total_tokens=completion.input_tokens + completion.output_tokens,
    )


def _logprobs(pieces: tuple[str, ...], top: int | None) -> ChoiceLogprobs | None:
    return None if top is None else ChoiceLogprobs(content=tokens_logprobs(pieces, top))


def completion_body(completion: Completion, identity: ChatIdentity, top_logprobs: int | None = None) -> bytes:
    calls = [
        ToolCall(id=call.id, type="function", function=FunctionCall(name=call.name, arguments=call.arguments))
        for call in completion.tool_calls
    ]
    message = Message(role="assistant", content=completion.text, tool_calls=calls if calls else UNSET)
    body = ChatCompletion(
        id=identity.id,
        object="chat.completion",
        created=identity.created,
        model=identity.model,
        choices=[
            Choice(
                index=0,
                message=message,
                logprobs=_logprobs(completion.chunks if completion.text else (), top_logprobs),
                finish_reason=completion.finish_reason,
            )
        ],
        usage=usage_of(completion),
        service_tier=SERVICE_TIER,
        system_fingerprint=system_fingerprint(identity.model),
    )
    return _ENCODER.encode(body)


def _first_fragment(index: int, call: GeneratedToolCall) -> ToolCallDelta:
    return ToolCallDelta(
        index=index, id=call.id, type="function", function=FunctionDelta(name=call.name, arguments="")
    )


def _deltas(completion: Completion) -> list[tuple[Delta, str | None]]:
    deltas: list[tuple[Delta, str | None]] = []
    calls = completion.tool_calls
    first_call_in_role_chunk = completion.text is None and bool(calls)
    if first_call_in_role_chunk:
        deltas.append(
            (Delta(role="assistant", content=None, tool_calls=[_first_fragment(0, calls[0])]), None)
        )
    else:
        deltas.append((Delta(role="assistant", content=""), None))
        deltas += [(Delta(content=piece), None) for piece in completion.chunks]
    for index, call in enumerate(calls):
        if index > 0 or not first_call_in_role_chunk:
            deltas.append((Delta(tool_calls=[_first_fragment(index, call)]), None))
        for start in range(0, len(call.arguments), ARGUMENT_FRAGMENT):
            fragment = call.arguments[start : start + ARGUMENT_FRAGMENT]
            deltas.append(
                (
                    Delta(
                        tool_calls=[ToolCallDelta(index=index, function=FunctionDelta(arguments=fragment))]
                    ),
                    None,
                )
            )
    deltas.append((Delta(), completion.finish_reason))
    return deltas


def completion_frames(
    completion: Completion, identity: ChatIdentity, *, include_usage: bool, top_logprobs: int | None = None
) -> list[bytes]:
    fingerprint = system_fingerprint(identity.model)

    def chunk(choices: list[ChunkChoice], usage: Usage | None) -> bytes:
        return data_frame(
            ChatCompletionChunk(
                id=identity.id,
                object="chat.completion.chunk",
                created=identity.created,
                model=identity.model,
                service_tier=SERVICE_TIER,
                system_fingerprint=fingerprint,
                choices=choices,
                usage=usage if include_usage else UNSET,
            )
        )

    def logprobs(delta: Delta) -> ChoiceLogprobs | None:
        text = delta.content
        return _logprobs((text,), top_logprobs) if isinstance(text, str) and text else None

    frames = [
        chunk([ChunkChoice(index=0, delta=delta, logprobs=logprobs(delta), finish_reason=finish)], None)
        for delta, finish in _deltas(completion)
    ]
    if include_usage:
        frames.append(chunk([], usage_of(completion)))
    frames.append(DONE_FRAME)
    return frames
