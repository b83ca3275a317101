"""Failures on the way, in the Responses dialect: retried and failed over before the commit point,
``error`` then ``response.failed`` after it (never a ``response.completed``), and recorded."""

from __future__ import annotations

import threading
from typing import Any

import httpx
import openai
import pytest
import redis

from fake_providers.testing import FakeProviders
from gateway.clock import STREAM_IDLE
from tests.conftest import AutoAdvance, GatewayFactory, RunningGateway
from tests.integration.responses.support import CHAT_PATH, post, responses_config, sse_events, stored


@pytest.fixture
def gw(gateway_factory: GatewayFactory, fake: FakeProviders, redis_url: str) -> RunningGateway:
    return gateway_factory(responses_config(fake, redis_url))


def _check_sequence(events: list[tuple[str, dict[str, Any]]]) -> None:
    assert [data["sequence_number"] for _, data in events] == list(range(len(events)))
    assert all(name == data["type"] for name, data in events)


def test_a_cut_stream_ends_failed_and_is_recorded(
    gw: RunningGateway, fake: FakeProviders, redis_sync: redis.Redis
) -> None:
    fake.script([{"fault": "cut-3", "reply": {"chunks": ["Once ", "upon ", "a ", "time"]}}])
    answer = post(gw, {"model": "chat-model", "input": "A story", "stream": True})
    assert answer.status_code == 200
    events = sse_events(answer.text)
    _check_sequence(events)
    names = [name for name, _ in events]
    assert "response.completed" not in names
    assert names[-2:] == ["error", "response.failed"]
    error = events[-2][1]
    assert error["error"]["code"] == "stream_truncated"
    assert error["error"]["type"] == "server_error"
    assert (error["code"], error["message"]) == ("stream_truncated", error["error"]["message"])
    failed = events[-1][1]["response"]
    assert failed["status"] == "failed"
    assert failed["error"] == {"code": "server_error", "message": error["error"]["message"]}
    streamed = "".join(data["delta"] for name, data in events if name == "response.output_text.delta")
    assert streamed and "Once upon a time".startswith(streamed)

    record = stored(redis_sync, gw, failed["id"])
    assert record["meta"]["status"] == "failed"
    assert record["meta"]["upstream_id"] is None
    assert record["output"] == failed["output"]
    assert record["output"][0]["status"] == "incomplete"
    assert record["body"] == {**failed, "output": []}
    retrieved = gw.openai().responses.retrieve(failed["id"])
    assert retrieved.status == "failed"


def test_the_sdk_raises_on_an_in_band_failure(gw: RunningGateway, fake: FakeProviders) -> None:
    fake.script([{"fault": "cut-3", "reply": {"chunks": ["Once ", "upon ", "a ", "time"]}}])

    def consume() -> None:
        with gw.openai().responses.stream(model="chat-model", input="A story") as stream:
            for _ in stream:
                pass

    with pytest.raises(openai.APIError) as caught:
        consume()
    assert caught.value.body["code"] == "stream_truncated"  # type: ignore[index]


def test_a_stalled_stream_fails_on_the_idle_timer(
    gw: RunningGateway, fake: FakeProviders, redis_sync: redis.Redis
) -> None:
    fake.script([{"fault": "stall-3", "reply": {"chunks": ["Once ", "upon ", "a ", "time"]}}])
    result: dict[str, httpx.Response] = {}

    def request() -> None:
        result["answer"] = post(gw, {"model": "chat-model", "input": "A story", "stream": True})

    worker = threading.Thread(target=request)
    worker.start()
    # A chunk that arrives after the clock moved re-arms the watchdog: fire until the stream ends.
    gw.clock.fire_until(STREAM_IDLE, lambda: not worker.is_alive(), timeout=10)
    worker.join(10)
    events = sse_events(result["answer"].text)
    _check_sequence(events)
    assert [name for name, _ in events][-2:] == ["error", "response.failed"]
    assert events[-2][1]["error"]["code"] == "stream_idle_timeout"
    assert stored(redis_sync, gw, events[-1][1]["response"]["id"])["meta"]["status"] == "failed"


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_failures_before_the_commit_point_are_retried(
    gw: RunningGateway, fake: FakeProviders, stream: bool
) -> None:
    fake.script([{"fault": "inband"}, {"fault": "503"}])
    with AutoAdvance(gw.clock):
        answer = post(gw, {"model": "chat-model", "input": "Hello", "stream": stream})
    assert answer.status_code == 200
    assert answer.headers["x-gateway-attempts"] == "3"
    assert len(fake.requests(path=CHAT_PATH)) == 3
    if stream:
        names = [name for name, _ in sse_events(answer.text)]
        assert names[0] == "response.created" and names[-1] == "response.completed"
        assert names.count("response.created") == 1
    else:
        assert answer.json()["output"][0]["content"][0]["text"] == "You said: Hello"


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_exhausted_retries_answer_in_the_responses_dialect(
    gw: RunningGateway, fake: FakeProviders, redis_sync: redis.Redis, stream: bool
) -> None:
    fake.script([{"fault": "429", "times": None}])
    with AutoAdvance(gw.clock):
        answer = post(gw, {"model": "chat-model", "input": "Hello", "stream": stream})
    assert answer.status_code == 429
    assert answer.headers["content-type"] == "application/json"
    error = answer.json()["error"]
    assert (error["code"], error["kind"], error["type"]) == ("rate_limit_exceeded", "rate_limit", "requests")
    assert answer.headers["x-gateway-attempts"] == "3"
    # Nothing was committed, so nothing was recorded.
    assert list(redis_sync.scan_iter(match=f"{gw.settings.redis.key_prefix}resp:*")) == []


def test_context_length_uses_the_input_param(gw: RunningGateway, fake: FakeProviders) -> None:
    fake.script([{"fault": "context-length"}])
    answer = post(gw, {"model": "chat-model", "input": "Hello"})
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert (error["code"], error["type"], error["param"]) == (
        "context_length_exceeded",
        "invalid_request_error",
        "input",
    )


def test_failover_to_a_fallback_model_carries_the_chain(
    gateway_factory: GatewayFactory, fake: FakeProviders, redis_url: str
) -> None:
    config = responses_config(fake, redis_url)
    config["models"][0]["fallbacks"] = ["llama"]
    gw = gateway_factory(config)
    first = post(gw, {"model": "chat-model", "input": "Remember 7"}).json()
    fake.script([{"fault": "500", "times": None}], model="gpt-4o-mini")
    with AutoAdvance(gw.clock):
        second = post(
            gw, {"model": "chat-model", "input": "Which number?", "previous_response_id": first["id"]}
        )
    assert second.status_code == 200
    assert second.headers["x-gateway-provider"] == "fake-vllm"
    [sent] = [entry.body for entry in fake.requests(path="/vllm/v1/chat/completions")]
    assert [m["role"] for m in sent["messages"]] == ["user", "assistant", "user"]
    assert sent["messages"][1] == {"role": "assistant", "content": "You said: Remember 7"}
