"""/v1/messages under the policy as every route: keys, limits, usage events with Anthropic's cache
tokens, spans; count_tokens spends no limit; pings on a long silence (on the injected clocks)."""

from __future__ import annotations

import threading
from typing import Any

import httpx
import msgspec
import pytest
import redis

from fake_providers.testing import FakeProviders, serve
from gateway.app import create_app
from gateway.clock import ManualClock
from gateway.config import settings_from_mapping
from gateway.messages.relay import PING_SECONDS, PING_TIMER
from gateway.testing import add_anthropic
from tests.conftest import GatewayFactory, RunningGateway, free_port
from tests.integration.policy.test_policy import admin, config, poll

ROUTE = "/v1/messages"


def post(gw: Any, key: str, path: str = ROUTE, **body: Any) -> httpx.Response:
    payload = {
        "model": "claude",
        "max_tokens": 64,
        "messages": [{"role": "user", "content": "hello"}],
        **body,
    }
    return httpx.post(gw.root_url + path, headers={"x-api-key": key}, json=payload, timeout=30)


def events_of(gw: RunningGateway, redis_sync: redis.Redis, kid: str, count: int) -> list[dict[str, Any]]:
    name = f"{gw.settings.redis.key_prefix}usage"

    def found() -> list[dict[str, Any]] | None:
        decoded = [msgspec.json.decode(f[b"e"]) for _, f in redis_sync.xrange(name)]
        mine = [e for e in decoded if e["kid"] == kid]
        return mine if len(mine) >= count else None

    events: list[dict[str, Any]] = poll(found)
    return events


@pytest.mark.parametrize("stream", [False, True])
def test_usage_events_carry_anthropics_cache_tokens(
    gateway_factory: GatewayFactory,
    fake: FakeProviders,
    redis_url: str,
    redis_sync: redis.Redis,
    stream: bool,
) -> None:
    gw = gateway_factory(add_anthropic(config(fake, redis_url), fake))
    created = admin(gw, "POST", "/keys", {}).json()
    usage = {
        "input_tokens": 12,
        "output_tokens": 5,
        "cache_read_input_tokens": 800,
        "cache_creation_input_tokens": 100,
    }
    fake.script([{"reply": {"text": "cached", "usage": usage}}])
    answer = post(gw, created["key"], stream=stream)
    assert answer.status_code == 200
    [event] = events_of(gw, redis_sync, created["id"], 1)
    assert event["endpoint"] == ROUTE and event["model"] == "claude" and event["status"] == 200
    assert event["upstream_model"] == "claude-haiku-4-5" and event.get("stream", False) is stream
    assert (event["input_tokens"], event["cache_read_tokens"], event["cache_write_tokens"]) == (912, 800, 100)
    assert event["output_tokens"] == 5 and event["usage_source"] == "reported"


def test_rate_limits_apply_and_count_tokens_spends_none(
    gateway_factory: GatewayFactory, fake: FakeProviders, redis_url: str
) -> None:
    gw = gateway_factory(add_anthropic(config(fake, redis_url), fake))
    created = admin(gw, "POST", "/keys", {"limits": {"rpm": 1}}).json()
    for _ in range(3):
        counted = post(gw, created["key"], "/v1/messages/count_tokens", max_tokens=None)
        assert counted.status_code == 200 and counted.json()["input_tokens"] > 0
    assert post(gw, created["key"]).status_code == 200
    limited = post(gw, created["key"])
    assert limited.status_code == 429
    assert limited.json()["type"] == "error" and limited.json()["error"]["type"] == "rate_limit_error"
    assert int(limited.headers["retry-after"]) >= 1 and limited.headers["x-should-retry"] == "true"


def test_the_model_allow_list_and_unknown_models_on_count_tokens(
    gateway_factory: GatewayFactory, fake: FakeProviders, redis_url: str
) -> None:
    gw = gateway_factory(add_anthropic(config(fake, redis_url), fake))
    narrow = admin(gw, "POST", "/keys", {"models": ["gpt-4o-mini"]}).json()
    refused = post(gw, narrow["key"], "/v1/messages/count_tokens")
    assert refused.status_code == 403 and refused.json()["error"]["type"] == "permission_error"
    unknown = post(gw, narrow["key"], "/v1/messages/count_tokens", model="nope")
    assert unknown.status_code == 404 and unknown.json()["error"]["type"] == "not_found_error"
    wrong = httpx.get(gw.root_url + ROUTE, timeout=10)
    assert wrong.status_code == 405 and wrong.json()["type"] == "error"
    assert fake.requests(path="/anthropic/v1/messages/count_tokens") == []


