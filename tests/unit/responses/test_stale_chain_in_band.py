"""An upstream that forgot the parent and says so in-band (``previous_response_not_found`` as an
``error`` event after ``response.created``, before the commit point) is asked again at once with
the full history, in the same attempt; the client never sees the error.

The fake providers answer ``previous_response_not_found`` only as an HTTP 400 (that form is tested
in ``tests/integration/responses/test_native_chaining.py``), so this stream is scripted with an
``httpx.MockTransport`` in place of the upstream; the gateway and its Redis are real."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import redis

from gateway.clock import ManualClock
from gateway.testing import serve_gateway
from tests.conftest import GATEWAY_KEY, RunningGateway
from tests.integration.responses.support import post, sse_events, stored

UPSTREAM_URL = "http://upstream.test/v1"
NOT_FOUND = {
    "type": "invalid_request_error",
    "code": "previous_response_not_found",
    "message": "Previous response with id 'resp_up_1' not found.",
    "param": "previous_response_id",
}


def frames(events: list[dict[str, Any]]) -> bytes:
    for number, event in enumerate(events):
        event["sequence_number"] = number
    return b"".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n".encode() for e in events)


class Upstream:
    """A Responses upstream that knows only the ids in ``known`` and says so in-band. It lists no
    models (the gateway asks for the listing)."""

    def __init__(self) -> None:
        self.posts: list[dict[str, Any]] = []
        self.known: set[str] = set()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if (request.method, request.url.path) == ("GET", "/v1/models"):  # the gateway's discovery
            return httpx.Response(200, json={"object": "list", "data": []})
        assert (request.method, request.url.path) == ("POST", "/v1/responses")
        body = json.loads(request.content)
        self.posts.append(body)
        number = len(self.posts)
        shell: dict[str, Any] = {
            "id": f"resp_up_{number}",
            "object": "response",
            "status": "in_progress",
            "model": body["model"],
            "output": [],
            "previous_response_id": body.get("previous_response_id"),
            "store": body["store"],
            "usage": None,
        }
        stream = body.get("stream", False)
        previous = body.get("previous_response_id")
        if previous is not None and previous not in self.known:
            assert stream, "this upstream only forgets in-band"
            events: list[dict[str, Any]] = [
                {"type": "response.created", "response": shell},
                {"type": "error", "error": NOT_FOUND},
            ]
            return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=frames(events))
        given = body["input"]
        said = given if isinstance(given, str) else given[-1]["content"][0]["text"]
        message: dict[str, Any] = {
            "id": f"msg_up_{number}",
            "type": "message",
            "status": "completed",
            "role": "assistant",
            "content": [
                {"type": "output_text", "text": f"You said: {said}", "annotations": [], "logprobs": []}
            ],
        }
        final: dict[str, Any] = {
            **shell,
            "status": "completed",
            "output": [message],
            "usage": {"input_tokens": 5, "output_tokens": 3, "total_tokens": 8},
        }
        self.known.add(shell["id"])
        if not stream:
            return httpx.Response(200, json=final)
        events = [
            {"type": "response.created", "response": shell},
            {"type": "response.in_progress", "response": shell},
            {"type": "response.output_item.added", "output_index": 0, "item": {**message, "content": []}},
            {
                "type": "response.output_text.delta",
                "item_id": message["id"],
                "output_index": 0,
                "content_index": 0,
                "delta": message["content"][0]["text"],
            },
            {"type": "response.output_item.done", "output_index": 0, "item": message},
            {"type": "response.completed", "response": final},
        ]
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=frames(events))


@pytest.fixture
def upstream() -> Upstream:
    return Upstream()


@pytest.fixture
def gw(redis_url: str, upstream: Upstream) -> Iterator[RunningGateway]:
    config = {
        "redis": {"url": redis_url, "key_prefix": f"gwunit-{uuid.uuid4().hex[:12]}:"},
        "auth": {"keys": [{"name": "test", "key": GATEWAY_KEY}]},
        "providers": [{"name": "acct", "kind": "openai", "base_url": UPSTREAM_URL, "api_key": "sk-a"}],
        "models": [
            {"name": "native", "provider": "acct", "upstream_model": "gpt-4o-mini", "api": "responses"}
        ],
        "responses": {"ttl_seconds": 3600},
    }
    with serve_gateway(
        config, clock=ManualClock(), transports={"acct": httpx.MockTransport(upstream)}
    ) as running:
        yield running


def test_a_parent_forgotten_in_band_is_replayed_transparently(
    gw: RunningGateway, upstream: Upstream, redis_sync: redis.Redis
) -> None:
    first = post(gw, {"model": "native", "input": "Remember 7", "instructions": "Old rules."}).json()
    upstream.known.clear()  # expired upstream, or another account

    answer = post(
        gw, {"model": "native", "input": "Which number?", "previous_response_id": first["id"], "stream": True}
    )
    assert answer.status_code == 200
    assert answer.headers["x-gateway-attempts"] == "1"  # not a failure, not a retry
    events = sse_events(answer.text)
    assert "error" not in [name for name, _ in events]
    assert [data["sequence_number"] for _, data in events] == list(range(len(events)))
    assert events[-1][0] == "response.completed"
    final = events[-1][1]["response"]
    assert final["output"][0]["content"][0]["text"] == "You said: Which number?"
    assert final["previous_response_id"] == first["id"]

    native, replay = upstream.posts[1:]
    assert (native["previous_response_id"], native["input"]) == ("resp_up_1", "Which number?")
    assert "previous_response_id" not in replay
    assert "instructions" not in replay
    assert replay["input"] == [
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Remember 7"}]},
        {
            "type": "message",
            "status": "completed",
            "role": "assistant",
            "content": [
                {"type": "output_text", "text": "You said: Remember 7", "annotations": [], "logprobs": []}
            ],
        },
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Which number?"}]},
    ]
    # The new response is stored upstream again: the next turn chains natively from it.
    assert stored(redis_sync, gw, final["id"])["meta"]["upstream_id"] == "resp_up_3"
    post(gw, {"model": "native", "input": "Thanks", "previous_response_id": final["id"]})
    assert upstream.posts[-1]["previous_response_id"] == "resp_up_3"
