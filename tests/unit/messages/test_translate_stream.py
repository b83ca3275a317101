"""Chat chunks -> Anthropic's exact event sequence."""

from __future__ import annotations

import json
from typing import Any

from gateway.translate.messages_chat import MessagesContext
from gateway.translate.messages_stream import ChatToMessagesStream, encode_events


def chunk(
    delta: dict[str, Any] | None = None, finish: str | None = None, usage: dict[str, Any] | None = None
) -> dict[str, Any]:
    choices = (
        []
        if delta is None and finish is None
        else [{"index": 0, "delta": delta or {}, "finish_reason": finish}]
    )
    out: dict[str, Any] = {"id": "c", "model": "gpt-up", "choices": choices}
    if usage is not None:
        out["usage"] = usage
    return out


def call(index: int, *, id: str | None = None, name: str | None = None, args: str = "") -> dict[str, Any]:
    function: dict[str, Any] = {"arguments": args}
    if name is not None:
        function["name"] = name
    entry: dict[str, Any] = {"index": index, "function": function}
    if id is not None:
        entry["id"], entry["type"] = id, "function"
    return {"tool_calls": [entry]}


def run(
    chunks: list[dict[str, Any]], context: MessagesContext | None = None, estimate: int = 120
) -> list[dict[str, Any]]:
    stream = ChatToMessagesStream(model="asked", input_tokens=estimate, context=context or MessagesContext())
    events: list[dict[str, Any]] = []
    for c in chunks:
        events += stream.feed(c)
    return events + stream.finish()


def kinds(events: list[dict[str, Any]]) -> list[str]:
    out = []
    for e in events:
        kind = e["type"]
        if kind == "content_block_start":
            kind += ":" + e["content_block"]["type"]
        elif kind == "content_block_delta":
            kind += ":" + e["delta"]["type"]
        out.append(kind)
    return out


def test_text_then_a_tool_call_keeps_the_whole_input_across_the_block_switch() -> None:
    events = run(
        [
            chunk({"role": "assistant", "content": ""}),
            chunk({"content": "Let me "}),
            chunk({"content": "check."}),
            chunk(call(0, id="call_A", name="get_weather")),
            chunk(call(0, args='{"ci')),
            chunk(call(0, args='ty": "Paris"}')),
            chunk(finish="tool_calls"),
            chunk(
                usage={
                    "prompt_tokens": 90,
                    "completion_tokens": 12,
                    "prompt_tokens_details": {"cached_tokens": 30},
                }
            ),
        ]
    )
    assert kinds(events) == [
        "message_start",
        "content_block_start:text",
        "content_block_delta:text_delta",
        "content_block_delta:text_delta",
        "content_block_stop",
        "content_block_start:tool_use",
        "content_block_delta:input_json_delta",
        "content_block_delta:input_json_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    start = events[0]["message"]
    assert start["usage"]["input_tokens"] == 120 and start["content"] == [] and start["stop_reason"] is None
    assert start["model"] == "gpt-up"
    tool = events[5]
    assert tool["index"] == 1
    assert tool["content_block"] == {"type": "tool_use", "id": "call_A", "name": "get_weather", "input": {}}
    pieces = "".join(
        e["delta"]["partial_json"] for e in events if e["type"] == "content_block_delta" and e["index"] == 1
    )
    assert json.loads(pieces) == {"city": "Paris"}
    assert events[-2]["delta"] == {"stop_reason": "tool_use", "stop_sequence": None}
    assert events[-2]["usage"] == {
        "input_tokens": 60,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 30,
        "output_tokens": 12,
    }


def test_two_calls_and_a_call_without_arguments() -> None:
    events = run(
        [
            chunk({"role": "assistant", "content": None, **call(0, id="a", name="f")}),
            chunk(call(1, id="b", name="g", args='{"x":1}')),
            chunk(finish="tool_calls"),
        ]
    )
    assert kinds(events)[1:-2] == [
        "content_block_start:tool_use",
        "content_block_delta:input_json_delta",
        "content_block_stop",
        "content_block_start:tool_use",
        "content_block_delta:input_json_delta",
        "content_block_stop",
    ]
    assert events[2]["delta"]["partial_json"] == "{}"
    assert [e["index"] for e in events[1:7]] == [0, 0, 0, 1, 1, 1]


def test_thinking_deltas_only_inside_a_thinking_block_and_only_when_enabled() -> None:
    chunks = [
        chunk({"reasoning_content": "hmm "}),
        chunk({"reasoning_content": "ok"}),
        chunk({"content": "Answer"}),
        chunk(finish="stop"),
    ]
    enabled = run(chunks, MessagesContext(thinking=True))
    assert kinds(enabled)[1:6] == [
        "content_block_start:thinking",
        "content_block_delta:thinking_delta",
        "content_block_delta:thinking_delta",
        "content_block_stop",
        "content_block_start:text",
    ]
    blocks: dict[int, str] = {}
    for e in enabled:
        if e["type"] == "content_block_start":
            blocks[e["index"]] = e["content_block"]["type"]
        if e["type"] == "content_block_delta" and e["delta"]["type"] == "thinking_delta":
            assert blocks[e["index"]] == "thinking"
    disabled = run(chunks)
    assert "thinking" not in json.dumps(disabled)


def test_an_empty_answer_still_has_the_whole_sequence_and_a_nonzero_prompt() -> None:
    events = run([], estimate=0)
    assert kinds(events) == ["message_start", "message_delta", "message_stop"]
    assert events[0]["message"]["usage"]["input_tokens"] == 1
    assert events[1]["delta"]["stop_reason"] == "end_turn"


def test_max_tokens_and_named_frames() -> None:
    events = run([chunk({"content": "cut"}), chunk(finish="length")])
    assert events[-2]["delta"]["stop_reason"] == "max_tokens"
    frames = encode_events(events[-1:])
    assert frames == b'event: message_stop\ndata: {"type":"message_stop"}\n\n'


def test_interleaved_parallel_calls_keep_each_input_whole_under_its_own_index() -> None:
    events = run(
        [
            chunk(call(0, id="a", name="f", args='{"x":')),
            chunk(call(1, id="b", name="g", args='{"y":')),
            chunk(call(0, args="1}")),
            chunk(call(1, args="2}")),
            chunk(finish="tool_calls"),
        ]
    )
    pieces: dict[int, str] = {}
    for e in events:
        if e["type"] == "content_block_delta":
            pieces[e["index"]] = pieces.get(e["index"], "") + e["delta"]["partial_json"]
    assert {i: json.loads(p) for i, p in pieces.items()} == {0: {"x": 1}, 1: {"y": 2}}
