"""Small stand-in upstreams for the Responses tests, served on real sockets.

``MiniResponses`` is an OpenAI Responses API with a real store: ``previous_response_id`` chains
to what it stored (and answers OpenAI's ``previous_response_not_found`` otherwise), ``store:
false`` is honoured, it can *forget* a response (expiry, another account) and streams the event
sequence of the spec. ``MiniAnthropic`` answers Messages requests, streamed or not. Both journal
what they receive. They exist until the shared fakes (``fake_providers``) speak these dialects.
"""

from __future__ import annotations

import itertools
import json
import threading
from typing import Any

Scope = dict[str, Any]


async def _read(receive: Any) -> bytes:
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            return body


async def _send_json(send: Any, status: int, value: Any) -> None:
    body = json.dumps(value).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _send_sse(send: Any, frames: list[bytes]) -> None:
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/event-stream")]}
    )
    for frame in frames:
        await send({"type": "http.response.body", "body": frame, "more_body": True})
    await send({"type": "http.response.body", "body": b""})


def _frame(event: dict[str, Any]) -> bytes:
    return b"event: " + event["type"].encode() + b"\ndata: " + json.dumps(event).encode() + b"\n\n"


def _last_user_text(items: list[dict[str, Any]]) -> str:
    for item in reversed(items):
        if item.get("role") == "user":
            content = item.get("content")
            if isinstance(content, str):
                return content
            return " ".join(part.get("text", "") for part in content or ())
    return ""


