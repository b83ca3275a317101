"""A Responses upstream failing mid-stream (the fake OpenAI Responses API): before the commit
point the attempt is retried; after it the client gets ``error`` then ``response.failed``, with
the gateway's id and unbroken sequence numbers, and the record says ``failed``."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import redis

from fake_providers.testing import FakeProviders
from gateway.clock import STREAM_IDLE
from tests.conftest import AutoAdvance, GatewayFactory, RunningGateway
from tests.integration.responses.support import RESPONSES_PATH, post, responses_config, sse_events, stored


@pytest.fixture
def gw(gateway_factory: GatewayFactory, fake: FakeProviders, redis_url: str) -> RunningGateway:
    return gateway_factory(responses_config(fake, redis_url))


def body(**extra: Any) -> dict[str, Any]:
    return {"model": "resp-model", "input": "Tell me a story", "stream": True, **extra}


@pytest.mark.parametrize(
    ("fault", "code"),
    [("stall-4", "stream_idle_timeout"), ("cut-5", "stream_truncated")],
    ids=["stalled", "cut"],
)
def test_a_failure_after_commit(
    gw: RunningGateway, fake: FakeProviders, redis_sync: redis.Redis, fault: str, code: str
) -> None:
    fake.script([{"fault": fault}])
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(post, gw, body())
        if fault.startswith("stall"):
            gw.clock.fire_until(STREAM_IDLE, pending.done, timeout=10)
        answer = pending.result(timeout=10)
    assert answer.status_code == 200
    events = sse_events(answer.text)
    names = [name for name, _ in events]
    assert [data["sequence_number"] for _, data in events] == list(range(len(events)))
    assert names[:3] == ["response.created", "response.in_progress", "response.output_item.added"]
    assert names[-2:] == ["error", "response.failed"]
    assert "response.completed" not in names
    error = events[-2][1]
    assert error["error"]["code"] == code and error["code"] == code
    failed = events[-1][1]["response"]
    ours = events[0][1]["response"]["id"]
    assert failed["id"] == ours and ours.startswith("resp_")
    assert failed["status"] == "failed"
    assert len(fake.requests(path=RESPONSES_PATH)) == 1  # committed: never retried

    meta = stored(redis_sync, gw, ours)["meta"]
    assert (meta["status"], meta["upstream_id"]) == ("failed", None)
    # A follow-up of a failed response is replayed, never chained on the upstream's copy.
    follow = post(gw, {"model": "resp-model", "input": "Again", "previous_response_id": ours})
    assert follow.status_code == 200
    assert "previous_response_id" not in fake.requests(path=RESPONSES_PATH)[-1].body


def test_an_in_band_error_before_commit_is_retried(gw: RunningGateway, fake: FakeProviders) -> None:
    fake.script([{"fault": "inband-503"}])
    with AutoAdvance(gw.clock):
        answer = post(gw, body())
    assert answer.headers["x-gateway-attempts"] == "2"
    events = sse_events(answer.text)
    assert [name for name, _ in events].count("response.created") == 1
    assert events[-1][0] == "response.completed"
    assert len(fake.requests(path=RESPONSES_PATH)) == 2


def test_http_errors_answer_in_the_responses_dialect(gw: RunningGateway, fake: FakeProviders) -> None:
    fake.script([{"fault": "context-length"}])
    answer = post(gw, {"model": "resp-model", "input": "Hi"})
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert (error["type"], error["code"], error["param"]) == (
        "invalid_request_error",
        "context_length_exceeded",
        "input",
    )
    assert error["message"] == (
        "Your input exceeds the context window of this model. Please adjust your input and try again."
    )
