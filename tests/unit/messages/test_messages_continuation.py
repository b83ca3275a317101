"""The Messages route's rescue pieces: the partial answer read from the Anthropic events the
client received, the prefilled request for a Claude deployment, and the rest written as more of
the same message."""

from __future__ import annotations

import json
from typing import Any

from gateway.messages.continuation import MessagesSplice, messages_partial, prefilled_messages
from gateway.translate.messages_chat import MessagesContext
from gateway.translate.messages_stream import encode_events

START: dict[str, Any] = {
    "type": "message_start",
    "message": {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "claude",
        "content": [],
        "usage": {"input_tokens": 30, "cache_read_input_tokens": 5, "output_tokens": 1},
    },
}


def block(index: int, kind: str, **fields: Any) -> dict[str, Any]:
    return {"type": "content_block_start", "index": index, "content_block": {"type": kind, **fields}}


def text(index: int, piece: str) -> dict[str, Any]:
    return {"type": "content_block_delta", "index": index, "delta": {"type": "text_delta", "text": piece}}


def stop(index: int) -> dict[str, Any]:
    return {"type": "content_block_stop", "index": index}


def sent(*events: dict[str, Any]) -> bytes:
    return encode_events(list(events)) + b'event: ping\ndata: {"type":"ping"}\n\n'


def test_the_partial_answer_is_the_text_and_the_open_block() -> None:
    thinking = block(0, "thinking", thinking="", signature="")
    partial = messages_partial(
        sent(START, thinking, stop(0), block(1, "text", text=""), text(1, "Hello "), text(1, "you"))
    )
    assert partial is not None
    assert partial.text == "Hello you"
    assert partial.head == {"blocks": 2, "open": 1, "usage": START["message"]["usage"]}
    closed = messages_partial(sent(START, block(0, "text", text=""), text(0, "Hi."), stop(0)))
    assert closed is not None and closed.head["open"] is None and closed.head["blocks"] == 1


def test_what_is_not_continued() -> None:
    tool = block(1, "tool_use", id="toolu_1", name="lookup", input={})
    assert messages_partial(sent(START, block(0, "text", text=""), text(0, "Let me"), stop(0), tool)) is None
    open_thinking = block(0, "thinking", thinking="", signature="")
    assert messages_partial(sent(START, open_thinking)) is None  # its signature never came
    ended = {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 3}}
    assert messages_partial(sent(START, block(0, "text", text=""), text(0, "Hi"), stop(0), ended)) is None
    assert messages_partial(sent(block(0, "text", text=""), text(0, "Hi"))) is None  # no message_start


def test_the_claude_request_is_the_clients_prefilled_without_thinking() -> None:
    data = {
        "model": "claude",
        "max_tokens": 100,
        "system": [{"type": "text", "text": "S", "cache_control": {"type": "ephemeral"}}],
        "thinking": {"type": "enabled", "budget_tokens": 64},
        "messages": [{"role": "user", "content": "Hi"}],
        "stream": True,
    }
    body = json.loads(prefilled_messages(data, "claude-upstream", "Hello there  "))
    assert body["model"] == "claude-upstream" and "thinking" not in body
    assert body["system"] == data["system"] and body["max_tokens"] == 100 and body["stream"] is True
    assert body["messages"] == [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello there"},
    ]
    assert json.loads(prefilled_messages(data, "m", "  "))["messages"] == data["messages"]


def chunk(content: str | None = None, finish: str | None = None, **delta: Any) -> dict[str, Any]:
    if content is not None:
        delta["content"] = content
    return {"id": "c", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


def events_of(frames: list[bytes]) -> list[dict[str, Any]]:
    return [
        json.loads(line[6:])
        for frame in frames
        for part in frame.split(b"\n\n")
        for line in part.split(b"\n")
        if line.startswith(b"data: ")
    ]


async def splice(partial_events: list[dict[str, Any]], chunks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    partial = messages_partial(sent(*partial_events))
    assert partial is not None
    out: list[bytes] = []

    async def send(data: bytes) -> None:
        out.append(data)

    rest = MessagesSplice(partial, MessagesContext())
    await rest.feed(chunks, send)
    await rest.end(send)
    return events_of(out)


async def test_the_text_goes_on_in_the_open_block() -> None:
    usage = {"prompt_tokens": 40, "completion_tokens": 7, "total_tokens": 47}
    events = await splice(
        [START, block(0, "text", text=""), text(0, "one two ")],
        [
            chunk(role="assistant"),
            chunk(" three", reasoning_content="hm"),
            chunk(" four", "stop"),
            {"choices": [], "usage": usage},
        ],
    )
    assert [e["type"] for e in events] == [
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert [e["delta"]["text"] for e in events[:2]] == ["three", " four"]  # the space not repeated
    assert {e["index"] for e in events[:3]} == {0}
    delta = events[3]
    assert delta["delta"]["stop_reason"] == "end_turn"
    # The prompt as message_start said; the output of both parts (the first one estimated).
    assert delta["usage"]["input_tokens"] == 30 and delta["usage"]["cache_read_input_tokens"] == 5
    assert delta["usage"]["output_tokens"] > 7


async def test_other_blocks_follow_the_clients() -> None:
    call = {"index": 0, "id": "call_1", "function": {"name": "lookup", "arguments": '{"q":1}'}}
    thinking = block(0, "thinking", thinking="", signature="")
    events = await splice(
        [START, thinking, stop(0), block(1, "text", text=""), text(1, "Let me look.")],
        [chunk(tool_calls=[call]), chunk(finish="tool_calls")],
    )
    kinds = [(e["type"], e.get("index")) for e in events]
    assert kinds[:2] == [("content_block_stop", 1), ("content_block_start", 2)]  # closed first
    assert events[1]["content_block"]["type"] == "tool_use"
    assert ("content_block_stop", 2) in kinds
    assert events[-2]["delta"]["stop_reason"] == "tool_use"


async def test_a_rest_without_content_closes_the_open_block() -> None:
    events = await splice([START, block(0, "text", text=""), text(0, "Done.")], [chunk(finish="stop")])
    assert [(e["type"], e.get("index")) for e in events] == [
        ("content_block_stop", 0),
        ("message_delta", None),
        ("message_stop", None),
    ]
