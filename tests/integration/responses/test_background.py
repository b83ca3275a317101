"""Background responses on one gateway and a real Redis: queued, polled to the end, their events
followed from the start or resumed after a sequence number, chained from, cancelled (the
upstream call stops), and every object and event schema-validated."""

from __future__ import annotations

from typing import Any

import pytest
import redis

from fake_providers.clock import FIRST_PART, GAP
from fake_providers.testing import FakeProviders
from gateway.clock import ManualClock
from gateway.responses.worker import LEASE_RENEW
from gateway.testing import OTHER_KEY, poll_until
from tests.conftest import GatewayFactory, RunningGateway
from tests.fixtures.openresponses import validate_event, validate_response
from tests.integration.responses.support import call, record_key, responses_config, sse_events

SLOW = "fault-slow-300ms-400ms"  # each chunk waits on the fakes' clock


@pytest.fixture
def gw(gateway_factory: GatewayFactory, fake: FakeProviders, redis_url: str) -> RunningGateway:
    config = responses_config(fake, redis_url)
    config["models"].append(
        {"name": "slow", "provider": "fake-openai", "upstream_model": SLOW, "api": "chat"}
    )
    return gateway_factory(config)


def events_of(text: str) -> list[dict[str, Any]]:
    events = [data for _, data in sse_events(text)]
    for event in events:
        validate_event(event)
    return events


def finished(gw: RunningGateway, response_id: str) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        found: dict[str, Any] = call(gw, "GET", f"/responses/{response_id}").json()
        validate_response(found)
        return found if found["status"] not in ("queued", "in_progress") else None

    return poll_until(done, what="the background run's end")


@pytest.mark.parametrize("model", ["chat-model", "resp-model"])
def test_a_background_run_is_queued_polled_and_streamed(gw: RunningGateway, model: str) -> None:
    answer = call(gw, "POST", "/responses", json={"model": model, "input": "Hello", "background": True})
    assert answer.status_code == 200, answer.text
    queued = answer.json()
    validate_response(queued)
    assert (queued["status"], queued["background"], queued["output"]) == ("queued", True, [])

    done = finished(gw, queued["id"])
    assert (done["status"], done["background"]) == ("completed", True)
    assert done["output"][0]["content"][0]["text"] == "You said: Hello"

    stream = call(gw, "GET", f"/responses/{queued['id']}", params={"stream": "true"})
    assert stream.status_code == 200
    events = events_of(stream.text)
    assert events[0]["type"] == "response.queued"
    assert events[-1]["type"] == "response.completed"
    numbers = [e["sequence_number"] for e in events]
    assert numbers == list(range(len(events)))
    # Resumed after a sequence number: exactly the events after it.
    resumed = call(gw, "GET", f"/responses/{queued['id']}", params={"stream": "true", "starting_after": "3"})
    assert [e["sequence_number"] for e in events_of(resumed.text)] == numbers[4:]
    bad = call(gw, "GET", f"/responses/{queued['id']}", params={"stream": "true", "starting_after": "x"})
    assert (bad.status_code, bad.json()["error"]["param"]) == (400, "starting_after")

    # The finished run is a stored response like any other: chained from, listed.
    follow = call(
        gw, "POST", "/responses", json={"model": model, "input": "Again", "previous_response_id": done["id"]}
    )
    assert follow.status_code == 200, follow.text
    assert follow.json()["previous_response_id"] == done["id"]


def test_a_background_run_posted_with_stream_sends_its_events(gw: RunningGateway) -> None:
    body = {"model": "chat-model", "input": "Streamed", "background": True, "stream": True}
    answer = call(gw, "POST", "/responses", json=body)
    assert answer.status_code == 200
    events = events_of(answer.text)
    assert [events[0]["type"], events[-1]["type"]] == ["response.queued", "response.completed"]
    assert events[-1]["response"]["background"] is True
    assert events[-1]["response"]["output"][0]["content"][0]["text"] == "You said: Streamed"


def test_a_failed_run_ends_failed(gw: RunningGateway, fake: FakeProviders) -> None:
    fake.script([{"fault": "context-length", "times": 1}])
    answer = call(gw, "POST", "/responses", json={"model": "chat-model", "input": "x", "background": True})
    done = finished(gw, answer.json()["id"])
    assert done["status"] == "failed"
    events = events_of(call(gw, "GET", f"/responses/{done['id']}", params={"stream": "true"}).text)
    assert [e["type"] for e in events] == ["response.queued", "error", "response.failed"]


def test_cancelling_a_run_stops_the_upstream_call(
    gw: RunningGateway, fake: FakeProviders, fake_clock: ManualClock, redis_sync: redis.Redis
) -> None:
    answer = call(
        gw, "POST", "/responses", json={"model": "slow", "input": "one two three", "background": True}
    )
    response_id = answer.json()["id"]
    fake_clock.fire(FIRST_PART)
    fake_clock.fire(GAP)
    fake_clock.wait_for_timer_blocking(GAP)  # mid-answer: the upstream waits on the fakes' clock
    assert call(gw, "GET", f"/responses/{response_id}").json()["status"] == "in_progress"

    cancelled = call(gw, "POST", f"/responses/{response_id}/cancel")
    assert cancelled.status_code == 200, cancelled.text
    validate_response(cancelled.json())
    assert cancelled.json()["status"] == "cancelled"
    # The running replica sees it at its next lease renewal, and drops the upstream call.
    gw.clock.fire(LEASE_RENEW)
    poll_until(lambda: fake.status()["active_replies"] == 0, what="the upstream answer to be abandoned")
    assert fake_clock.history(GAP)[-1] == "cancelled"
    assert call(gw, "GET", f"/responses/{response_id}").json()["status"] == "cancelled"
    assert redis_sync.hget(record_key(gw, response_id), "bg") == b"cancelled"
    # Cancelling again answers the cancelled response.
    assert call(gw, "POST", f"/responses/{response_id}/cancel").json()["status"] == "cancelled"


def test_runs_belong_to_their_key(gw: RunningGateway) -> None:
    answer = call(gw, "POST", "/responses", json={"model": "chat-model", "input": "mine", "background": True})
    response_id = answer.json()["id"]
    finished(gw, response_id)
    for method, path, params in (
        ("GET", f"/responses/{response_id}", {"stream": "true"}),
        ("POST", f"/responses/{response_id}/cancel", {}),
    ):
        foreign = call(gw, method, path, params=params, key=OTHER_KEY)
        assert (foreign.status_code, foreign.json()["error"]["code"]) == (404, "response_not_found")
