"""The exchange over an in-memory client channel: the Chat Completions endpoint driven without a
server, its upstream a mock transport, its Redis real. What the client receives, what is counted."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import msgspec
import pytest

from gateway.chat_completions.endpoint import handle
from gateway.clock import ManualClock
from gateway.config import settings_from_mapping
from gateway.exchange import Exchange, MemoryChannel
from gateway.policy.auth import KeyRing
from gateway.policy.engine import PolicyService
from gateway.redis.connection import redis_client
from gateway.services import Services
from gateway.telemetry.metrics import Metrics
from gateway.testing import GATEWAY_KEY
from gateway.upstream import Router, build_upstreams
from gateway.upstream.catalog import ModelCatalog

Handler = Callable[[httpx.Request], Any]
ROUTE = "/v1/chat/completions"


def completion(text: str = "Hi!") -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7},
    }


STREAM = (
    b'data: {"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}\n\n'
    b'data: {"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"Hi"}}]}\n\n'
    b'data: {"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\n'
    b"data: [DONE]\n\n"
)


async def _chunks(content: bytes) -> AsyncIterator[bytes]:
    yield content


class Upstream:
    """The mock provider: answers each request with ``handler(request)``, its body streamed as
    from a socket."""

    def __init__(self) -> None:
        self.handler: Handler = lambda request: httpx.Response(200, json=completion())
        self.requests: list[httpx.Request] = []

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        response = self.handler(request)
        if asyncio.iscoroutine(response):
            response = await response
        assert isinstance(response, httpx.Response)
        if isinstance(response.stream, httpx.ByteStream):
            return httpx.Response(
                response.status_code, headers=response.headers, content=_chunks(response.content)
            )
        return response


@pytest.fixture
def upstream() -> Upstream:
    return Upstream()


@pytest.fixture
async def services(redis_url: str, upstream: Upstream) -> AsyncIterator[Services]:
    settings = settings_from_mapping(
        {
            "redis": {"url": redis_url, "key_prefix": "gwtest-exchange:"},
            "auth": {"keys": [{"name": "test", "key": GATEWAY_KEY}]},
            "server": {"max_body_bytes": 1000},
            "providers": [
                {
                    "name": "p",
                    "kind": "openai",
                    "base_url": "http://upstream.test/v1",
                    "retry": {"max_attempts": 1},
                }
            ],
            "models": [{"name": "gpt-4o-mini", "provider": "p"}],
        },
        source="<test>",
    )
    clock = ManualClock()
    upstreams = build_upstreams(settings, clock, {"p": httpx.MockTransport(upstream)})
    redis = redis_client(redis_url)
    metrics = Metrics(["gpt-4o-mini"], ["p"])
    keyring = KeyRing(settings.auth.keys)
    policy = PolicyService(settings, redis, clock, metrics, keyring=keyring)
    await policy.start()
    try:
        yield Services(
            settings=settings,
            clock=clock,
            redis=redis,
            upstreams=upstreams,
            router=Router(settings, upstreams),
            keys=keyring,
            catalog=ModelCatalog(upstreams, redis, clock, key_prefix="gwtest-exchange:"),
            policy=policy,
            metrics=metrics,
        )
    finally:
        await policy.stop()
        await redis.aclose()


def body(**extra: Any) -> bytes:
    return msgspec.json.encode(
        {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], **extra}
    )


def counted(services: Services, status_class: str, error_type: str, model: str = "gpt-4o-mini") -> float:
    value = services.metrics.registry.get_sample_value(
        "gw_requests_total",
        {"route": ROUTE, "model": model, "status_class": status_class, "error_type": error_type},
    )
    return value or 0.0


def in_flight(services: Services) -> float | None:
    return services.metrics.registry.get_sample_value("gw_inflight_requests", {"route": ROUTE})


async def test_a_refusal_is_answered_in_openai_shape_and_counted(
    services: Services, upstream: Upstream
) -> None:
    channel = MemoryChannel(body(), key=None)
    await handle(services, channel)
    assert channel.status == 401
    assert json.loads(channel.body_sent)["error"]["type"] == "invalid_request_error"
    assert channel.headers["x-request-id"].startswith("req_")
    assert counted(services, "4xx", "authentication", model="other") == 1
    assert in_flight(services) == 0
    assert upstream.requests == []


async def test_bad_json_and_a_body_over_the_limit(services: Services) -> None:
    bad = MemoryChannel(b'{"model": ', key=GATEWAY_KEY)
    await handle(services, bad)
    assert bad.status == 400
    assert "could not parse the JSON body" in json.loads(bad.body_sent)["error"]["message"]
    large = MemoryChannel(b" " * 1001, key=GATEWAY_KEY)
    await handle(services, large)
    assert large.status == 413
    assert counted(services, "4xx", "invalid_request", model="other") == 2


async def test_a_json_answer_with_timing_headers(services: Services, upstream: Upstream) -> None:
    channel = MemoryChannel(body(), key=GATEWAY_KEY)
    await handle(services, channel)
    assert channel.status == 200
    assert json.loads(channel.body_sent)["choices"][0]["message"]["content"] == "Hi!"
    assert channel.headers["x-gateway-attempts"] == "1"
    assert channel.headers["x-gateway-provider"] == "p"
    assert float(channel.headers["x-gateway-overhead-ms"]) >= 0
    assert counted(services, "2xx", "") == 1
    sent = json.loads(upstream.requests[0].content)
    assert sent["model"] == "gpt-4o-mini"


async def test_a_stream_is_relayed_as_it_came_and_its_first_token_timed(
    services: Services, upstream: Upstream
) -> None:
    upstream.handler = lambda request: httpx.Response(
        200, headers={"content-type": "text/event-stream"}, content=STREAM
    )
    channel = MemoryChannel(body(stream=True), key=GATEWAY_KEY)
    await handle(services, channel)
    assert channel.status == 200 and channel.ended
    assert channel.headers["content-type"].startswith("text/event-stream")
    assert channel.streamed == STREAM
    ttft = services.metrics.registry.get_sample_value(
        "gen_ai_server_time_to_first_token_seconds_count",
        {"gen_ai_operation_name": "chat", "gen_ai_request_model": "gpt-4o-mini"},
    )
    assert ttft == 1


async def test_an_upstream_refusal_is_the_clients_error_in_its_dialect(
    services: Services, upstream: Upstream
) -> None:
    upstream.handler = lambda request: httpx.Response(
        400,
        json={
            "error": {
                "message": "Invalid 'temperature'.",
                "type": "invalid_request_error",
                "param": "temperature",
            }
        },
    )
    channel = MemoryChannel(body(temperature=9), key=GATEWAY_KEY)
    await handle(services, channel)
    assert channel.status == 400
    error = json.loads(channel.body_sent)["error"]
    assert (error["param"], error["provider"]) == ("temperature", "openai")
    assert counted(services, "4xx", "upstream") == 1


async def test_a_client_that_goes_away_mid_stream_is_a_499(services: Services, upstream: Upstream) -> None:
    release = asyncio.Event()

    async def slow() -> AsyncIterator[bytes]:
        yield STREAM[: STREAM.index(b"\n\n", 120) + 2]
        await release.wait()
        yield b"data: [DONE]\n\n"

    upstream.handler = lambda request: httpx.Response(
        200, headers={"content-type": "text/event-stream"}, content=slow()
    )
    channel = MemoryChannel(body(stream=True), key=GATEWAY_KEY)
    task = asyncio.create_task(handle(services, channel))
    while not channel.chunks:
        await asyncio.sleep(0)
    channel.disconnect()
    await task
    release.set()
    assert not channel.ended
    assert counted(services, "4xx", "client_disconnect") == 1
    assert in_flight(services) == 0


async def test_the_exchange_settles_and_counts_a_bug_as_internal(services: Services) -> None:
    channel = MemoryChannel(body(), key=GATEWAY_KEY)

    async def buggy() -> None:
        async with Exchange(services, channel, route=ROUTE, error_api="chat") as exchange:
            await exchange.admit(
                await exchange.authenticate(), model="gpt-4o-mini", body_size=1, max_tokens=None, stream=False
            )
            raise RuntimeError("a bug")

    with pytest.raises(RuntimeError):
        await buggy()
    assert not channel.started  # the HTTP layer answers it
    assert counted(services, "5xx", "internal") == 1
    assert in_flight(services) == 0
