"""WebSocket mode's lanes (``stream_id``) and ``generate: false``: lanes run at the same time and
each turn's messages carry its lane, one lane's turns run in order, unstored chains continue on
every lane, neither field reaches an upstream, and a prepared response has no output, costs no
upstream call and is continued like any other."""

from __future__ import annotations

import json
from typing import Any

import pytest
from websockets.sync.client import ClientConnection, connect

from fake_providers.testing import FakeProviders
from gateway.clock import STREAM_IDLE
from gateway.testing import GATEWAY_KEY
from tests.conftest import GatewayFactory, RunningGateway
from tests.fixtures.openresponses import validate_event
from tests.integration.responses.support import CHAT_PATH, VLLM_CHAT_PATH, responses_config

TERMINAL = ("response.completed", "response.failed", "error")


@pytest.fixture
def gw(gateway_factory: GatewayFactory, fake: FakeProviders, redis_url: str) -> RunningGateway:
    return gateway_factory(responses_config(fake, redis_url))


def socket(gw: RunningGateway) -> ClientConnection:
    url = gw.base_url.replace("http://", "ws://") + "/responses"
    return connect(url, additional_headers={"Authorization": f"Bearer {GATEWAY_KEY}"}, open_timeout=10)


def create(ws: ClientConnection, **body: Any) -> None:
    ws.send(json.dumps({"type": "response.create", **body}))


def receive(ws: ClientConnection) -> dict[str, Any]:
    event: dict[str, Any] = json.loads(ws.recv(timeout=20))
    return event


def until_end(ws: ClientConnection) -> list[dict[str, Any]]:
    events = []
    while True:
        events.append(receive(ws))
        if events[-1]["type"] in TERMINAL:
            return events


def text_of(event: dict[str, Any]) -> str:
    text: str = event["response"]["output"][0]["content"][0]["text"]
    return text


def test_a_stalled_lane_does_not_hold_up_another(gw: RunningGateway, fake: FakeProviders) -> None:
    fake.script([{"fault": "stall-2", "times": 1}], model="gpt-4o-mini")
    with socket(gw) as ws:
        create(ws, model="chat-model", input="slow", stream_id="a")
        create(ws, model="llama", input="quick", stream_id="b")
        seen: dict[str, list[dict[str, Any]]] = {"a": [], "b": []}
        while not seen["b"] or seen["b"][-1]["type"] not in TERMINAL:
            event = receive(ws)
            seen[event.pop("stream_id")].append(event)
        # Lane b answered in full while lane a's upstream said nothing more.
        assert text_of(seen["b"][-1]) == "You said: quick"
        assert all(event["type"] not in TERMINAL for event in seen["a"])
        for event in seen["b"]:
            validate_event(event)
        # Lane a's upstream stays silent: the idle timer ends its turn, in band.
        gw.clock.fire_until(STREAM_IDLE, lambda: _failed(ws, seen["a"]), timeout=10)
    assert seen["a"][-1]["type"] == "response.failed"
    for path in (CHAT_PATH, VLLM_CHAT_PATH):
        [sent] = fake.requests(path=path)
        assert "stream_id" not in sent.body and "generate" not in sent.body  # type: ignore[operator]


def _failed(ws: ClientConnection, lane_a: list[dict[str, Any]]) -> bool:
    """Read what arrived for lane a, if anything; True once its turn has failed."""
    try:
        event = json.loads(ws.recv(timeout=0.05))
    except TimeoutError:
        return False
    assert event.pop("stream_id") == "a"
    lane_a.append(event)
    return bool(event["type"] == "response.failed")


def test_one_lanes_turns_run_in_order(gw: RunningGateway) -> None:
    with socket(gw) as ws:
        for text in ("one", "two", "three"):
            create(ws, model="chat-model", input=text, stream_id="x", store=False)
        kinds, texts = [], []
        while len(texts) < 3:
            event = receive(ws)
            assert event["stream_id"] == "x"
            if event["type"] in ("response.created", "response.completed"):
                kinds.append(event["type"])
            if event["type"] == "response.completed":
                texts.append(text_of(event))
    assert kinds == ["response.created", "response.completed"] * 3
    assert texts == ["You said: one", "You said: two", "You said: three"]


def test_unstored_chains_continue_on_every_lane(gw: RunningGateway, fake: FakeProviders) -> None:
    with socket(gw) as ws:
        firsts = {}
        for lane, word in (("a", "alpha"), ("b", "bravo")):
            create(ws, model="chat-model", input=f"Remember {word}.", store=False, stream_id=lane)
            firsts[lane] = until_end(ws)[-1]["response"]["id"]
        for lane, word in (("a", "alpha"), ("b", "bravo")):
            create(
                ws,
                model="chat-model",
                input="Which word?",
                store=False,
                stream_id=lane,
                previous_response_id=firsts[lane],
            )
            final = until_end(ws)[-1]
            assert final["type"] == "response.completed" and final["stream_id"] == lane
            assert word in json.dumps(fake.requests(path=CHAT_PATH)[-1].body)


@pytest.mark.parametrize("store", [True, False], ids=["stored", "unstored"])
def test_generate_false_prepares_a_response_without_the_upstream(
    gw: RunningGateway, fake: FakeProviders, store: bool
) -> None:
    with socket(gw) as ws:
        create(ws, model="chat-model", input="Context: the code is 7041.", store=store, generate=False)
        events = until_end(ws)
        assert [event["type"] for event in events] == [
            "response.created",
            "response.in_progress",
            "response.completed",
        ]
        for event in events:
            validate_event(event)
        prepared = events[-1]["response"]
        assert prepared["status"] == "completed" and prepared["output"] == []
        assert prepared["usage"]["input_tokens"] == prepared["usage"]["output_tokens"] == 0
        assert fake.requests(path=CHAT_PATH) == []
        create(ws, model="chat-model", input="The code?", store=store, previous_response_id=prepared["id"])
        answered = until_end(ws)[-1]
    assert answered["type"] == "response.completed", answered
    assert answered["response"]["previous_response_id"] == prepared["id"]
    [sent] = fake.requests(path=CHAT_PATH)
    assert [m["content"] for m in sent.body["messages"]] == ["Context: the code is 7041.", "The code?"]  # type: ignore[index]
    if store:
        with gw.http() as http:
            got = http.get(f"{gw.base_url}/responses/{prepared['id']}")
        assert got.status_code == 200 and got.json()["output"] == []