class MiniResponses:
    """``POST /v1/responses``, ``DELETE /v1/responses/{id}``; state in memory."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self.stored: dict[str, list[dict[str, Any]]] = {}  # id -> the whole context it answered
        self.journal: list[tuple[str, str, Any]] = []
        self.tool_calls: list[dict[str, Any]] = []  # queued function calls to answer with
        self.not_found_in_band = False
        self.failing = False  # answer every create with a 503

    def forget(self, upstream_id: str) -> None:
        with self._lock:
            self.stored.pop(upstream_id, None)

    def posts(self) -> list[dict[str, Any]]:
        return [body for method, _, body in self.journal if method == "POST"]

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        raw = await _read(receive)
        body = json.loads(raw) if raw else None
        with self._lock:
            self.journal.append((scope["method"], scope["path"], body))
        if scope["method"] == "DELETE":
            found = self.stored.pop(scope["path"].rsplit("/", 1)[1], None)
            await _send_json(send, 200 if found is not None else 404, {"deleted": found is not None})
            return
        await self._create(body, send)

    async def _create(self, body: dict[str, Any], send: Any) -> None:
        if self.failing:
            error = {"message": "Service Unavailable", "type": "server_error", "param": None, "code": None}
            await _send_json(send, 503, {"error": error})
            return
        previous = body.get("previous_response_id")
        context: list[dict[str, Any]] = []
        if previous is not None:
            if previous not in self.stored:
                error = {
                    "message": f"Previous response with id '{previous}' not found.",
                    "type": "invalid_request_error",
                    "param": "previous_response_id",
                    "code": "previous_response_not_found",
                }
                if body.get("stream") and self.not_found_in_band:
                    shell = self._response(body, "resp_up_failed", "in_progress", [])
                    await _send_sse(
                        send,
                        [
                            _frame({"type": "response.created", "response": shell, "sequence_number": 0}),
                            _frame({"type": "error", "error": error, "status": 400, "sequence_number": 1}),
                        ],
                    )
                    return
                await _send_json(send, 400, {"error": error})
                return
            context = list(self.stored[previous])
        given = body.get("input")
        items = [{"role": "user", "content": given}] if isinstance(given, str) else list(given or ())
        context.extend(items)
        response_id = f"resp_up_{next(self._ids)}"
        if self.tool_calls and body.get("tools"):
            call = self.tool_calls.pop(0)
            output = [{"id": f"fc_up_{response_id}", "type": "function_call", "status": "completed", **call}]
        else:
            text = "You said: " + _last_user_text(items)
            if items and items[-1].get("type") == "function_call_output":
                text = "Tool said: " + str(items[-1].get("output"))
            output = [
                {
                    "id": f"msg_up_{response_id}",
                    "type": "message",
                    "status": "completed",
                    "role": "assistant",
                    "content": [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}],
                }
            ]
        if body.get("store", True):
            with self._lock:
                self.stored[response_id] = context + output
        final = self._response(body, response_id, "completed", output)
        if not body.get("stream"):
            await _send_json(send, 200, final)
            return
        await _send_sse(send, self._events(body, response_id, final))

    def _response(
        self, body: dict[str, Any], response_id: str, status: str, output: list[dict[str, Any]]
    ) -> dict[str, Any]:
        done = status == "completed"
        return {
            "id": response_id,
            "object": "response",
            "created_at": 1_700_000_000,
            "status": status,
            "error": None,
            "incomplete_details": None,
            "instructions": body.get("instructions"),
            "model": str(body.get("model")) + "-2024-07-18",
            "output": output,
            "parallel_tool_calls": True,
            "previous_response_id": body.get("previous_response_id"),
            "store": body.get("store", True),
            "temperature": 1.0,
            "tool_choice": "auto",
            "tools": body.get("tools") or [],
            "top_p": 1.0,
            "usage": {"input_tokens": 5, "output_tokens": 3, "total_tokens": 8} if done else None,
            "metadata": {},
        }

    def _events(self, body: dict[str, Any], response_id: str, final: dict[str, Any]) -> list[bytes]:
        shell = self._response(body, response_id, "in_progress", [])
        events: list[dict[str, Any]] = [
            {"type": "response.created", "response": shell},
            {"type": "response.in_progress", "response": shell},
        ]
        for index, item in enumerate(final["output"]):
            if item["type"] == "function_call":
                events += [
                    {
                        "type": "response.output_item.added",
                        "output_index": index,
                        "item": {**item, "arguments": ""},
                    },
                    {
                        "type": "response.function_call_arguments.delta",
                        "item_id": item["id"],
                        "output_index": index,
                        "delta": item["arguments"],
                    },
                    {
                        "type": "response.function_call_arguments.done",
                        "item_id": item["id"],
                        "output_index": index,
                        "arguments": item["arguments"],
                    },
                ]
            else:
                text = item["content"][0]["text"]
                events += [
                    {
                        "type": "response.output_item.added",
                        "output_index": index,
                        "item": {**item, "status": "in_progress", "content": []},
                    },
                    {
                        "type": "response.content_part.added",
                        "item_id": item["id"],
                        "output_index": index,
                        "content_index": 0,
                        "part": {"type": "output_text", "text": "", "annotations": []},
                    },
                    *(
                        {
                            "type": "response.output_text.delta",
                            "item_id": item["id"],
                            "output_index": index,
                            "content_index": 0,
                            "delta": piece,
                            "logprobs": [],
                        }
                        for piece in text.split(" ")
                        if piece
                    ),
                    {
                        "type": "response.output_text.done",
                        "item_id": item["id"],
                        "output_index": index,
                        "content_index": 0,
                        "text": text,
                        "logprobs": [],
                    },
                    {
                        "type": "response.content_part.done",
                        "item_id": item["id"],
                        "output_index": index,
                        "content_index": 0,
                        "part": item["content"][0],
                    },
                ]
            events.append({"type": "response.output_item.done", "output_index": index, "item": item})
        events.append({"type": "response.completed", "response": final})
        for number, event in enumerate(events):
            event["sequence_number"] = number
        return [_frame(event) for event in events]


class MiniAnthropic:
    """``POST /v1/messages``: a text answer echoing the last user turn, streamed or not."""

    def __init__(self) -> None:
        self.journal: list[dict[str, Any]] = []

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = json.loads(await _read(receive))
        self.journal.append(body)
        last = body["messages"][-1]
        content = last["content"]
        text = (
            content
            if isinstance(content, str)
            else " ".join(b.get("text", "") for b in content if b["type"] == "text")
        )
        answer = "Claude heard: " + text
        message = {
            "id": "msg_01anthropic",
            "type": "message",
            "role": "assistant",
            "model": body["model"],
            "content": [{"type": "text", "text": answer}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": {"input_tokens": 7, "output_tokens": 4},
        }
        if not body.get("stream"):
            await _send_json(send, 200, message)
            return
        start = {
            **message,
            "content": [],
            "stop_reason": None,
            "usage": {"input_tokens": 7, "output_tokens": 0},
        }
        events = [
            ("message_start", {"type": "message_start", "message": start}),
            (
                "content_block_start",
                {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
            ),
            ("ping", {"type": "ping"}),
            (
                "content_block_delta",
                {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": answer}},
            ),
            ("content_block_stop", {"type": "content_block_stop", "index": 0}),
            (
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                    "usage": {"output_tokens": 4},
                },
            ),
            ("message_stop", {"type": "message_stop"}),
        ]
        await _send_sse(
            send,
            [b"event: " + n.encode() + b"\ndata: " + json.dumps(d).encode() + b"\n\n" for n, d in events],
        )
