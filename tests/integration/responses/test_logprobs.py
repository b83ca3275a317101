"""Token log probabilities on the Responses API through the gateway: asked for with ``include:
["message.output_text.logprobs"]`` and ``top_logprobs``, translated to a Chat upstream's
``logprobs`` and back (whole and streamed), passed on from a Responses upstream, and validated
against the Open Responses schema."""

from __future__ import annotations

from typing import Any

import pytest

from fake_providers.testing import FakeProviders
from tests.conftest import GatewayFactory, RunningGateway
from tests.fixtures.openresponses import validate_event, validate_response
from tests.integration.responses.support import CHAT_PATH, RESPONSES_PATH, post, responses_config, sse_events

INCLUDE = ["message.output_text.logprobs"]


@pytest.fixture
def gw(gateway_factory: GatewayFactory, fake: FakeProviders, redis_url: str) -> RunningGateway:
    return gateway_factory(responses_config(fake, redis_url))


def _text_part(response: dict[str, Any]) -> dict[str, Any]:
    [message] = [item for item in response["output"] if item["type"] == "message"]
    part: dict[str, Any] = message["content"][0]
    return part


def _check(logprobs: list[dict[str, Any]], text: str, top: int) -> None:
    assert logprobs and "".join(entry["token"] for entry in logprobs) == text
    for entry in logprobs:
        assert entry["logprob"] <= 0 and bytes(entry["bytes"]).decode() == entry["token"]
        assert len(entry["top_logprobs"]) == top and entry["top_logprobs"][0]["token"] == entry["token"]


@pytest.mark.parametrize(("model", "path"), [("chat-model", CHAT_PATH), ("resp-model", RESPONSES_PATH)])
def test_logprobs_when_included(gw: RunningGateway, fake: FakeProviders, model: str, path: str) -> None:
    answer = post(gw, {"model": model, "input": "Hello there", "include": INCLUDE, "top_logprobs": 2})
    assert answer.status_code == 200, answer.text
    response = answer.json()
    validate_response(response)
    part = _text_part(response)
    _check(part["logprobs"], part["text"], 2)
    [sent] = fake.requests(path=path)
    if path == CHAT_PATH:
        assert (sent.body["logprobs"], sent.body["top_logprobs"]) == (True, 2)  # type: ignore[index]

    streamed = post(
        gw, {"model": model, "input": "Hello there", "include": INCLUDE, "top_logprobs": 2, "stream": True}
    )
    events = sse_events(streamed.text)
    for _, event in events:
        validate_event(event)
    deltas = [event for name, event in events if name == "response.output_text.delta"]
    assert all([entry["token"] for entry in event["logprobs"]] == [event["delta"]] for event in deltas)
    [done] = [event for name, event in events if name == "response.output_text.done"]
    final = events[-1][1]["response"]
    assert done["logprobs"] == [entry for event in deltas for entry in event["logprobs"]]
    assert _text_part(final)["logprobs"] == done["logprobs"] == part["logprobs"]


def test_no_logprobs_unless_included(gw: RunningGateway, fake: FakeProviders) -> None:
    answer = post(gw, {"model": "chat-model", "input": "Hello there", "top_logprobs": 2})
    assert _text_part(answer.json())["logprobs"] == []
    [sent] = fake.requests(path=CHAT_PATH)
    assert "logprobs" not in sent.body and "top_logprobs" not in sent.body  # type: ignore[operator]
