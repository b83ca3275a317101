"""The pieces of a stream rescue: what a Chat Completions client received (and whether it can be
continued), the continuation request, and the rest written as the same answer."""

from __future__ import annotations

import json
from typing import Any

from gateway.dialects.base import prefilled
from gateway.exchange.rescue import ChatSplice, Partial, chat_partial


def frame(chunk: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(chunk).encode() + b"\n\n"


HEAD = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 7, "model": "m"}


def delta(**fields: Any) -> dict[str, Any]:
    return {**HEAD, "choices": [{"index": 0, "delta": fields, "finish_reason": None}]}


def test_the_partial_answer_is_the_text_received() -> None:
    sent = (
        frame(delta(role="assistant", content=""))
        + frame(delta(content="Hello "))
        + frame(delta(content="wor"))
    )
    assert chat_partial(sent) == Partial("Hello wor", HEAD)


def test_a_tool_call_or_a_second_choice_is_not_continued() -> None:
    call = delta(tool_calls=[{"index": 0, "id": "c", "function": {"name": "f", "arguments": "{"}}])
    assert chat_partial(frame(delta(content="x")) + frame(call)) is None
    second = {**HEAD, "choices": [{"index": 1, "delta": {"content": "y"}, "finish_reason": None}]}
    assert chat_partial(frame(second)) is None


def test_the_continuation_request_prefills_the_answer() -> None:
    chat = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "n": 1, "stream": False}
    body = prefilled(chat, "Hello wor ", continue_final_message=True)
    assert body["messages"][-1] == {"role": "assistant", "content": "Hello wor"}
    assert (body["continue_final_message"], body["add_generation_prompt"]) == (True, False)
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert "n" not in body
    plain = prefilled(chat, "Hello", continue_final_message=False)
    assert "continue_final_message" not in plain
    assert prefilled(chat, "  ", continue_final_message=True)["messages"] == chat["messages"]


async def test_the_rest_is_written_as_the_same_answer() -> None:
    out: list[bytes] = []

    async def send(chunk: bytes) -> None:
        out.append(chunk)

    splice = ChatSplice(Partial("Hello ", HEAD), include_usage=False)
    other = {"id": "other", "object": "chat.completion.chunk", "created": 9, "model": "fallback"}
    await splice.feed(
        [
            {**other, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]},
            {**other, "choices": [{"index": 0, "delta": {"content": " world"}}]},
            {**other, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
            {
                **other,
                "choices": [],
                "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
            },
        ],
        send,
    )
    await splice.end(send)
    frames = [f for f in b"".join(out).split(b"\n\n") if f]
    assert frames[-1] == b"data: [DONE]"
    chunks = [json.loads(f[6:]) for f in frames[:-1]]
    assert [c["choices"][0]["delta"] for c in chunks] == [{"content": "world"}, {}]  # space not repeated
    assert {c["id"] for c in chunks} == {"chatcmpl-1"} and {c["model"] for c in chunks} == {"m"}
    assert all("usage" not in c for c in chunks)  # the client did not ask for it
    assert splice.usage is not None and splice.usage.output_tokens == 2
