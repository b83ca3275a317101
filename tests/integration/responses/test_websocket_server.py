"""WebSocket mode on the gateway's own server (``gateway serve``'s uvicorn config: the WebSocket
protocol with the direct path for the events, writes combined per turn of the loop), with
permessage-deflate off (the default) and on: the official SDK's ``responses.connect()`` turns and
their continuation, what the handshake negotiates, a refused handshake, and a client that goes
away mid-turn. The other WebSocket tests run on a plain uvicorn (the ASGI path)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from fake_providers.testing import FakeProviders
from gateway.app import create_app
from gateway.clock import ManualClock
from gateway.server.http import GatewayServer, HttpLimits
from gateway.server.listen import bind
from gateway.server.worker import worker_config
from gateway.testing import GATEWAY_KEY, RunningGateway, poll_until, settings_of
from tests.fixtures.openresponses import validate_event
from tests.integration.responses.support import responses_config


@pytest.fixture(params=[False, True], ids=["plain", "deflate"])
def gw(
    request: pytest.FixtureRequest, fake: FakeProviders, redis_url: str
) -> Iterator[RunningGateway[ManualClock]]:
    """The gateway served in a thread by the worker's uvicorn config."""
    config = responses_config(fake, redis_url)
    config["server"] = {**config.get("server", {}), "websocket_compression": request.param}
    settings = settings_of(config)
    app = create_app(settings, clock=ManualClock())
    sock = bind("127.0.0.1", 0)
    limits = HttpLimits.from_settings(settings.server)
    server = GatewayServer(worker_config(app, settings, limits, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    poll_until(lambda: server.started or not thread.is_alive(), what="the gateway's start")
    assert server.started
    root = f"http://127.0.0.1:{sock.getsockname()[1]}"
    try:
        yield RunningGateway(
            base_url=root + "/v1", root_url=root, clock=ManualClock(), settings=settings, app=app
        )
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()


def url(gw: RunningGateway[Any]) -> str:
    return gw.base_url.replace("http://", "ws://") + "/responses"


def in_flight(gw: RunningGateway[Any]) -> float | None:
    return gw.services.metrics.registry.get_sample_value("gw_inflight_requests", {"route": "/v1/responses"})


def test_the_official_sdk_runs_and_continues_turns(gw: RunningGateway[Any]) -> None:
    client = gw.openai()
    with client.responses.connect() as connection:
        connection.send({"type": "response.create", "model": "chat-model", "store": False, "input": "Hello"})
        types: list[str] = []
        first = None
        for event in connection:
            validate_event(event.model_dump(exclude_unset=True))
            types.append(event.type)
            if event.type == "response.completed":
                first = event.response
                break
        assert first is not None and first.output_text == "You said: Hello"
        assert types[0] == "response.created" and "response.output_text.delta" in types
        connection.send(
            {
                "type": "response.create",
                "model": "resp-model",
                "store": False,
                "input": "Again",
                "previous_response_id": first.id,
            }
        )
        for event in connection:
            if event.type == "response.completed":
                assert event.response.previous_response_id == first.id
                assert event.response.output_text
                break


def test_permessage_deflate_is_negotiated_only_when_configured(gw: RunningGateway[Any]) -> None:
    headers = {"Authorization": f"Bearer {GATEWAY_KEY}"}
    with connect(url(gw), additional_headers=headers, compression="deflate") as ws:
        negotiated = bool(ws.protocol.extensions)
        ws.send(
            json.dumps({"type": "response.create", "model": "chat-model", "store": False, "input": "x" * 50})
        )
        while (event := json.loads(ws.recv(timeout=20)))["type"] != "response.completed":
            assert event["type"] not in ("error", "response.failed")
    assert negotiated is gw.settings.server.websocket_compression
    assert event["response"]["output"][0]["content"][0]["text"] == "You said: " + "x" * 50


def test_a_handshake_without_a_valid_key_is_refused(gw: RunningGateway[Any]) -> None:
    with pytest.raises(InvalidStatus) as refused:
        connect(url(gw), additional_headers={"Authorization": "Bearer sk-wrong-key-0000"}, open_timeout=10)
    assert refused.value.response.status_code == 401
    assert json.loads(refused.value.response.body)["error"]["type"] == "invalid_request_error"


def test_a_client_that_goes_away_cancels_its_turn(gw: RunningGateway[Any], fake: FakeProviders) -> None:
    fake.script([{"fault": "stall-2", "times": 1}])
    with connect(url(gw), additional_headers={"Authorization": f"Bearer {GATEWAY_KEY}"}) as ws:
        ws.send(json.dumps({"type": "response.create", "model": "chat-model", "input": "long"}))
        assert json.loads(ws.recv(timeout=10))["type"] == "response.created"
        assert in_flight(gw) == 1
    poll_until(lambda: in_flight(gw) == 0, what="the turn's end")
