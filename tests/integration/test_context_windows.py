"""Context windows read from each provider's model listing (every dialect the fakes speak),
published on /v1/models, shared through Redis, and enforced before any upstream call."""

from __future__ import annotations

from typing import Any

import httpx
import openai
import pytest
import redis

from fake_providers.testing import FakeProviders
from gateway.testing import add_anthropic
from gateway.upstream.catalog import CATALOG_REFRESH
from tests.conftest import GATEWAY_KEY, GatewayFactory, RunningGateway, base_config

# provider name, base path under the fake, models path (relative), upstream model, window
DIALECTS: list[tuple[str, str, str, str, int]] = [
    ("openrouter", "/openrouter/api/v1", "/models", "openai/gpt-4o-mini", 128000),
    ("vllm", "/vllm/v1", "/models", "qwen2.5-7b-instruct", 32768),
    ("groq", "/groq/openai/v1", "/models", "llama-3.1-8b-instant", 131072),
    ("mistral", "/mistral/v1", "/models", "mistral-small-latest", 32768),
    ("lmstudio", "/lmstudio/api/v0", "/models", "qwen2.5-7b-instruct", 32768),
    # Gemini's native listing (paged: three models a page) next to its OpenAI-compatible endpoint.
    ("gemini", "/gemini/v1beta/openai", "GEMINI", "gemini-2.5-flash", 1048576),
]
GEMINI_KEY = "AIza-fake-gemini-key"


def catalog_config(fake: FakeProviders, redis_url: str) -> dict[str, Any]:
    config = base_config(fake, redis_url)
    for name, base, models_path, upstream, _ in DIALECTS:
        provider: dict[str, Any] = {
            "name": name,
            "kind": "openai-compatible",
            "base_url": fake.base_url + base,
        }
        provider["models_path"] = models_path
        if models_path == "GEMINI":
            provider["models_path"] = fake.base_url + "/gemini/v1beta/models?pageSize=3"
            provider["headers"] = {"x-goog-api-key": GEMINI_KEY}
        config["providers"].append(provider)
        config["models"].append({"name": f"{name}-model", "provider": name, "upstream_model": upstream})
    add_anthropic(config, fake, provider="anthropic", api_key="sk-ant")
    config["models"].append(
        {
            "name": "pinned",
            "provider": "vllm",
            "upstream_model": "qwen2.5-7b-instruct",
            "context_window": 1000,
        }
    )
    return config


def models_by_id(base_url: str) -> dict[str, Any]:
    with httpx.Client() as http:
        data = http.get(base_url + "/models", headers={"authorization": f"Bearer {GATEWAY_KEY}"}).json()[
            "data"
        ]
    return {m["id"]: m for m in data}


def listings_read(gw: RunningGateway) -> float:
    """Waits until the gateway has read every listing once (the catalog then sleeps on the
    injected clock); returns how long it sleeps before the next read."""
    timer = gw.clock.wait_for_timer_blocking(CATALOG_REFRESH)
    return timer.deadline - timer.armed_at


def test_every_dialect_listing_gives_the_window(
    gateway_factory: GatewayFactory, fake: FakeProviders, redis_url: str, redis_sync: redis.Redis
) -> None:
    gw = gateway_factory(catalog_config(fake, redis_url))
    assert listings_read(gw) == gw.settings.server.models_refresh_seconds  # every listing succeeded
    models = models_by_id(gw.base_url)
    for name, _, _, _, window in DIALECTS:
        assert models[f"{name}-model"]["context_window"] == window, name
    assert models["claude"]["context_window"] == 200000  # Anthropic's max_input_tokens
    assert models["gpt-4o-mini"]["context_window"] is None  # OpenAI publishes no window: configure it
    assert models["pinned"]["context_window"] == 1000  # configuration wins

    # The windows are shared through Redis for the other replicas.
    prefix = gw.settings.redis.key_prefix
    assert redis_sync.hget(f"{prefix}catalog:{{vllm}}", "qwen2.5-7b-instruct") == b"32768"
    assert 0 < redis_sync.ttl(f"{prefix}catalog:{{vllm}}") <= 1800


