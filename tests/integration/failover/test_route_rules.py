"""The failover rules on the Anthropic Messages and Responses routes (they share the request
cycle with Chat Completions): one malformed event mid-stream is skipped, a silent deployment is
left after one startup timeout, and a stall after 20 words is continued, each on real sockets
with the waits on the manual clock."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from fake_providers.testing import FakeProviders
from gateway.clock import ManualTimer
from gateway.testing import add_anthropic
from tests.conftest import GATEWAY_KEY, GatewayFactory, RunningGateway, poll_until
from tests.integration.failover.support import TEXT, VLLM_CHAT, WORDS, config, metric, sent, words

ALL = words(1, 60)
NATIVE = "fb-native"
CLAUDE = "claude-haiku-4-5"
UPSTREAM = {"responses": NATIVE, "messages": CLAUDE}
PATHS = {"responses": "/openai/v1/responses", "messages": "/anthropic/v1/messages"}
PROVIDERS = {"responses": "fake-openai", "messages": "fake-anthropic"}
ROUTES = ["responses", "messages"]


def route_config(fake: FakeProviders, redis_url: str) -> dict[str, Any]:
    """``native`` (a Responses upstream) and ``claude`` fall back to ``fallback`` (vLLM-style,
    continues a prefilled answer). Startup guard and idle timeout 10 s (11 s on the fallback)."""
    cfg = config(fake, redis_url)
    cfg["models"].append(
        {
            "name": "native",
            "provider": "fake-openai",
            "upstream_model": NATIVE,
            "api": "responses",
            "fallbacks": ["fallback"],
        }
    )
    add_anthropic(
        cfg, fake, model_fields={"fallbacks": ["fallback"]}, timeouts={"startup": 10.0, "idle": 10.0}
    )
    return cfg


def ask(gw: RunningGateway, route: str) -> str:
    """The streamed answer's text, checked to be one whole answer in the route's dialect."""
    if route == "responses":
        url, body = "/v1/responses", {"model": "native", "input": "Say the sixty words.", "stream": True}
    else:
        url = "/v1/messages"
        body = {
            "model": "claude",
            "max_tokens": 1024,
            "stream": True,
            "messages": [{"role": "user", "content": "Go."}],
        }
    response = httpx.post(gw.root_url + url, headers={"x-api-key": GATEWAY_KEY}, json=body, timeout=30)
    assert response.status_code == 200, response.text
    events = [
        json.loads(line[6:])
        for block in response.text.split("\n\n")
        for line in block.split("\n")
        if line.startswith("data: ")
    ]
    kinds = [e["type"] for e in events]
    assert "error" not in kinds
    if route == "responses":
        assert kinds[-1] == "response.completed"
        assert [e["sequence_number"] for e in events] == list(range(len(events)))
        assert events[-1]["response"]["output"][0]["content"][0]["text"] == TEXT
        return "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")
    assert kinds.count("message_start") == 1 and kinds[-1] == "message_stop"
    return "".join(e["delta"]["text"] for e in events if e["type"] == "content_block_delta")


@pytest.mark.parametrize("route", ROUTES)
def test_one_malformed_event_is_skipped(
    route: str, gateway_factory: GatewayFactory, fake: FakeProviders, redis_url: str
) -> None:
    gw = gateway_factory(route_config(fake, redis_url))
    fake.script([{"fault": "garbage-12", "reply": ALL}], model=UPSTREAM[route])
    assert ask(gw, route) == TEXT
    assert len(sent(fake, PATHS[route])) == 1
    assert sent(fake, VLLM_CHAT) == []
    assert metric(gw, "gw_stream_malformed_events_total", provider=PROVIDERS[route]) == 1.0


@pytest.mark.parametrize("route", ROUTES)
def test_a_silent_deployment_is_left_after_one_startup_timeout(
    route: str, gateway_factory: GatewayFactory, fake: FakeProviders, redis_url: str
) -> None:
    gw = gateway_factory(route_config(fake, redis_url))
    fake.script([{"fault": "silence", "times": None}], model=UPSTREAM[route])
    fake.script([{"reply": ALL}], model="fb-fallback")
    started = gw.clock.monotonic()
    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(ask, gw, route)
        poll_until(lambda: fake.status()["active_replies"] == 1)
        timer = gw.clock.fire("startup_guard")
        text = future.result(timeout=10)
    assert text == TEXT
    assert timer.deadline - timer.armed_at == 10.0
    assert gw.clock.monotonic() - started == 10.0  # the fallback answered at startup + 0 s
    assert len(sent(fake, PATHS[route])) == 1  # the silent deployment was not asked again
    assert len(sent(fake, VLLM_CHAT)) == 1


@pytest.mark.parametrize("route", ROUTES)
def test_a_stall_after_20_words_is_continued(
    route: str, gateway_factory: GatewayFactory, fake: FakeProviders, redis_url: str
) -> None:
    gw = gateway_factory(route_config(fake, redis_url))
    head = {"responses": 4, "messages": 3}[route]  # the events before the first word
    fake.script([{"fault": f"stall-{head + 20}", "reply": ALL}], model=UPSTREAM[route])
    fake.script([{"reply": words(21, 60)}], model="fb-fallback")
    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(ask, gw, route)
        poll_until(lambda: fake.status()["active_replies"] == 1)
        started = gw.clock.monotonic()

        def primary_idle() -> list[ManualTimer]:
            return [t for t in gw.clock.pending("stream_idle") if t.deadline - t.armed_at <= 10.0]

        while True:  # fire the broken stream's idle timer (10 s; the fallback's is 11 s)
            found = poll_until(lambda: "continued" if sent(fake, VLLM_CHAT) else primary_idle() or None)
            if found == "continued":
                break
            gw.clock.advance(max(0.0, found[0].deadline - gw.clock.monotonic()))
        text = future.result(timeout=10)
    assert text == TEXT
    assert gw.clock.monotonic() - started <= 20.0  # at most two idle windows on the clock
    [continuation] = sent(fake, VLLM_CHAT)
    assert continuation.body["messages"][-1] == {"role": "assistant", "content": " ".join(WORDS[:20])}
    assert len(sent(fake, PATHS[route])) == 1