def test_one_span_per_attempt_as_on_chat(fake: FakeProviders, redis_url: str) -> None:
    pytest.importorskip("opentelemetry.sdk")
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    cfg = add_anthropic(config(fake, redis_url), fake)
    cfg["telemetry"] = {"otel_traces": True, "otel_sample_ratio": 1.0}
    exporter = InMemorySpanExporter()
    app = create_app(settings_from_mapping(cfg, source="<test>"), clock=ManualClock(), span_exporter=exporter)
    with serve(app) as served:
        key = cfg["auth"]["keys"][0]["key"]
        answer = httpx.post(
            served.base_url + ROUTE,
            headers={"x-api-key": key},
            json={"model": "claude", "max_tokens": 32, "messages": [{"role": "user", "content": "hi"}]},
            timeout=30,
        )
        assert answer.status_code == 200
        [span] = poll(lambda: exporter.get_finished_spans() or None)
    attributes = dict(span.attributes or {})
    assert span.name == "chat claude-haiku-4-5"
    assert attributes["gateway.model.alias"] == "claude" and attributes["gen_ai.provider.name"] == "anthropic"
    assert attributes["gen_ai.usage.input_tokens"] == answer.json()["usage"]["input_tokens"]
    assert attributes["gen_ai.response.model"] == "claude-haiku-4-5"


def test_pings_while_a_translated_stream_is_silent(
    gateway_factory: GatewayFactory, fake: FakeProviders, fake_clock: ManualClock, redis_url: str
) -> None:
    """The fake pauses before each further chunk (``fake_gap`` on its manual clock); meanwhile the
    gateway's clock passes the ping interval twice, and two pings go out."""
    gw = gateway_factory(add_anthropic(config(fake, redis_url), fake))
    fake.script([{"fault": "slow-1s-1s", "reply": {"chunks": ["one ", "two"]}}])
    received: list[bytes] = []
    arrived = threading.Condition()

    def read() -> None:
        body = {
            "model": "gpt-4o-mini",
            "max_tokens": 64,
            "stream": True,
            "messages": [{"role": "user", "content": "x"}],
        }
        with httpx.stream(
            "POST", gw.root_url + ROUTE, headers={"x-api-key": gw.key}, json=body, timeout=30
        ) as answer:
            for chunk in answer.iter_raw():
                with arrived:
                    received.append(chunk)
                    arrived.notify_all()

    def text() -> str:
        with arrived:
            return b"".join(received).decode()

    reader = threading.Thread(target=read)
    reader.start()
    fake_clock.fire("fake_first_part")  # the role chunk: not yet a commit
    fake_clock.fire("fake_gap")  # "one ": the stream commits
    poll(lambda: "text_delta" in text())
    for expected in (1, 2):
        gw.clock.wait_for_timer_blocking(PING_TIMER)
        gw.clock.advance(PING_SECONDS)
        poll(lambda expected=expected: text().count("event: ping") == expected)
    while reader.is_alive():
        try:
            fake_clock.fire("fake_gap", timeout=0.5)
        except TimeoutError:
            break
    reader.join(10)
    events = [line[7:] for line in text().splitlines() if line.startswith("event: ")]
    assert events.count("ping") == 2 and events[-1] == "message_stop"
    assert events.index("ping") > events.index("content_block_delta")


def test_count_tokens_falls_back_to_the_estimate_when_anthropic_cannot_count(
    gateway_factory: GatewayFactory, fake: FakeProviders, redis_url: str
) -> None:
    cfg = add_anthropic(config(fake, redis_url), fake, retry={"max_attempts": 1})
    cfg["providers"][-1]["base_url"] = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    gw = gateway_factory(cfg)
    counted = post(gw, gw.key, "/v1/messages/count_tokens", max_tokens=None)
    assert counted.status_code == 200, counted.text
    assert counted.headers["x-gateway-token-count"] == "estimate" and counted.json()["input_tokens"] > 0
    refused = post(gw, gw.key, "/v1/messages/count_tokens", messages=[])
    assert refused.status_code == 400 and refused.json()["error"]["type"] == "invalid_request_error"
