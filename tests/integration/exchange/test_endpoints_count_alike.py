"""Chat Completions, Responses and Anthropic Messages share one request cycle
(``gateway.exchange``): the same case on any endpoint gives the same metric series and the same
settlement.

Each case runs on a fresh gateway per endpoint; the metric samples are compared with the route
label made neutral, the usage events written to Redis field by field (timings only as present
or absent, token counts only as reported or not: the two dialects' answers differ in length).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import msgspec
import pytest
import redis

from fake_providers.testing import FakeProviders
from tests.conftest import GatewayFactory, RunningGateway
from tests.integration.policy.test_policy import admin, config, poll

ROUTES = {"chat": "/v1/chat/completions", "responses": "/v1/responses", "messages": "/v1/messages"}
FAMILIES = (
    "gw_requests_total",
    "gw_overhead_seconds_count",
    "gen_ai_server_request_duration_seconds_count",
    "gen_ai_server_time_to_first_token_seconds_count",
    "gen_ai_client_operation_duration_seconds_count",
    "gw_inflight_requests",
)
SETTLED = (
    "status",
    "error_type",
    "stream",
    "attempts",
    "provider",
    "upstream_model",
    "model",
    "usage_source",
)


def send(
    gw: RunningGateway, endpoint: str, key: str, *, stream: bool = False, raw: bytes | None = None
) -> httpx.Response:
    if endpoint == "chat":
        body: dict[str, Any] = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hello"}]}
    elif endpoint == "messages":
        body = {"model": "gpt-4o-mini", "max_tokens": 256, "messages": [{"role": "user", "content": "hello"}]}
    else:
        body = {"model": "gpt-4o-mini", "input": "hello"}
    if stream:
        body["stream"] = True
    return httpx.post(
        gw.root_url + ROUTES[endpoint],
        headers={"authorization": f"Bearer {key}", "content-type": "application/json"},
        content=raw if raw is not None else msgspec.json.encode(body),
        timeout=30,
    )


def series(gw: RunningGateway, endpoint: str) -> set[str]:
    """The request-cycle metric samples, the route label made neutral (other routes left out)."""
    route = ROUTES[endpoint]
    others = [r for r in (*ROUTES.values(), "/v1/chats") if r != route]
    text = httpx.get(gw.root_url + "/metrics").text
    return {
        line.replace(f'route="{route}"', 'route="ROUTE"')
        for line in text.splitlines()
        if line.startswith(FAMILIES) and not any(f'"{other}"' in line for other in others)
    }


def settled(gw: RunningGateway, redis_sync: redis.Redis, kid: str, count: int) -> list[dict[str, Any]]:
    name = f"{gw.settings.redis.key_prefix}usage"

    def events() -> tuple[list[dict[str, Any]]] | None:
        decoded = [msgspec.json.decode(f[b"e"]) for _, f in redis_sync.xrange(name)]
        mine = [e for e in decoded if e["kid"] == kid]
        return (mine,) if len(mine) >= count else None

    (found,) = poll(events)
    assert len(found) == count
    return [
        {
            **{field: event.get(field) for field in SETTLED},
            "ttft": event.get("ttft_ms") is not None,
            "tokens": event.get("input_tokens", 0) > 0 and event.get("output_tokens", 0) > 0,
        }
        for event in found
    ]


Case = Callable[[RunningGateway, str, str, FakeProviders], list[int]]


def refused_key(gw: RunningGateway, endpoint: str, key: str, fake: FakeProviders) -> list[int]:
    return [send(gw, endpoint, "sk-not-a-key-of-this-gateway").status_code]


def bad_json(gw: RunningGateway, endpoint: str, key: str, fake: FakeProviders) -> list[int]:
    return [send(gw, endpoint, key, raw=b'{"model": ').status_code]


def over_the_rate_limit(gw: RunningGateway, endpoint: str, key: str, fake: FakeProviders) -> list[int]:
    return [send(gw, endpoint, key).status_code, send(gw, endpoint, key).status_code]


def json_answer(gw: RunningGateway, endpoint: str, key: str, fake: FakeProviders) -> list[int]:
    return [send(gw, endpoint, key).status_code]


def stream_answer(gw: RunningGateway, endpoint: str, key: str, fake: FakeProviders) -> list[int]:
    answer = send(gw, endpoint, key, stream=True)
    assert answer.text.strip()
    return [answer.status_code]


def broken_stream(gw: RunningGateway, endpoint: str, key: str, fake: FakeProviders) -> list[int]:
    fake.script([{"fault": "cut-3", "reply": {"chunks": ["Once ", "upon ", "a ", "time"]}}])
    answer = send(gw, endpoint, key, stream=True)
    if endpoint == "messages":  # Anthropic's in-band error: an error event, no message_stop
        assert "event: error" in answer.text and "message_stop" not in answer.text
    else:
        assert "stream_truncated" in answer.text
    return [answer.status_code]


@pytest.mark.parametrize(
    ("case", "statuses", "events"),
    [
        (refused_key, [401], 0),
        (bad_json, [400], 0),
        (over_the_rate_limit, [200, 429], 1),
        (json_answer, [200], 1),
        (stream_answer, [200], 1),
        (broken_stream, [200], 1),
    ],
    ids=lambda value: getattr(value, "__name__", None),
)
def test_the_same_case_counts_and_settles_alike_on_both_endpoints(
    gateway_factory: GatewayFactory,
    fake: FakeProviders,
    redis_url: str,
    redis_sync: redis.Redis,
    case: Case,
    statuses: list[int],
    events: int,
) -> None:
    seen: dict[str, tuple[set[str], list[dict[str, Any]]]] = {}
    for endpoint in ROUTES:
        gw = gateway_factory(config(fake, redis_url))
        created = admin(gw, "POST", "/keys", {"limits": {"rpm": 1}}).json()
        assert case(gw, endpoint, created["key"], fake) == statuses
        usage = settled(gw, redis_sync, created["id"], events)
        # Settlement is written after the answer, and metrics are counted with it: poll until
        # every request is counted.
        samples = poll(
            lambda gw=gw, endpoint=endpoint: (s := series(gw, endpoint)) and _counted(s, statuses) and s
        )
        seen[endpoint] = (samples, usage)
    (chat_series, chat_usage), (responses_series, responses_usage) = seen["chat"], seen["responses"]
    assert chat_series == responses_series
    assert chat_usage == responses_usage
    messages_series, messages_usage = seen["messages"]
    assert messages_series == chat_series
    assert messages_usage == chat_usage
    assert any(line.startswith("gw_requests_total") for line in chat_series)
    ttft = any(line.startswith("gen_ai_server_time_to_first_token_seconds_count") for line in chat_series)
    assert ttft == (case in (stream_answer, broken_stream))


def _counted(samples: set[str], statuses: list[int]) -> set[str] | None:
    total = sum(float(line.rsplit(" ", 1)[1]) for line in samples if line.startswith("gw_requests_total"))
    return samples if total == len(statuses) else None
