"""Streamed Chat chunks -> Responses events: exact event sequences."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest

from gateway.translate import (
    ChatToResponsesStream,
    SequentialIds,
    encode_carrier,
    encode_event,
    encode_events,
)

REQUEST: dict[str, Any] = {"model": "public-model", "input": "hi", "stream": True}


def new_stream() -> ChatToResponsesStream:
    return ChatToResponsesStream(
        request=REQUEST, response_id="resp_1", created_at=100, ids=SequentialIds(), previous_response_id=None
    )


def chunk(delta: dict[str, Any] | None = None, finish_reason: str | None = None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "up",
        "choices": [{"index": 0, "delta": delta or {}, "logprobs": None, "finish_reason": finish_reason}],
    }


def usage_chunk(prompt: int, completion: int, cached: int = 0) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "up",
        "choices": [],
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": cached},
        },
    }


def tool_fragment(
    index: int, *, id: str | None = None, name: str | None = None, arguments: str = ""
) -> dict[str, Any]:
    fragment: dict[str, Any] = {"index": index, "function": {"arguments": arguments}}
    if id is not None:
        fragment["id"] = id
        fragment["type"] = "function"
    if name is not None:
        fragment["function"]["name"] = name
    return fragment


def run(chunks: list[dict[str, Any]], sdk: Any) -> tuple[list[dict[str, Any]], ChatToResponsesStream]:
    stream = new_stream()
    events = stream.start()
    for c in chunks:
        events += stream.feed(c)
    events += stream.finish(completed_at=105)
    sdk.events(events)
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    return events, stream


def shell(status: str = "in_progress", **changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": "resp_1",
        "object": "response",
        "created_at": 100,
        "status": status,
        "background": False,
        "completed_at": None,
        "error": None,
        "frequency_penalty": 0.0,
        "incomplete_details": None,
        "instructions": None,
        "max_output_tokens": None,
        "max_tool_calls": None,
        "model": "public-model",
        "output": [],
        "parallel_tool_calls": True,
        "presence_penalty": 0.0,
        "previous_response_id": None,
        "prompt_cache_key": None,
        "prompt_cache_retention": None,
        "reasoning": {"effort": None, "summary": None},
        "safety_identifier": None,
        "service_tier": "default",
        "store": True,
        "temperature": 1.0,
        "text": {"format": {"type": "text"}, "verbosity": "medium"},
        "tool_choice": "auto",
        "tools": [],
        "top_logprobs": 0,
        "top_p": 1.0,
        "truncation": "disabled",
        "usage": None,
        "user": None,
        "metadata": {},
    }
    base.update(changes)
    return base


START = [
    {"type": "response.created", "sequence_number": 0, "response": shell()},
    {"type": "response.in_progress", "sequence_number": 1, "response": shell()},
]

TEXT_PART = {"type": "output_text", "text": "Hello", "annotations": [], "logprobs": []}
EMPTY_TEXT_PART = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}


def test_text_stream_with_usage(sdk: Any) -> None:
    events, stream = run(
        [
            chunk({"role": "assistant", "content": ""}),
            chunk({"content": "Hel"}),
            chunk({"content": "lo"}),
            chunk({}, "stop"),
            usage_chunk(12, 2, cached=5),
        ],
        sdk,
    )
    message_done = {
        "id": "msg_1",
        "type": "message",
        "status": "completed",
        "role": "assistant",
        "content": [TEXT_PART],
    }
    usage = {
        "input_tokens": 12,
        "input_tokens_details": {"cached_tokens": 5, "cache_write_tokens": 0},
        "output_tokens": 2,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": 14,
    }
    final = shell("completed", completed_at=105, output=[message_done], usage=usage)
    ref = {"item_id": "msg_1", "output_index": 0, "content_index": 0}
    assert events == [
        *START,
        {
            "type": "response.output_item.added",
            "sequence_number": 2,
            "output_index": 0,
            "item": {
                "id": "msg_1",
                "type": "message",
                "status": "in_progress",
                "role": "assistant",
                "content": [],
            },
        },
        {"type": "response.content_part.added", "sequence_number": 3, **ref, "part": EMPTY_TEXT_PART},
        {"type": "response.output_text.delta", "sequence_number": 4, **ref, "delta": "Hel", "logprobs": []},
        {"type": "response.output_text.delta", "sequence_number": 5, **ref, "delta": "lo", "logprobs": []},
        {"type": "response.output_text.done", "sequence_number": 6, **ref, "text": "Hello", "logprobs": []},
        {"type": "response.content_part.done", "sequence_number": 7, **ref, "part": TEXT_PART},
        {"type": "response.output_item.done", "sequence_number": 8, "output_index": 0, "item": message_done},
        {"type": "response.completed", "sequence_number": 9, "response": final},
    ]
    assert stream.response == final
    assert stream.finish_reason == "stop"


def test_tool_call_stream(sdk: Any) -> None:
    events, stream = run(
        [
            chunk(
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [tool_fragment(0, id="call_a", name="w")],
                }
            ),
            chunk({"tool_calls": [tool_fragment(0, arguments='{"loc')]}),
            chunk({"tool_calls": [tool_fragment(0, arguments='ation":"SF"}')]}),
            chunk({}, "tool_calls"),
        ],
        sdk,
    )
    done_item = {
        "id": "fc_1",
        "type": "function_call",
        "status": "completed",
        "call_id": "call_a",
        "name": "w",
        "arguments": '{"location":"SF"}',
    }
    assert events[2:] == [
        {
            "type": "response.output_item.added",
            "sequence_number": 2,
            "output_index": 0,
            "item": {
                "id": "fc_1",
                "type": "function_call",
                "status": "in_progress",
                "call_id": "call_a",
                "name": "w",
                "arguments": "",
            },
        },
        {
            "type": "response.function_call_arguments.delta",
            "sequence_number": 3,
            "item_id": "fc_1",
            "output_index": 0,
            "delta": '{"loc',
        },
        {
            "type": "response.function_call_arguments.delta",
            "sequence_number": 4,
            "item_id": "fc_1",
            "output_index": 0,
            "delta": 'ation":"SF"}',
        },
        {
            "type": "response.function_call_arguments.done",
            "sequence_number": 5,
            "item_id": "fc_1",
            "output_index": 0,
            "name": "w",
            "arguments": '{"location":"SF"}',
        },
        {"type": "response.output_item.done", "sequence_number": 6, "output_index": 0, "item": done_item},
        {
            "type": "response.completed",
            "sequence_number": 7,
            "response": shell("completed", completed_at=105, output=[done_item]),
        },
    ]
    assert stream.response is not None
    assert stream.response["usage"] is None


def fc_added(seq: int, index: int, fc: str, call_id: str, name: str) -> dict[str, Any]:
    return {
        "type": "response.output_item.added",
        "sequence_number": seq,
        "output_index": index,
        "item": {
            "id": fc,
            "type": "function_call",
            "status": "in_progress",
            "call_id": call_id,
            "name": name,
            "arguments": "",
        },
    }


def fc_delta(seq: int, index: int, fc: str, delta: str) -> dict[str, Any]:
    return {
        "type": "response.function_call_arguments.delta",
        "sequence_number": seq,
        "item_id": fc,
        "output_index": index,
        "delta": delta,
    }


def fc_done(seq: int, index: int, fc: str, call_id: str, name: str, arguments: str) -> list[dict[str, Any]]:
    return [
        {
            "type": "response.function_call_arguments.done",
            "sequence_number": seq,
            "item_id": fc,
            "output_index": index,
            "name": name,
            "arguments": arguments,
        },
        {
            "type": "response.output_item.done",
            "sequence_number": seq + 1,
            "output_index": index,
            "item": {
                "id": fc,
                "type": "function_call",
                "status": "completed",
                "call_id": call_id,
                "name": name,
                "arguments": arguments,
            },
        },
    ]


def test_text_then_parallel_tool_calls(sdk: Any) -> None:
    events, stream = run(
        [
            chunk({"role": "assistant", "content": "Hello"}),
            chunk({"tool_calls": [tool_fragment(0, id="call_a", name="w", arguments='{"c":')]}),
            chunk({"tool_calls": [tool_fragment(0, arguments='"P"}')]}),
            chunk({"tool_calls": [tool_fragment(1, id="call_b", name="t", arguments="{}")]}),
            chunk({}, "tool_calls"),
            usage_chunk(30, 20),
        ],
        sdk,
    )
    ref = {"item_id": "msg_1", "output_index": 0, "content_index": 0}
    message_done = {
        "id": "msg_1",
        "type": "message",
        "status": "completed",
        "role": "assistant",
        "content": [TEXT_PART],
    }
    assert events[2:-1] == [
        {
            "type": "response.output_item.added",
            "sequence_number": 2,
            "output_index": 0,
            "item": {
                "id": "msg_1",
                "type": "message",
                "status": "in_progress",
                "role": "assistant",
                "content": [],
            },
        },
        {"type": "response.content_part.added", "sequence_number": 3, **ref, "part": EMPTY_TEXT_PART},
        {"type": "response.output_text.delta", "sequence_number": 4, **ref, "delta": "Hello", "logprobs": []},
        {"type": "response.output_text.done", "sequence_number": 5, **ref, "text": "Hello", "logprobs": []},
        {"type": "response.content_part.done", "sequence_number": 6, **ref, "part": TEXT_PART},
        {"type": "response.output_item.done", "sequence_number": 7, "output_index": 0, "item": message_done},
        fc_added(8, 1, "fc_1", "call_a", "w"),
        fc_delta(9, 1, "fc_1", '{"c":'),
        fc_delta(10, 1, "fc_1", '"P"}'),
        *fc_done(11, 1, "fc_1", "call_a", "w", '{"c":"P"}'),
        fc_added(13, 2, "fc_2", "call_b", "t"),
        fc_delta(14, 2, "fc_2", "{}"),
        *fc_done(15, 2, "fc_2", "call_b", "t", "{}"),
    ]
    final = events[-1]
    assert final["type"] == "response.completed"
    assert final["sequence_number"] == 17
    assert [item["id"] for item in final["response"]["output"]] == ["msg_1", "fc_1", "fc_2"]
    assert final["response"]["usage"]["total_tokens"] == 50
    assert stream.response is final["response"]


def test_index_zero_reused_with_a_new_id_starts_a_new_call(sdk: Any) -> None:
    events, stream = run(
        [
            chunk({"tool_calls": [tool_fragment(0, id="call_a", name="w", arguments='{"c":1}')]}),
            chunk({"tool_calls": [tool_fragment(0, id="call_b", name="w", arguments='{"c":2}')]}),
            chunk({}, "tool_calls"),
        ],
        sdk,
    )
    assert events[2:-1] == [
        fc_added(2, 0, "fc_1", "call_a", "w"),
        fc_delta(3, 0, "fc_1", '{"c":1}'),
        *fc_done(4, 0, "fc_1", "call_a", "w", '{"c":1}'),
        fc_added(6, 1, "fc_2", "call_b", "w"),
        fc_delta(7, 1, "fc_2", '{"c":2}'),
        *fc_done(8, 1, "fc_2", "call_b", "w", '{"c":2}'),
    ]
    assert stream.response is not None
    assert [(o["call_id"], o["arguments"]) for o in stream.response["output"]] == [
        ("call_a", '{"c":1}'),
        ("call_b", '{"c":2}'),
    ]


def test_same_id_repeated_on_every_fragment_is_one_call(sdk: Any) -> None:
    _, stream = run(
        [
            chunk({"tool_calls": [tool_fragment(0, id="call_a", name="w", arguments='{"a":')]}),
            chunk({"tool_calls": [tool_fragment(0, id="call_a", arguments="1}")]}),
            chunk({}, "tool_calls"),
        ],
        sdk,
    )
    assert stream.response is not None
    assert [(o["call_id"], o["arguments"]) for o in stream.response["output"]] == [("call_a", '{"a":1}')]


def test_late_fragment_for_a_closed_call_lands_in_the_final_object_only(sdk: Any) -> None:
    events, stream = run(
        [
            chunk({"tool_calls": [tool_fragment(0, id="call_a", name="w", arguments='{"a":')]}),
            chunk({"tool_calls": [tool_fragment(1, id="call_b", name="w", arguments="{}")]}),
            chunk({"tool_calls": [tool_fragment(0, arguments="1}")]}),
            chunk({}, "tool_calls"),
        ],
        sdk,
    )
    deltas = [e["delta"] for e in events if e["type"] == "response.function_call_arguments.delta"]
    assert deltas == ['{"a":', "{}"]
    assert stream.response is not None
    assert stream.response["output"][0]["arguments"] == '{"a":1}'


def test_length_finish_is_incomplete(sdk: Any) -> None:
    events, stream = run([chunk({"content": "Hello"}), chunk({}, "length")], sdk)
    assert events[-2]["type"] == "response.output_item.done"
    assert events[-2]["item"]["status"] == "incomplete"
    assert events[-1]["type"] == "response.incomplete"
    assert events[-1]["response"]["status"] == "incomplete"
    assert events[-1]["response"]["incomplete_details"] == {"reason": "max_output_tokens"}
    assert events[-1]["response"]["completed_at"] is None
    assert stream.response is events[-1]["response"]


def test_reasoning_then_text_and_refusal(sdk: Any) -> None:
    events, _ = run(
        [
            chunk({"role": "assistant", "reasoning_content": "Think"}),
            chunk({"reasoning_content": "ing."}),
            chunk({"content": "Hello"}),
            chunk({"refusal": "No more."}),
            chunk({}, "stop"),
        ],
        sdk,
    )
    rs = {"item_id": "rs_1", "output_index": 0, "content_index": 0}
    msg0 = {"item_id": "msg_1", "output_index": 1, "content_index": 0}
    msg1 = {"item_id": "msg_1", "output_index": 1, "content_index": 1}
    reasoning_part = {"type": "reasoning_text", "text": "Thinking."}
    refusal_part = {"type": "refusal", "refusal": "No more."}
    assert events[2:-1] == [
        {
            "type": "response.output_item.added",
            "sequence_number": 2,
            "output_index": 0,
            "item": {"id": "rs_1", "type": "reasoning", "summary": [], "status": "in_progress"},
        },
        {
            "type": "response.content_part.added",
            "sequence_number": 3,
            **rs,
            "part": {"type": "reasoning_text", "text": ""},
        },
        {"type": "response.reasoning_text.delta", "sequence_number": 4, **rs, "delta": "Think"},
        {"type": "response.reasoning_text.delta", "sequence_number": 5, **rs, "delta": "ing."},
        {"type": "response.reasoning_text.done", "sequence_number": 6, **rs, "text": "Thinking."},
        {"type": "response.content_part.done", "sequence_number": 7, **rs, "part": reasoning_part},
        {
            "type": "response.output_item.done",
            "sequence_number": 8,
            "output_index": 0,
            "item": {
                "id": "rs_1",
                "type": "reasoning",
                "summary": [],
                "status": "completed",
                "content": [reasoning_part],
            },
        },
        {
            "type": "response.output_item.added",
            "sequence_number": 9,
            "output_index": 1,
            "item": {
                "id": "msg_1",
                "type": "message",
                "status": "in_progress",
                "role": "assistant",
                "content": [],
            },
        },
        {"type": "response.content_part.added", "sequence_number": 10, **msg0, "part": EMPTY_TEXT_PART},
        {
            "type": "response.output_text.delta",
            "sequence_number": 11,
            **msg0,
            "delta": "Hello",
            "logprobs": [],
        },
        {"type": "response.output_text.done", "sequence_number": 12, **msg0, "text": "Hello", "logprobs": []},
        {"type": "response.content_part.done", "sequence_number": 13, **msg0, "part": TEXT_PART},
        {
            "type": "response.content_part.added",
            "sequence_number": 14,
            **msg1,
            "part": {"type": "refusal", "refusal": ""},
        },
        {"type": "response.refusal.delta", "sequence_number": 15, **msg1, "delta": "No more."},
        {"type": "response.refusal.done", "sequence_number": 16, **msg1, "refusal": "No more."},
        {"type": "response.content_part.done", "sequence_number": 17, **msg1, "part": refusal_part},
        {
            "type": "response.output_item.done",
            "sequence_number": 18,
            "output_index": 1,
            "item": {
                "id": "msg_1",
                "type": "message",
                "status": "completed",
                "role": "assistant",
                "content": [TEXT_PART, refusal_part],
            },
        },
    ]


def test_failure_after_partial_text(sdk: Any) -> None:
    stream = new_stream()
    events = stream.start() + stream.feed(chunk({"content": "Hel"}))
    error = {
        "message": "Overloaded",
        "type": "service_unavailable_error",
        "param": None,
        "code": "server_is_overloaded",
        "kind": "overloaded",
        "retryable": True,
    }
    tail = stream.fail(error)
    events += tail
    sdk.events(events)
    partial = {
        "id": "msg_1",
        "type": "message",
        "status": "incomplete",
        "role": "assistant",
        "content": [{"type": "output_text", "text": "Hel", "annotations": [], "logprobs": []}],
    }
    failed = shell("failed", output=[partial], error={"code": "server_error", "message": "Overloaded"})
    assert tail == [
        {
            "type": "error",
            "sequence_number": 5,
            "code": "server_is_overloaded",
            "message": "Overloaded",
            "param": None,
            "error": error,
        },
        {"type": "response.failed", "sequence_number": 6, "response": failed},
    ]
    assert stream.response == failed
    with pytest.raises(RuntimeError):
        stream.feed(chunk({"content": "more"}))


@pytest.mark.parametrize(
    ("error", "code"),
    [
        ({"message": "slow down", "type": "tokens", "code": "rate_limit_exceeded"}, "rate_limit_exceeded"),
        ({"message": "slow down", "type": "rate_limit_error", "code": None}, "rate_limit_exceeded"),
        ({"message": "bad image", "type": "invalid_request_error", "code": "invalid_image"}, "invalid_image"),
        ({"message": "boom", "type": "server_error", "code": None}, "server_error"),
    ],
)
def test_failure_codes_are_response_error_codes(sdk: Any, error: dict[str, Any], code: str) -> None:
    stream = new_stream()
    events = stream.fail(error)
    sdk.events(events)
    assert [e["type"] for e in events] == [
        "response.created",
        "response.in_progress",
        "error",
        "response.failed",
    ]
    assert events[-1]["response"]["error"] == {"code": code, "message": error["message"]}


def test_feed_starts_the_stream_when_start_was_not_called(sdk: Any) -> None:
    stream = new_stream()
    events = stream.feed(chunk({"role": "assistant", "content": ""}))
    assert events == START
    events += stream.finish()
    sdk.events(events)
    assert events[-1]["type"] == "response.completed"
    assert events[-1]["response"]["output"] == []


def test_encode_event_frames_sse() -> None:
    event = {"type": "response.output_text.delta", "sequence_number": 4, "delta": "é\n"}
    frame = encode_event(event)
    assert frame.startswith(b"event: response.output_text.delta\ndata: ")
    assert frame.endswith(b"\n\n")
    _head, data = frame[:-2].split(b"\n", 1)
    assert b"\n" not in data
    assert json.loads(data[len(b"data: ") :]) == event


def test_encode_events_frames_each_event_as_encode_event_does() -> None:
    """A whole stream in one buffer: the same bytes as each event framed alone, the Response
    object that created and in_progress share spliced in, and events that only look alike
    (other keys, another order, another object) encoded whole."""
    stream = new_stream()
    events = stream.start()
    assert events[0]["response"] is events[1]["response"]  # one object: encoded once
    events += stream.feed(chunk({"content": 'He said "ü"\n'})) + stream.finish(completed_at=101)
    shell = events[0]["response"]
    events += [
        {"type": "response.in_progress", "response": dict(shell), "sequence_number": 9},
        {"type": "response.in_progress", "sequence_number": 10, "response": shell},
        {"type": "response.in_progress", "response": shell, "sequence_number": 11, "extra": True},
        {"type": "response.queued", "response": shell, "sequence_number": 12},
        {"type": "custom.kind", "response": None},
    ]
    assert encode_events(events) == b"".join(encode_event(event) for event in events)
    assert encode_events([]) == b""
    # The terminal event, its Response's JSON already made (by recording it), or not.
    final = next(event for event in events if event["type"] == "response.completed")
    made = msgspec.json.encode(final["response"])
    assert encode_carrier(final, made) == encode_event(final)
    assert encode_carrier(final, None) == encode_event(final)
    reordered = {"type": "response.completed", "sequence_number": 3, "response": final["response"]}
    assert encode_carrier(reordered, made) == encode_event(reordered)  # another layout: whole
