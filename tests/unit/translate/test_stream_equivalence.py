"""Property tests: a streamed answer, cut anywhere, translates to what the whole answer does."""

from __future__ import annotations

import itertools
import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openai.lib.streaming.chat import ChatCompletionStreamState
from openai.types.chat import ChatCompletionChunk

from gateway.translate import (
    AnthropicContext,
    AnthropicToChatStream,
    AnthropicToResponsesStream,
    ChatToResponsesStream,
    SequentialIds,
    chat_completion_from_anthropic,
    response_from_anthropic_message,
    response_from_chat_completion,
)

SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
REQUEST: dict[str, Any] = {"model": "public", "input": "x"}

text_st = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=40)
name_st = st.from_regex(r"[a-z_]{1,12}", fullmatch=True)
args_st = st.dictionaries(name_st, st.one_of(st.integers(), text_st, st.booleans()), max_size=3)


def pieces(draw: st.DrawFn, value: str) -> list[str]:
    """Cut ``value`` into 1..4 non-empty consecutive pieces."""
    if len(value) < 2:
        return [value]
    cuts = sorted(draw(st.sets(st.integers(1, len(value) - 1), max_size=3)))
    bounds = [0, *cuts, len(value)]
    return [value[a:b] for a, b in itertools.pairwise(bounds)]


