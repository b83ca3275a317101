"""Continuing a Responses stream whose converter cannot take Chat chunks (a Responses upstream's
events passed through, an Anthropic upstream's translated): the client's answer read back from
its events, and the rest renumbered into it (same message item, sequence numbers going on,
every output item in the recorded ``response.completed``)."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

from gateway.clock import ManualClock
from gateway.dialects.responses import NativeConverter
from gateway.errors import stream_truncated_error
from gateway.exchange.rescue import Partial
from gateway.responses.continuation import ResponsesContinuer, ResponsesTail
from gateway.responses.stream import ResponsesRelay
from gateway.translate import SequentialIds, encode_event

SHELL = {"id": "resp_gw", "object": "response", "status": "in_progress", "model": "m", "output": []}
REASONING = {"id": "rs_up", "type": "reasoning", "summary": [], "status": "completed"}


def numbered(events: list[dict[str, Any]]) -> bytes:
    return b"".join(encode_event({**e, "sequence_number": n}) for n, e in enumerate(events))


def head(*items: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {"type": "response.created", "response": SHELL},
        {"type": "response.in_progress", "response": SHELL},
        *items,
    ]


def message_open(index: int, *pieces: str) -> list[dict[str, Any]]:
    base = {"item_id": "msg_up", "output_index": index}
    item = {"id": "msg_up", "type": "message", "status": "in_progress", "role": "assistant", "content": []}
    events = [
        {"type": "response.output_item.added", "output_index": index, "item": item},
        {
            "type": "response.content_part.added",
            **base,
            "content_index": 0,
            "part": {"type": "output_text", "text": ""},
        },
    ]
    events += [{"type": "response.output_text.delta", **base, "content_index": 0, "delta": p} for p in pieces]
    return events


def reasoning_closed(index: int) -> list[dict[str, Any]]:
    return [
        {
            "type": "response.output_item.added",
            "output_index": index,
            "item": {**REASONING, "status": "in_progress"},
        },
        {"type": "response.output_item.done", "output_index": index, "item": REASONING},
    ]


class Recorded:
    def __init__(self) -> None:
        self.responses: list[dict[str, Any]] = []

    async def __call__(self, response: dict[str, Any]) -> None:
        self.responses.append(response)


def relay(record: Recorded) -> ResponsesRelay:
    converter = NativeConverter(response_id="resp_gw", previous_response_id=None, store=True, provider="p")
    converter.upstream_id = "resp_upstream"
    return ResponsesRelay(
        converter=converter, record=record, provider="p", clock=ManualClock(), idle_timeout=10
    )


def turn() -> Any:
    return SimpleNamespace(
        data={"model": "m", "input": "hi"},
        response_id="resp_gw",
        created_at=1,
        ids=SequentialIds(),
        previous_response_id=None,
        clock=ManualClock(),
    )


def chunk(content: str | None = None, finish: str | None = None, **delta: Any) -> dict[str, Any]:
    if content is not None:
        delta["content"] = content
    return {"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


async def continue_(
    sent: bytes, chunks: list[dict[str, Any]]
) -> tuple[list[dict[str, Any]], Recorded, ResponsesRelay]:
    record = Recorded()
    broken = relay(record)
    partial = ResponsesContinuer(turn()).partial(sent, broken)
    assert partial is not None
    tail = ResponsesTail(partial, broken, turn())
    out: list[bytes] = []

    async def send(data: bytes) -> None:
        out.append(data)

    await tail.feed(chunks, send)
    await tail.end(send)
    events = [
        json.loads(line[6:])
        for frame in out
        for part in frame.split(b"\n\n")
        for line in part.split(b"\n")
        if line.startswith(b"data: ")
    ]
    return events, record, broken


async def test_the_text_goes_on_in_the_open_message_after_a_reasoning_item() -> None:
    before = head(*reasoning_closed(0), *message_open(1, "one ", "two "))
    usage = {"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11}
    events, record, broken = await continue_(
        numbered(before),
        [chunk("three", role="assistant"), chunk(finish="stop"), {"choices": [], "usage": usage}],
    )
    assert [e["sequence_number"] for e in events] == list(range(len(before), len(before) + len(events)))
    kinds = [e["type"] for e in events]
    assert kinds == [
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert all(e["output_index"] == 1 and e["content_index"] == 0 for e in events[:3])
    assert {e["item_id"] for e in events[:3]} == {"msg_up"}
    assert events[1]["text"] == events[2]["part"]["text"] == "one two three"
    final = events[-1]["response"]
    assert final["id"] == "resp_gw" and final["status"] == "completed" and final["model"] == "m"
    assert [o["id"] for o in final["output"]] == ["rs_up", "msg_up"]
    assert final["output"][1]["content"][0]["text"] == "one two three"
    assert final["usage"]["output_tokens"] == 2
    assert record.responses == [final]  # recorded before it was sent
    assert broken.converter.upstream_id is None  # not chained to natively


async def test_a_tool_call_in_the_rest_follows_the_closed_message() -> None:
    call = {"index": 0, "id": "call_1", "function": {"name": "f", "arguments": "{}"}}
    events, _, _ = await continue_(
        numbered(head(*message_open(0, "Let me check."))),
        [chunk(tool_calls=[call]), chunk(finish="tool_calls")],
    )
    kinds = [(e["type"], e.get("output_index")) for e in events]
    assert kinds[:4] == [
        ("response.output_text.done", 0),
        ("response.content_part.done", 0),
        ("response.output_item.done", 0),
        ("response.output_item.added", 1),
    ]
    final = events[-1]["response"]
    assert [o["type"] for o in final["output"]] == ["message", "function_call"]
    assert final["output"][0]["content"][0]["text"] == "Let me check."


async def test_a_rest_without_text_ends_the_answer_with_what_it_has() -> None:
    events, _, _ = await continue_(numbered(head(*message_open(0, "All done."))), [chunk(finish="stop")])
    assert [e["type"] for e in events][-2:] == ["response.output_item.done", "response.completed"]
    assert events[-1]["response"]["output"][0]["content"][0]["text"] == "All done."


def test_what_is_not_continued() -> None:
    continuer = ResponsesContinuer(turn())
    broken = relay(Recorded())
    open_reasoning = head({"type": "response.output_item.added", "output_index": 0, "item": REASONING})
    assert continuer.partial(numbered(open_reasoning), broken) is None
    call = {"id": "fc_1", "type": "function_call", "call_id": "c", "name": "f", "arguments": ""}
    with_call = head({"type": "response.output_item.added", "output_index": 0, "item": call})
    assert continuer.partial(numbered(with_call), broken) is None
    assert continuer.partial(numbered(message_open(0, "no created")), broken) is None
    partial = continuer.partial(numbered(head(*message_open(0, "a ", "b"))), broken)
    assert isinstance(partial, Partial) and partial.text == "a b"


async def test_a_rest_that_breaks_ends_with_the_failure_after_it() -> None:
    record = Recorded()
    broken = relay(record)
    before = head(*message_open(0, "one "))
    partial = ResponsesContinuer(turn()).partial(numbered(before), broken)
    assert partial is not None
    tail = ResponsesTail(partial, broken, turn())
    out: list[bytes] = []

    async def send(data: bytes) -> None:
        out.append(data)

    await tail.feed([chunk("two", role="assistant"), chunk(" three")], send)
    broken.failure = stream_truncated_error("p")
    await tail.release(broken, send)
    events = [json.loads(line[6:]) for f in out for line in f.split(b"\n") if line.startswith(b"data: ")]
    assert [e["type"] for e in events] == [
        "response.output_text.delta",
        "response.output_text.delta",
        "error",
        "response.failed",
    ]
    assert [e["sequence_number"] for e in events] == list(range(len(before), len(before) + 4))
    failed = events[-1]["response"]
    assert failed["status"] == "failed" and failed["id"] == "resp_gw"
    assert failed["output"] == [
        {
            "id": "msg_up",
            "type": "message",
            "status": "incomplete",
            "role": "assistant",
            "content": [{"type": "output_text", "text": "one two three", "annotations": [], "logprobs": []}],
        }
    ]
    assert record.responses == [failed]
