"""The context-window check sees a chain's whole history, not only the new input: a follow-up
whose history no longer fits a deployment goes to a fallback that fits, or is refused."""

from __future__ import annotations

from typing import Any

import pytest
import redis

from fake_providers.testing import FakeProviders
from tests.conftest import GatewayFactory, RunningGateway
from tests.integration.responses.support import CHAT_PATH, VLLM_CHAT_PATH, post, responses_config, stored

LONG = "word " * 40  # about 50 tokens on its own, about 100 once echoed back


def config(fake: FakeProviders, redis_url: str, *, fallback: bool) -> dict[str, Any]:
    config = responses_config(fake, redis_url)
    config["models"] = [
        {
            "name": "small",
            "provider": "fake-openai",
            "upstream_model": "gpt-4o-mini",
            "api": "chat",
            "context_window": 80,
            "fallbacks": ["large"] if fallback else [],
        },
        {"name": "large", "provider": "fake-vllm", "upstream_model": "big-model", "context_window": 100000},
    ]
    return config


def test_a_long_history_moves_to_a_larger_fallback(
    gateway_factory: GatewayFactory, fake: FakeProviders, redis_url: str, redis_sync: redis.Redis
) -> None:
    gw: RunningGateway = gateway_factory(config(fake, redis_url, fallback=True))
    first = post(gw, {"model": "small", "input": LONG})
    assert first.status_code == 200, first.text
    usage = first.json()["usage"]
    carried = stored(redis_sync, gw, first.json()["id"])["meta"]["context_tokens"]
    assert carried == usage["input_tokens"] + usage["output_tokens"] > 80 * 1.1

    second = post(gw, {"model": "small", "input": "ok?", "previous_response_id": first.json()["id"]})
    assert second.status_code == 200
    assert second.headers["x-gateway-provider"] == "fake-vllm"
    assert len(fake.requests(path=CHAT_PATH)) == 1  # the small deployment was not even tried
    [sent] = [entry.body for entry in fake.requests(path=VLLM_CHAT_PATH)]
    assert len(sent["messages"]) == 3


def test_a_history_that_fits_nowhere_is_refused(
    gateway_factory: GatewayFactory, fake: FakeProviders, redis_url: str
) -> None:
    gw = gateway_factory(config(fake, redis_url, fallback=False))
    first = post(gw, {"model": "small", "input": LONG}).json()
    answer = post(gw, {"model": "small", "input": "ok?", "previous_response_id": first["id"]})
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert (error["type"], error["param"], error["code"]) == (
        "invalid_request_error",
        "input",
        "context_length_exceeded",
    )
    assert len(fake.requests(path=CHAT_PATH)) == 1


@pytest.mark.parametrize("instructions", [None, "Be brief."])
def test_instructions_are_not_carried(
    gateway_factory: GatewayFactory,
    fake: FakeProviders,
    redis_url: str,
    redis_sync: redis.Redis,
    instructions: str | None,
) -> None:
    gw = gateway_factory(config(fake, redis_url, fallback=True))
    body: dict[str, Any] = {"model": "large", "input": "Hi"}
    if instructions:
        body["instructions"] = instructions
    answer = post(gw, body).json()
    usage = answer["usage"]
    expected = usage["input_tokens"] + usage["output_tokens"] - (3 if instructions else 0)  # "Be brief." = 3
    assert stored(redis_sync, gw, answer["id"])["meta"]["context_tokens"] == expected
