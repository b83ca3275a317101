"""WebSocket mode beyond the compliance scenarios: the official SDK's connection, the key as a
header or as the browser subprotocol, refused handshakes, messages that are not
``response.create``, stored chains continued over a socket, and a client that goes away mid-turn."""

from __future__ import annotations

import json
from typing import Any

import pytest
from openai.types.responses import ResponseSteerFailedEvent
from websockets.exceptions import InvalidStatus
from websockets.sync.client import ClientConnection, connect

from fake_providers.testing import FakeProviders
from gateway.testing import GATEWAY_KEY, poll_until
from tests.conftest import GatewayFactory, RunningGateway
from tests.fixtures.openresponses import validate, validate_event
from tests.integration.responses.support import responses_config


@pytest.fixture
def gw(gateway_factory: GatewayFactory, fake: FakeProviders, redis_url: str) -> RunningGateway:
    return gateway_factory(responses_config(fake, redis_url))


def url(gw: RunningGateway) -> str:
    return gw.base_url.replace("http://", "ws://") + "/responses"


def until_end(ws: ClientConnection) -> list[dict[str, Any]]:
    events = []
    while True:
        event = json.loads(ws.recv(timeout=20))
        events.append(event)
        if event["type"] in ("response.completed", "response.failed", "error"):
            return events


def test_the_official_sdk_runs_turns_over_one_socket(gw: RunningGateway) -> None:
    client = gw.openai()
    with client.responses.connect() as connection:
        connection.send({"type": "response.create", "model": "chat-model", "input": "Hello"})
        first = None
        for event in connection:
            validate_event(event.model_dump(exclude_unset=True))
            if event.type == "response.completed":
                first = event.response
                break
        assert first is not None and first.output_text == "You said: Hello"
        connection.send(
            {
                "type": "response.create",
                "model": "chat-model",
                "input": "Again",
                "previous_response_id": first.id,
            }
        )
        for event in connection:
            if event.type == "response.completed":
                assert event.response.previous_response_id == first.id
                break
    # Stored turns are stored: the chain is there over HTTP too.
    assert client.responses.retrieve(first.id).output_text == "You said: Hello"


def test_the_key_as_the_browser_subprotocol(gw: RunningGateway) -> None:
    protocols: Any = ["realtime", f"openai-insecure-api-key.{GATEWAY_KEY}"]
    with connect(url(gw), subprotocols=protocols) as ws:
        assert ws.subprotocol == "realtime"  # never the one that carries the key
        ws.send(json.dumps({"type": "response.create", "model": "chat-model", "input": "Hi"}))
        assert until_end(ws)[-1]["type"] == "response.completed"


@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": "Bearer sk-wrong-key-0000"}], ids=["none", "wrong"]
)
def test_a_handshake_without_a_valid_key_is_refused(gw: RunningGateway, headers: dict[str, str]) -> None:
    with pytest.raises(InvalidStatus) as refused:
        connect(url(gw), additional_headers=headers, open_timeout=10)
    assert refused.value.response.status_code == 401
    assert json.loads(refused.value.response.body)["error"]["type"] == "invalid_request_error"


@pytest.mark.parametrize("path", ["/v1/realtime", "/v1/chat/completions", "/nowhere"])
def test_a_handshake_on_a_path_without_sockets_is_openais_404(gw: RunningGateway, path: str) -> None:
    with pytest.raises(InvalidStatus) as refused:
        connect(
            gw.root_url.replace("http://", "ws://") + path,
            additional_headers={"Authorization": f"Bearer {GATEWAY_KEY}"},
            open_timeout=10,
        )
    answer = refused.value.response
    assert answer.status_code == 404 and answer.headers["content-type"] == "application/json"
    error = json.loads(answer.body)["error"]
    assert error["message"] == f"Invalid URL (GET {path})" and error["type"] == "invalid_request_error"