def test_paged_listings_are_read_whole_with_the_providers_headers(
    gateway_factory: GatewayFactory, fake: FakeProviders, redis_url: str
) -> None:
    gw = gateway_factory(catalog_config(fake, redis_url))
    listings_read(gw)
    gemini_pages = fake.requests(path="/gemini/v1beta/models")
    # Ten catalogue models, three a page: four requests, each page's token sent back.
    assert len(gemini_pages) == 4
    assert "pageToken" not in gemini_pages[0].query
    assert all("pageToken" in e.query for e in gemini_pages[1:])
    assert all(e.query["pageSize"] == "3" for e in gemini_pages)
    assert all(e.headers["x-goog-api-key"] == GEMINI_KEY for e in gemini_pages)
    [anthropic_listing] = fake.requests(path="/anthropic/v1/models")
    assert anthropic_listing.query == {"limit": "1000"}
    assert anthropic_listing.headers["x-api-key"] == "sk-ant"
    assert anthropic_listing.headers["anthropic-version"] == "2023-06-01"
    # gemini-2.5-flash is on the third page.
    assert models_by_id(gw.base_url)["gemini-model"]["context_window"] == 1048576


def test_listings_are_read_again_every_refresh_period(
    gateway_factory: GatewayFactory, fake: FakeProviders, redis_url: str
) -> None:
    config = base_config(fake, redis_url)
    config["server"] = {"models_refresh_seconds": 120}
    gw = gateway_factory(config)
    assert listings_read(gw) == 120
    assert len(fake.requests(path="/vllm/v1/models")) == 1
    gw.clock.fire(CATALOG_REFRESH)
    gw.clock.wait_for_timer_blocking(CATALOG_REFRESH)
    assert len(fake.requests(path="/vllm/v1/models")) == 2


def test_a_failing_listing_does_not_stop_the_gateway(
    gateway_factory: GatewayFactory, fake: FakeProviders, redis_url: str
) -> None:
    config = base_config(fake, redis_url)
    config["providers"][1]["models_path"] = "/no-such-listing"
    gw = gateway_factory(config)
    assert listings_read(gw) == 30.0  # retried sooner than the refresh period
    ready = httpx.get(gw.root_url + "/readyz").json()
    assert ready["status"] == "ready"
    assert ready["model_listings"]["fake-vllm"]["ok"] is False
    assert "404" in ready["model_listings"]["fake-vllm"]["error"]
    reply = gw.openai().chat.completions.create(model="llama", messages=[{"role": "user", "content": "hi"}])
    assert reply.choices[0].message.content == "You said: hi"
    # It is read again after the retry delay (failing again: retried again).
    gw.clock.fire(CATALOG_REFRESH)
    assert listings_read(gw) == 30.0
    assert gw.clock.history(CATALOG_REFRESH) == ["armed", "fired", "armed"]


def test_prompt_over_the_window_is_refused_without_calling_upstream(
    gateway_factory: GatewayFactory, fake: FakeProviders, redis_url: str
) -> None:
    gw = gateway_factory(catalog_config(fake, redis_url))
    long = [{"role": "user", "content": "word " * 2000}]  # ~2,500 tokens by the estimate
    with pytest.raises(openai.BadRequestError) as info:
        gw.openai().chat.completions.create(model="pinned", messages=long)
    assert info.value.code == "context_length_exceeded"
    assert info.value.param == "messages"
    assert "maximum context length is 1000 tokens" in info.value.message
    assert [e for e in fake.requests() if e.method == "POST"] == []


def test_prompt_over_the_window_goes_to_a_larger_fallback(
    gateway_factory: GatewayFactory, fake: FakeProviders, redis_url: str
) -> None:
    config = catalog_config(fake, redis_url)
    config["models"][-1]["fallbacks"] = ["gpt-4o-mini"]
    gw = gateway_factory(config)
    long = [{"role": "user", "content": "word " * 2000}]
    reply = gw.openai().chat.completions.create(model="pinned", messages=long)
    assert reply.choices[0].message.content.startswith("You said: word")
    assert [e.path for e in fake.requests() if e.method == "POST"] == ["/openai/v1/chat/completions"]
