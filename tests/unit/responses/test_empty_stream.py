"""A streamed request that the upstream answers with a success status and an empty body is a
classified failure with a detail (502, ``x-should-retry: false``), not a blind-retried 504
``upstream_timeout``: the deployment is asked once, and another deployment of the model may still
answer it. The upstream is an ``httpx.MockTransport``; the gateway and its Redis are real."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import httpx
import pytest

from gateway.clock import ManualClock
from gateway.testing import NO_BACKOFF, serve_gateway
from tests.conftest import GATEWAY_KEY, RunningGateway
from tests.integration.responses.support import post, sse_events


class Upstreams:
    """``empty`` answers every POST 200 with an empty event stream; ``good`` answers Chat."""

    def __init__(self) -> None:
        self.posts: dict[str, int] = {"empty": 0, "good": 0}

    def transport(self, name: str) -> httpx.MockTransport:
        def handle(request: httpx.Request) -> httpx.Response:
            if request.method == "GET":
                return httpx.Response(200, json={"object": "list", "data": []})
            self.posts[name] += 1
            if name == "empty":
                return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=b"")
            body = json.loads(request.content)
            chunks = [
                {
                    "id": "c1",
                    "object": "chat.completion.chunk",
                    "created": 1,
                    "model": body["model"],
                    "choices": [
                        {"index": 0, "delta": {"role": "assistant", "content": "hi"}, "finish_reason": None}
                    ],
                },
                {
                    "id": "c1",
                    "object": "chat.completion.chunk",
                    "created": 1,
                    "model": body["model"],
                    "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
                },
            ]
            text = "".join(f"data: {json.dumps(c)}\n\n" for c in chunks) + "data: [DONE]\n\n"
            return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=text.encode())

        return httpx.MockTransport(handle)


@pytest.fixture
def upstreams() -> Upstreams:
    return Upstreams()


@pytest.fixture
def gw(redis_url: str, upstreams: Upstreams) -> Iterator[RunningGateway]:
    retry = dict(NO_BACKOFF)
    config = {
        "redis": {"url": redis_url, "key_prefix": f"gwunit-{uuid.uuid4().hex[:12]}:"},
        "auth": {"keys": [{"name": "test", "key": GATEWAY_KEY}]},
        "providers": [
            {
                "name": "empty",
                "kind": "openai",
                "base_url": "http://empty.test/v1",
                "api_key": "sk-a",
                "retry": retry,
            },
            {
                "name": "good",
                "kind": "openai",
                "base_url": "http://good.test/v1",
                "api_key": "sk-b",
                "retry": retry,
            },
        ],
        "models": [
            {"name": "lonely", "provider": "empty", "upstream_model": "m", "api": "chat"},
            {
                "name": "backed",
                "provider": "empty",
                "upstream_model": "m",
                "api": "chat",
                "fallbacks": ["good-model"],
            },
            {"name": "good-model", "provider": "good", "upstream_model": "g", "api": "chat"},
        ],
    }
    transports = {"empty": upstreams.transport("empty"), "good": upstreams.transport("good")}
    with serve_gateway(config, clock=ManualClock(), transports=transports) as running:
        yield running


def test_an_empty_stream_is_a_classified_failure_asked_once(gw: RunningGateway, upstreams: Upstreams) -> None:
    answer = post(gw, {"model": "lonely", "input": "hi", "stream": True})
    assert answer.status_code == 502, answer.text
    assert answer.headers["x-should-retry"] == "false"
    error = answer.json()["error"]
    assert (error["kind"], error["retryable"]) == ("generic", False)
    assert error["code"] != "upstream_timeout"
    assert "empty body" in error["detail"]
    assert upstreams.posts["empty"] == 1  # not retried on the deployment that answered it


def test_another_deployment_may_still_answer(gw: RunningGateway, upstreams: Upstreams) -> None:
    answer = post(gw, {"model": "backed", "input": "hi", "stream": True})
    assert answer.status_code == 200, answer.text
    events = [data for _, data in sse_events(answer.text)]
    assert events[-1]["type"] == "response.completed"
    assert upstreams.posts == {"empty": 1, "good": 1}