def test_other_messages_are_error_events_and_the_socket_stays(gw: RunningGateway) -> None:
    with connect(url(gw), additional_headers={"Authorization": f"Bearer {GATEWAY_KEY}"}) as ws:
        ws.send("not json")
        bad = json.loads(ws.recv(timeout=10))
        validate("WebSocketErrorEvent", bad)
        assert (bad["status"], bad["error"]["code"]) == (400, "invalid_json")
        ws.send(json.dumps({"type": "response.cancel"}))
        other = json.loads(ws.recv(timeout=10))
        assert other["error"]["code"] == "unsupported_event_type"
        ws.send(
            json.dumps({"type": "response.create", "model": "chat-model", "input": "x", "background": True})
        )
        assert json.loads(ws.recv(timeout=10))["error"]["param"] == "background"
        ws.send(json.dumps({"type": "response.create", "model": "no-such-model", "input": "x"}))
        unknown = json.loads(ws.recv(timeout=10))
        validate("WebSocketErrorEvent", unknown)
        assert unknown["status"] == 404
        ws.send(json.dumps({"type": "response.create", "model": "chat-model", "input": "still here"}))
        assert until_end(ws)[-1]["response"]["output"][0]["content"][0]["text"] == "You said: still here"


def test_messages_sent_during_a_turn_wait_for_it(gw: RunningGateway) -> None:
    with connect(url(gw), additional_headers={"Authorization": f"Bearer {GATEWAY_KEY}"}) as ws:
        for text in ("one", "two", "three"):
            ws.send(
                json.dumps({"type": "response.create", "model": "chat-model", "store": False, "input": text})
            )
        texts = [until_end(ws)[-1]["response"]["output"][0]["content"][0]["text"] for _ in range(3)]
    assert texts == ["You said: one", "You said: two", "You said: three"]


def test_a_client_that_goes_away_cancels_its_turn(gw: RunningGateway, fake: FakeProviders) -> None:
    fake.script([{"fault": "stall-2", "times": 1}])
    with connect(url(gw), additional_headers={"Authorization": f"Bearer {GATEWAY_KEY}"}) as ws:
        ws.send(json.dumps({"type": "response.create", "model": "chat-model", "input": "long"}))
        assert json.loads(ws.recv(timeout=10))["type"] == "response.created"
        assert (
            gw.services.metrics.registry.get_sample_value("gw_inflight_requests", {"route": "/v1/responses"})
            == 1
        )
    # The upstream call is dropped: nothing in flight stays behind on the gateway.
    poll_until(
        lambda: (
            gw.services.metrics.registry.get_sample_value("gw_inflight_requests", {"route": "/v1/responses"})
            == 0
        ),
        what="the turn's end",
    )


def test_a_steer_during_a_turn_is_refused_at_once_with_its_input_returned(
    gw: RunningGateway, fake: FakeProviders
) -> None:
    fake.script([{"fault": "stall-2", "times": 1}])
    steer_input = [
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "shorter, please"}]}
    ]
    with connect(url(gw), additional_headers={"Authorization": f"Bearer {GATEWAY_KEY}"}) as ws:
        ws.send(json.dumps({"type": "response.create", "model": "chat-model", "input": "long"}))
        created = json.loads(ws.recv(timeout=10))
        assert created["type"] == "response.created"
        target = created["response"]["id"]
        ws.send(json.dumps({"type": "response.steer", "previous_response_id": target, "input": steer_input}))
        # The turn is stalled upstream: the answer comes from the reader, not after the turn.
        event = json.loads(ws.recv(timeout=10))
        while event["type"] != "response.steer.failed":
            assert event["type"].startswith("response."), event
            event = json.loads(ws.recv(timeout=10))
    failed = ResponseSteerFailedEvent.model_validate(event)
    assert failed.error.code == "steering_not_supported" and failed.error.type == "invalid_request_error"
    assert event["steer"] == {"previous_response_id": target, "input": steer_input}


def test_a_steer_without_input_is_invalid_and_the_socket_stays(gw: RunningGateway) -> None:
    with connect(url(gw), additional_headers={"Authorization": f"Bearer {GATEWAY_KEY}"}) as ws:
        ws.send(json.dumps({"type": "response.steer", "previous_response_id": "resp_x", "input": []}))
        refused = json.loads(ws.recv(timeout=10))
        assert refused["type"] == "response.steer.failed"
        assert refused["error"]["code"] == "invalid_input"
        ws.send(json.dumps({"type": "response.create", "model": "chat-model", "input": "still here"}))
        assert until_end(ws)[-1]["response"]["output"][0]["content"][0]["text"] == "You said: still here"
