"""A Responses upstream's stream, made the gateway's: ids rewritten only where the Response object
travels, everything else re-framed byte for byte, the terminal event held back for the record."""

from __future__ import annotations

import json
from typing import Any

import pytest

from gateway.dialects import Emit
from gateway.dialects.responses import NativeConverter
from gateway.translate import encode_event
from gateway.upstream.committed import StreamFailure, StreamTruncated
from gateway.upstream.sse import SSEDecoder, SSEEvent

OURS = "resp_ours"
PARENT = "resp_parent_ours"


def response(status: str, output: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {
        "id": "resp_upstream",
        "object": "response",
        "status": status,
        "model": "gpt-4o-mini-2024-07-18",
        "output": output,
        "previous_response_id": "resp_upstream_parent",
        "store": True,
        "usage": None,
        **extra,
    }


MESSAGE = {
    "id": "msg_1",
    "type": "message",
    "status": "completed",
    "role": "assistant",
    "content": [{"type": "output_text", "text": "Hi", "annotations": []}],
}


def upstream_stream(final_output: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = [
        {"type": "response.created", "response": response("in_progress", [])},
        {"type": "response.in_progress", "response": response("in_progress", [])},
        {
            "type": "response.output_item.added",
            "output_index": 0,
            "item": {**MESSAGE, "status": "in_progress", "content": []},
        },
        {
            "type": "response.output_text.delta",
            "item_id": "msg_1",
            "output_index": 0,
            "content_index": 0,
            "delta": "Hi",
        },
        {"type": "response.output_item.done", "output_index": 0, "item": MESSAGE},
        {
            "type": "response.completed",
            "response": response(
                "completed", [MESSAGE] if final_output is None else final_output, usage={"total_tokens": 3}
            ),
        },
    ]
    for number, event in enumerate(events):
        event["sequence_number"] = number
    return events


def sse(events: list[dict[str, Any]]) -> list[SSEEvent]:
    raw = b"".join(
        b"event: "
        + e["type"].encode()
        + b"\ndata: "
        + json.dumps(e, separators=(",", ":")).encode()
        + b"\n\n"
        for e in events
    )
    return SSEDecoder().feed(raw)


def converter() -> NativeConverter:
    return NativeConverter(response_id=OURS, previous_response_id=PARENT, store=True, provider="openai")


def run(conv: NativeConverter, events: list[SSEEvent]) -> tuple[list[Emit], list[tuple[str, dict[str, Any]]]]:
    emits = [conv.event(event, None) for event in events]
    frames = b"".join(emit.frames for emit in emits)
    parsed = [
        (frame.split(b"\n")[0].decode().removeprefix("event: "), json.loads(frame.split(b"\ndata: ")[1]))
        for frame in frames.split(b"\n\n")
        if frame
    ]
    return emits, parsed


def test_ids_are_the_gateways_and_the_rest_is_relayed_as_is() -> None:
    conv = converter()
    source = sse(upstream_stream())
    emits, sent = run(conv, source)

    assert [name for name, _ in sent] == [e.event for e in source[:-1]]
    created, in_progress = sent[0][1], sent[1][1]
    for event in (created, in_progress):
        assert event["response"]["id"] == OURS
        assert event["response"]["previous_response_id"] == PARENT
        assert event["response"]["model"] == "gpt-4o-mini-2024-07-18"
    # Events that do not carry the Response object are re-framed without re-encoding.
    for emit, event in zip(emits[2:5], source[2:5], strict=True):
        assert emit.frames == b"event: " + event.event.encode() + b"\ndata: " + event.data.encode() + b"\n\n"

    final = emits[-1].final
    assert emits[-1].frames == b""
    assert final is not None and final["type"] == "response.completed" and final["sequence_number"] == 5
    assert final["response"]["id"] == OURS
    assert final["response"]["previous_response_id"] == PARENT
    assert final["response"]["output"] == [MESSAGE]
    assert conv.upstream_id == "resp_upstream"


def test_output_items_are_kept_when_the_final_object_leaves_them_out() -> None:
    conv = converter()
    emits, _ = run(conv, sse(upstream_stream(final_output=[])))
    final = emits[-1].final
    assert final is not None
    assert final["response"]["output"] == [MESSAGE]


def test_store_and_previous_id_follow_the_client() -> None:
    conv = NativeConverter(response_id=OURS, previous_response_id=None, store=False, provider="openai")
    emits, sent = run(conv, sse(upstream_stream()))
    assert sent[0][1]["response"]["store"] is False
    assert sent[0][1]["response"]["previous_response_id"] is None
    assert emits[-1].final is not None and emits[-1].final["response"]["store"] is False


def test_events_without_an_event_line() -> None:
    conv = converter()
    events = upstream_stream()
    raw = b"".join(b"data: " + json.dumps(e).encode() + b"\n\n" for e in events)
    emits = [conv.event(event, None) for event in SSEDecoder().feed(raw)]
    assert json.loads(emits[0].frames.split(b"data: ")[1])["response"]["id"] == OURS
    assert emits[-1].final is not None and emits[-1].final["response"]["id"] == OURS


@pytest.mark.parametrize("kind", ["error", "response.failed"])
def test_in_band_failures_are_raised_classified(kind: str) -> None:
    conv = converter()
    run(conv, sse(upstream_stream()[:4]))
    if kind == "error":
        payload: dict[str, Any] = {
            "type": "error",
            "sequence_number": 4,
            "error": {"type": "service_unavailable_error", "code": "server_is_overloaded", "message": "Busy"},
        }
    else:
        payload = {
            "type": "response.failed",
            "sequence_number": 4,
            "response": response("failed", [], error={"code": "server_error", "message": "Boom"}),
        }
    with pytest.raises(StreamFailure) as failed:
        conv.event(SSEEvent(kind, json.dumps(payload)), None)
    assert failed.value.classified.kind in ("overloaded", "generic")


def test_failure_events_continue_the_sequence() -> None:
    conv = converter()
    run(conv, sse(upstream_stream()[:5]))
    error = {
        "message": "The stream was cut.",
        "type": "server_error",
        "param": None,
        "code": "stream_truncated",
    }
    emit = conv.fail(error)
    first = json.loads(emit.frames.split(b"data: ")[1])
    assert first == {
        "type": "error",
        "code": "stream_truncated",
        "message": "The stream was cut.",
        "param": None,
        "error": error,
        "sequence_number": 5,
    }
    assert emit.frames == encode_event(first)
    final = emit.final
    assert final is not None
    assert (final["type"], final["sequence_number"]) == ("response.failed", 6)
    failed = final["response"]
    assert (failed["id"], failed["status"], failed["usage"]) == (OURS, "failed", None)
    assert failed["error"] == {"code": "server_error", "message": "The stream was cut."}
    assert failed["output"] == [MESSAGE]
    assert conv.upstream_id is None  # a failed response is never chained natively


def test_an_upstream_that_stops_early_is_truncated() -> None:
    conv = converter()
    run(conv, sse(upstream_stream()[:3]))
    with pytest.raises(StreamTruncated):
        conv.end()
