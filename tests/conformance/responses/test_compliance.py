"""Every scenario of the Open Responses compliance suite, against the gateway on a Chat
Completions upstream, a native Responses upstream and Claude (Anthropic Messages), every object
and event validated against the Open Responses schema (tests/fixtures/openresponses.py).

HTTP: basic, streaming, system prompt, tool calling (JSON and streamed, with a scripted call),
image input, multi-turn, compaction (and compaction without a model). WebSocket mode: one
response, sequential responses, continuation of a ``store: false`` chain, a reconnect that cannot
continue it then a recovery, an unknown ``previous_response_id``, a failed continuation that
evicts the cached response, and a compacted conversation continued as a new chain.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from websockets.sync.client import ClientConnection, connect

from fake_providers.testing import FakeProviders
from gateway.testing import GATEWAY_KEY, add_anthropic
from tests.conftest import GatewayFactory, RunningGateway
from tests.fixtures.openresponses import validate, validate_event, validate_response
from tests.integration.responses.support import responses_config
from tests.integration.responses.support import sse_events as sse_frames

MODELS = ["chat-model", "resp-model", "claude"]
WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "Get the current weather for a location",
    "parameters": {
        "type": "object",
        "properties": {"location": {"type": "string", "description": "The city and state"}},
        "required": ["location"],
    },
}
# A red heart on white, 32x32 (the suite's own image).
HEART = (
    "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAACAAAAAgCAIAAAD8GO2jAAABmklEQVR42tyWAaTyUBzFew/eG4AHz+MB"
    "SAHKBiJRGFKwIgQQJKLUIioBIhCAiCAAEizAQIAECaASqFFJq84nudjnaqvuPnxzgP9xfrq5938csPn7PwHTKSoViCIEAYEAMhmo"
    "KsU2mUCWEQqB5xEMIp/HaGQG2G6RSuH9HQ7H34rFrtPbdz4jl6PbwmEsl3QA1mt4vcRKk8dz9eg6IpF7tt9fzGY0gCgafFRFo5Bl"
    "c5vLhf3eCOj1yNhM5GRMVK0aATxPZoz09YXjkQDmczJgquGQAPp9WwCNBgG027YACgUC6HRsAZRKBDAY2AJoNv/ZnwzA6WScznG3"
    "p4UAymXGAEkyXrTFAh8fLAGqagQAyGaZpYsi7bHTNPz8MEj//LxuFPo+UBS8vb0KaLXubrRa7aX0RMLCykwmn0z3+XA4WACcTpCk"
    "h9MFAZpmuVXo+mO/w+/HZvNgbblcUCxaSo/Hyck80Yu6XXDcvfVZr79cvMZjuN2U9O9vKAqjZrfbIZ0mV4TUi9Xqz6jddNy//7+e"
    "3n8Fhf/Llo2kxi8AQyGRoDkmAhAAAAAASUVORK5CYII="
)
TERMINAL = ("response.completed", "response.incomplete", "response.failed", "error")


@pytest.fixture(params=MODELS)
def model(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def gw(gateway_factory: GatewayFactory, fake: FakeProviders, redis_url: str) -> RunningGateway:
    config = responses_config(fake, redis_url)
    add_anthropic(config, fake, upstream_model="claude-sonnet-4-5")
    return gateway_factory(config)


def sse_events(text: str) -> list[dict[str, Any]]:
    return [data for _, data in sse_frames(text)]


def post(gw: RunningGateway, path: str, body: dict[str, Any]) -> httpx.Response:
    with gw.http() as http:
        return http.post(gw.base_url + path, json=body)


def completed(response: dict[str, Any]) -> None:
    validate_response(response)
    assert response["status"] == "completed", response
    assert response["output"], response


def streamed(gw: RunningGateway, body: dict[str, Any]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    answer = post(gw, "/responses", {**body, "stream": True})
    assert answer.status_code == 200, answer.text
    events = sse_events(answer.text)
    for event in events:
        validate_event(event)
    final = events[-1]
    assert final["type"] == "response.completed", final
    validate_response(final["response"])
    return events, final["response"]


# -- HTTP -------------------------------------------------------------------------------------


def test_basic_response(gw: RunningGateway, model: str) -> None:
    body = {
        "model": model,
        "input": [{"type": "message", "role": "user", "content": "Say hello in exactly 3 words."}],
    }
    answer = post(gw, "/responses", body)
    assert answer.status_code == 200, answer.text
    completed(answer.json())


def test_streaming_response(gw: RunningGateway, model: str) -> None:
    body = {"model": model, "input": [{"type": "message", "role": "user", "content": "Count from 1 to 5."}]}
    events, final = streamed(gw, body)
    assert [e["type"] for e in events][:2] == ["response.created", "response.in_progress"]
    assert final["status"] == "completed"


def test_system_prompt(gw: RunningGateway, model: str) -> None:
    body = {
        "model": model,
        "input": [
            {
                "type": "message",
                "role": "system",
                "content": "You are a pirate. Always respond in pirate speak.",
            },
            {"type": "message", "role": "user", "content": "Say hello."},
        ],
    }
    answer = post(gw, "/responses", body)
    assert answer.status_code == 200, answer.text
    completed(answer.json())


def _script_call(fake: FakeProviders) -> None:
    call = {"name": "get_weather", "arguments": {"location": "San Francisco, CA"}, "id": "call_sf1"}
    fake.script([{"reply": {"tool_calls": [call]}}])


def test_tool_calling(gw: RunningGateway, fake: FakeProviders, model: str) -> None:
    _script_call(fake)
    question = "What's the weather like in San Francisco?"
    body = {
        "model": model,
        "input": [{"type": "message", "role": "user", "content": question}],
        "tools": [WEATHER],
    }
    answer = post(gw, "/responses", body)
    assert answer.status_code == 200, answer.text
    response = answer.json()
    validate_response(response)
    [call] = [item for item in response["output"] if item["type"] == "function_call"]
    assert (call["name"], json.loads(call["arguments"])) == ("get_weather", {"location": "San Francisco, CA"})


def test_tool_calling_streaming(gw: RunningGateway, fake: FakeProviders, model: str) -> None:
    _script_call(fake)
    question = "What's the weather like in San Francisco?"
    body = {
        "model": model,
        "input": [{"type": "message", "role": "user", "content": question}],
        "tools": [WEATHER],
    }
    answer = post(gw, "/responses", {**body, "stream": True})
    assert answer.status_code == 200, answer.text
    events = sse_events(answer.text)
    for event in events:
        validate_event(event)
    kinds = [e["type"] for e in events]
    assert "response.function_call_arguments.delta" in kinds
    assert "response.function_call_arguments.done" in kinds
    added = [e for e in events if e["type"] == "response.output_item.added"]
    done = [e for e in events if e["type"] == "response.output_item.done"]
    assert any(e["item"]["type"] == "function_call" for e in added)
    assert any(e["item"]["type"] == "function_call" for e in done)
    validate_response(events[-1]["response"])


def test_image_input(gw: RunningGateway, model: str) -> None:
    content = [
        {"type": "input_text", "text": "What do you see in this image? Answer in one sentence."},
        {"type": "input_image", "image_url": HEART},
    ]
    answer = post(
        gw, "/responses", {"model": model, "input": [{"type": "message", "role": "user", "content": content}]}
    )
    assert answer.status_code == 200, answer.text
    completed(answer.json())


def test_multi_turn(gw: RunningGateway, model: str) -> None:
    body = {
        "model": model,
        "input": [
            {"type": "message", "role": "user", "content": "My name is Alice."},
            {"type": "message", "role": "assistant", "content": "Hello Alice! How can I help you today?"},
            {"type": "message", "role": "user", "content": "What is my name?"},
        ],
    }
    answer = post(gw, "/responses", body)
    assert answer.status_code == 200, answer.text
    completed(answer.json())


def test_compaction(gw: RunningGateway, model: str) -> None:
    body = {
        "model": model,
        "prompt_cache_key": "openresponses-compact-test",
        "input": [
            {
                "type": "message",
                "role": "user",
                "content": "We agreed to launch on Tuesday and notify support first.",
            },
            {"type": "message", "role": "assistant", "content": "Understood. The launch is Tuesday."},
        ],
    }
    answer = post(gw, "/responses/compact", body)
    assert answer.status_code == 200, answer.text
    compacted = answer.json()
    validate("CompactResource", compacted)
    assert compacted["object"] == "response.compaction"
    assert compacted["output"][-1]["type"] == "compaction"
    # The compacted output continues the conversation on a new chain, over HTTP too.
    follow = {
        "model": model,
        "input": [*compacted["output"], {"role": "user", "content": "When do we launch?"}],
    }
    again = post(gw, "/responses", follow)
    assert again.status_code == 200, again.text
    completed(again.json())


def test_compaction_without_a_model_is_refused(gw: RunningGateway) -> None:
    answer = post(
        gw, "/responses/compact", {"input": [{"type": "message", "role": "user", "content": "Compact."}]}
    )
    assert answer.status_code == 400
    assert answer.json()["error"]["param"] == "model"


# -- WebSocket mode ---------------------------------------------------------------------------


@pytest.fixture
def socket(gw: RunningGateway) -> Any:
    def open_socket() -> ClientConnection:
        url = gw.base_url.replace("http://", "ws://") + "/responses"
        return connect(url, additional_headers={"Authorization": f"Bearer {GATEWAY_KEY}"}, open_timeout=10)

    return open_socket


def turn(ws: ClientConnection, body: dict[str, Any]) -> list[dict[str, Any]]:
    """Send one ``response.create``; every message up to its terminal one, each validated."""
    ws.send(json.dumps({"type": "response.create", **body}))
    events: list[dict[str, Any]] = []
    while True:
        event = json.loads(ws.recv(timeout=20))
        events.append(event)
        if event["type"] == "error" and "status" in event:
            validate("WebSocketErrorEvent", event)
            return events
        validate_event(event)
        if event["type"] in TERMINAL:
            return events


def final_of(events: list[dict[str, Any]]) -> dict[str, Any]:
    assert events[-1]["type"] == "response.completed", events[-1]
    response: dict[str, Any] = events[-1]["response"]
    completed(response)
    return response


def error_code(events: list[dict[str, Any]]) -> str | None:
    last = events[-1]
    if last["type"] == "error":
        return str(last["error"]["code"])
    if last["type"] == "response.failed":
        return str(last["response"]["error"]["code"])
    return None


def test_websocket_response(socket: Any, model: str) -> None:
    with socket() as ws:
        events = turn(
            ws,
            {"model": model, "input": [{"type": "message", "role": "user", "content": "Count from 1 to 3."}]},
        )
    assert events[0]["type"] == "response.created"
    final_of(events)


def test_websocket_sequential_responses(socket: Any, model: str) -> None:
    with socket() as ws:
        first = final_of(turn(ws, {"model": model, "store": False, "input": "Reply with exactly: first"}))
        second = final_of(turn(ws, {"model": model, "store": False, "input": "Reply with exactly: second"}))
    assert first["id"] != second["id"]
    assert second["previous_response_id"] is None


def test_websocket_continuation(socket: Any, fake: FakeProviders, model: str) -> None:
    with socket() as ws:
        first = final_of(
            turn(ws, {"model": model, "store": False, "input": "Remember the code word: cobalt."})
        )
        second = final_of(
            turn(
                ws,
                {
                    "model": model,
                    "store": False,
                    "previous_response_id": first["id"],
                    "input": "The code word?",
                },
            )
        )
    assert second["previous_response_id"] == first["id"]
    # The upstream got the whole conversation: the chain continued from the connection's memory.
    # (The model catalog's GETs, read in the background, may come after it: bodies only.)
    last = [entry for entry in fake.requests() if entry.body is not None][-1].body
    assert "The code word?" in json.dumps(last) and "cobalt" in json.dumps(last)


def test_websocket_reconnect_cannot_continue_an_unstored_chain(socket: Any, model: str) -> None:
    with socket() as ws:
        first = final_of(
            turn(ws, {"model": model, "store": False, "input": "Remember the code word: copper."})
        )
    with socket() as ws:
        missed = turn(
            ws, {"model": model, "store": False, "previous_response_id": first["id"], "input": "Again?"}
        )
        assert error_code(missed) == "previous_response_not_found"
        assert missed[-1]["status"] == 400
        recovered = turn(ws, {"model": model, "store": False, "input": "Start again: reply with recovered"})
    final_of(recovered)


def test_websocket_unknown_previous_response(socket: Any, model: str) -> None:
    with socket() as ws:
        events = turn(
            ws,
            {
                "model": model,
                "store": False,
                "previous_response_id": "resp_missing_1",
                "input": "Should fail.",
            },
        )
    assert error_code(events) == "previous_response_not_found"
    assert events[-1]["error"]["param"] == "previous_response_id"


def test_websocket_failed_continuation_evicts_the_cache(socket: Any, model: str) -> None:
    with socket() as ws:
        first = final_of(
            turn(ws, {"model": model, "store": False, "input": "Remember the code word: ember."})
        )
        stray = {"type": "function_call_output", "call_id": "call_missing", "output": "No such call."}
        failed = turn(
            ws, {"model": model, "store": False, "previous_response_id": first["id"], "input": [stray]}
        )
        assert error_code(failed) is not None
        retry = turn(
            ws, {"model": model, "store": False, "previous_response_id": first["id"], "input": "Stale?"}
        )
    assert error_code(retry) == "previous_response_not_found"


def test_websocket_compacted_conversation_starts_a_new_chain(
    gw: RunningGateway, socket: Any, model: str
) -> None:
    conversation = [
        {
            "type": "message",
            "role": "user",
            "content": [{"type": "input_text", "text": "The code word is slate."}],
        },
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "OK."}]},
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Compress this."}]},
    ]
    compacted = post(gw, "/responses/compact", {"model": model, "input": conversation})
    assert compacted.status_code == 200, compacted.text
    validate("CompactResource", compacted.json())
    output = compacted.json()["output"]
    with socket() as ws:
        events = turn(
            ws,
            {
                "model": model,
                "store": False,
                "tools": [],
                "input": [
                    *output,
                    {"type": "message", "role": "user", "content": "Continue: reply compacted"},
                ],
            },
        )
    final_of(events)
