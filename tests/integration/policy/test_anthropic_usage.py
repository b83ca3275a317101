"""Streaming Chat Completions over an Anthropic upstream: usage comes from Anthropic's own
events (message_start, message_delta), whether or not the client asked for a usage chunk."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import redis

from gateway.testing import add_anthropic
from tests.conftest import GATEWAY_KEY, GatewayFactory
from tests.integration.policy.test_policy import chat, config, poll


def claude_config(fake: Any, redis_url: str) -> dict[str, Any]:
    return add_anthropic(config(fake, redis_url), fake)


def usage_chunks(text: str) -> list[dict[str, Any]]:
    datas = [line[6:] for line in text.splitlines() if line.startswith("data: ") and line != "data: [DONE]"]
    return [c["usage"] for c in map(json.loads, datas) if c.get("usage")]


def test_anthropic_stream_usage_is_reported_not_estimated(
    gateway_factory: GatewayFactory, fake: Any, redis_url: str, redis_sync: redis.Redis
) -> None:
    gw = gateway_factory(claude_config(fake, redis_url))
    asked = chat(gw, GATEWAY_KEY, model="claude", stream=True, stream_options={"include_usage": True})
    silent = chat(gw, GATEWAY_KEY, model="claude", stream=True)
    assert asked.status_code == silent.status_code == 200
    [shown] = usage_chunks(asked.text)
    assert usage_chunks(silent.text) == []
    assert shown["prompt_tokens"] > 0 and shown["completion_tokens"] > 0
    stream = f"{gw.settings.redis.key_prefix}usage"

    def events() -> list[dict[str, Any]]:
        return [msgspec.json.decode(f[b"e"]) for _, f in redis_sync.xrange(stream)]

    evs = poll(lambda: (e := events()) and len(e) == 2 and e)
    for event in evs:
        assert event["usage_source"] == "reported"
        assert (event["input_tokens"], event["output_tokens"]) == (
            shown["prompt_tokens"],
            shown["completion_tokens"],
        )
        assert (event["provider"], event["upstream_model"]) == ("fake-anthropic", "claude-haiku-4-5")
        assert event["cost_nusd"] > 0