@st.composite
def chat_answers(draw: st.DrawFn) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A Chat completion and a chunk stream that carries the same answer."""
    reasoning = draw(st.none() | text_st)
    content = draw(st.none() | text_st)
    calls = draw(st.lists(st.tuples(name_st, args_st), max_size=3))
    finish = "tool_calls" if calls else draw(st.sampled_from(["stop", "length", "content_filter"]))
    usage = {"prompt_tokens": draw(st.integers(0, 999)), "completion_tokens": draw(st.integers(0, 999))}
    usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]

    message: dict[str, Any] = {"role": "assistant", "content": content}
    deltas: list[dict[str, Any]] = [{"role": "assistant", "content": ""}]
    if reasoning is not None:
        message["reasoning_content"] = reasoning
        deltas += [{"reasoning_content": p} for p in pieces(draw, reasoning)]
    if content is not None:
        deltas += [{"content": p} for p in pieces(draw, content)]
    if calls:
        message["tool_calls"] = []
    for i, (name, args) in enumerate(calls):
        arguments = json.dumps(args)
        call_id = f"call_up{i}"
        message["tool_calls"].append(
            {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}
        )
        parts = pieces(draw, arguments)
        deltas.append(
            {
                "tool_calls": [
                    {
                        "index": i,
                        "id": call_id,
                        "type": "function",
                        "function": {"name": name, "arguments": parts[0]},
                    }
                ]
            }
        )
        deltas += [{"tool_calls": [{"index": i, "function": {"arguments": p}}]} for p in parts[1:]]
    envelope = {"id": "chatcmpl-up", "object": "chat.completion.chunk", "created": 1, "model": "up"}
    chunks = [{**envelope, "choices": [{"index": 0, "delta": d, "finish_reason": None}]} for d in deltas]
    chunks.append({**envelope, "choices": [{"index": 0, "delta": {}, "finish_reason": finish}]})
    chunks.append({**envelope, "choices": [], "usage": usage})
    completion = {
        "id": "chatcmpl-up",
        "object": "chat.completion",
        "created": 1,
        "model": "up",
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": usage,
    }
    return completion, chunks


@SETTINGS
@given(chat_answers())
def test_chat_stream_and_completion_give_the_same_response(sdk: Any, answer: Any) -> None:
    completion, chunks = answer
    whole = response_from_chat_completion(
        completion,
        request=REQUEST,
        response_id="resp_1",
        created_at=1,
        ids=SequentialIds(),
        previous_response_id=None,
        completed_at=2,
    )
    stream = ChatToResponsesStream(
        request=REQUEST, response_id="resp_1", created_at=1, ids=SequentialIds(), previous_response_id=None
    )
    events = stream.start()
    for chunk in chunks:
        events += stream.feed(chunk)
    events += stream.finish(completed_at=2)
    sdk.events(events)
    assert stream.response == whole
    # Each item's done event carries the item as it ends up in the response.
    done = [e["item"] for e in events if e["type"] == "response.output_item.done"]
    assert done == whole["output"]


@st.composite
def anthropic_answers(draw: st.DrawFn) -> tuple[dict[str, Any], list[tuple[str, dict[str, Any]]]]:
    """An Anthropic Message and the stream events that carry the same answer."""
    # Text before tool calls, as Claude answers. (Text after a tool_use would stream as a second
    # message item, while the non-streaming route through Chat joins all text into one.)
    blocks: list[dict[str, Any]] = [{"type": "text", "text": t} for t in draw(st.lists(text_st, max_size=2))]
    for i in range(draw(st.integers(0 if blocks else 1, 2))):
        blocks.append({"type": "tool_use", "id": f"toolu_{i}", "name": draw(name_st), "input": draw(args_st)})
    has_tools = any(b["type"] == "tool_use" for b in blocks)
    stop_reason = (
        "tool_use" if has_tools else draw(st.sampled_from(["end_turn", "max_tokens", "stop_sequence"]))
    )
    usage = {
        "input_tokens": draw(st.integers(0, 999)),
        "output_tokens": draw(st.integers(1, 999)),
        "cache_read_input_tokens": draw(st.integers(0, 999)),
        "cache_creation_input_tokens": draw(st.integers(0, 999)),
    }
    message = {
        "id": "msg_01",
        "type": "message",
        "role": "assistant",
        "model": "claude",
        "content": blocks,
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": usage,
    }
    start_usage = {**usage, "output_tokens": 1}
    events: list[tuple[str, dict[str, Any]]] = [
        (
            "message_start",
            {
                "type": "message_start",
                "message": {**message, "content": [], "stop_reason": None, "usage": start_usage},
            },
        )
    ]
    for index, block in enumerate(blocks):
        if block["type"] == "text":
            events.append(
                (
                    "content_block_start",
                    {
                        "type": "content_block_start",
                        "index": index,
                        "content_block": {"type": "text", "text": ""},
                    },
                )
            )
            for p in pieces(draw, block["text"]):
                delta = {"type": "text_delta", "text": p}
                events.append(
                    ("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta})
                )
        else:
            start = {**block, "input": {}}
            events.append(
                (
                    "content_block_start",
                    {"type": "content_block_start", "index": index, "content_block": start},
                )
            )
            raw = json.dumps(block["input"]) if block["input"] or draw(st.booleans()) else ""
            for p in ["", *pieces(draw, raw)] if raw else [""]:
                delta = {"type": "input_json_delta", "partial_json": p}
                events.append(
                    ("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta})
                )
        if draw(st.booleans()):
            events.append(("ping", {"type": "ping"}))
        events.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
    events.append(
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": stop_reason, "stop_sequence": None},
                "usage": {"output_tokens": usage["output_tokens"]},
            },
        )
    )
    events.append(("message_stop", {"type": "message_stop"}))
    return message, events


def _normalised(completion: dict[str, Any]) -> dict[str, Any]:
    """Argument strings compared as JSON (Anthropic streams its own spacing)."""
    message = completion["choices"][0]["message"]
    calls = [
        (c["id"], c["function"]["name"], json.loads(c["function"]["arguments"]))
        for c in message.get("tool_calls") or ()
    ]
    return {
        "content": message["content"],
        "calls": calls,
        "finish_reason": completion["choices"][0]["finish_reason"],
        "usage": completion["usage"],
    }


@SETTINGS
@given(anthropic_answers())
def test_anthropic_stream_and_message_give_the_same_completion(sdk: Any, answer: Any) -> None:
    message, events = answer
    whole = chat_completion_from_anthropic(message, model="public", completion_id="chatcmpl-1", created=1)
    sdk.completion(whole)
    stream = AnthropicToChatStream(model="public", completion_id="chatcmpl-1", created=1)
    chunks = [c for name, data in events for c in stream.feed(name, data)]
    assert stream.finished
    chunks.append(stream.usage_chunk())
    sdk.chunks(chunks)
    state: ChatCompletionStreamState[None] = ChatCompletionStreamState()
    for chunk in chunks:
        state.handle_chunk(ChatCompletionChunk.model_validate(chunk))
    streamed = state.current_completion_snapshot.model_dump()
    if not whole["choices"][0]["message"]["content"] and streamed["choices"][0]["message"]["content"] == "":
        streamed["choices"][0]["message"]["content"] = whole["choices"][0]["message"]["content"]
    expected = _normalised(whole)
    got = _normalised(streamed)
    got["usage"] = {k: v for k, v in got["usage"].items() if v is not None}
    got["usage"]["prompt_tokens_details"] = {
        k: v for k, v in got["usage"]["prompt_tokens_details"].items() if v is not None
    }
    assert got == expected


@SETTINGS
@given(anthropic_answers())
def test_responses_over_anthropic_stream_and_message_agree(sdk: Any, answer: Any) -> None:
    message, events = answer
    whole = response_from_anthropic_message(
        message,
        request=REQUEST,
        response_id="resp_1",
        created_at=1,
        ids=SequentialIds(),
        previous_response_id=None,
        context=AnthropicContext(),
        completed_at=2,
    )
    stream = AnthropicToResponsesStream(
        request=REQUEST,
        response_id="resp_1",
        created_at=1,
        ids=SequentialIds(),
        previous_response_id=None,
        context=AnthropicContext(),
    )
    out = stream.start()
    for name, data in events:
        out += stream.feed(name, data)
    out += stream.finish(completed_at=2)
    sdk.events(out)
    streamed = stream.response
    assert streamed is not None
    for response in (streamed, whole):
        for item in response["output"]:
            if item["type"] == "function_call":
                item["arguments"] = json.loads(item["arguments"])
    assert streamed == whole
