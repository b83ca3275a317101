"""Context windows read from each provider's model listing (every dialect the fakes speak),
published on /v1/models, shared through Redis, and enforced before any upstream call."""

from __future__ import annotations

import time
from typing import Any

import httpx
import openai
import pytest
import redis

from fake_providers.testing import FakeProviders
from tests.conftest import GATEWAY_KEY, GatewayFactory, base_config

# provider name, base path under the fake, models path (relative), upstream model, window
DIALECTS: list[tuple[str, str, str, str, int]] = [
    ("openrouter", "/openrouter/api/v1", "/models", "openai/gpt-4o-mini", 128000),
    ("vllm", "/vllm/v1", "/models", "qwen2.5-7b-instruct", 32768),
    ("groq", "/groq/openai/v1", "/models", "llama-3.1-8b-instant", 131072),
    ("mistral", "/mistral/v1", "/models", "mistral-small-latest", 32768),
    ("lmstudio", "/lmstudio/api/v0", "/models", "qwen2.5-7b-instruct", 32768),
    ("gemini", "/gemini/v1beta/openai", "GEMINI", "gemini-2.5-flash", 1048576),
]


def catalog_config(fake: FakeProviders, redis_url: str) -> dict[str, Any]:
    config = base_config(fake, redis_url)
    for name, base, models_path, upstream, _ in DIALECTS:
        path = fake.base_url + "/gemini/v1beta/models" if models_path == "GEMINI" else models_path
        config["providers"].append(
            {"name": name, "kind": "openai-compatible", "base_url": fake.base_url + base, "models_path": path}
        )
        config["models"].append({"name": f"{name}-model", "provider": name, "upstream_model": upstream})
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


def wait_for_windows(base_url: str, names: list[str], timeout: float = 10.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        models = models_by_id(base_url)
        if all(models[n]["context_window"] for n in names) or time.monotonic() > deadline:
            return models
        time.sleep(0.02)


def test_every_dialect_listing_gives_the_window(
    gateway_factory: GatewayFactory, fake: FakeProviders, redis_url: str, redis_sync: redis.Redis
) -> None:
    gw = gateway_factory(catalog_config(fake, redis_url))
    names = [f"{name}-model" for name, *_ in DIALECTS]
    models = wait_for_windows(gw.base_url, names)
    for name, _, _, _, window in DIALECTS:
        assert models[f"{name}-model"]["context_window"] == window, name
    assert models["gpt-4o-mini"]["context_window"] is None  # OpenAI publishes no window: configure it
    assert models["pinned"]["context_window"] == 1000  # configuration wins

    # The windows are shared through Redis for the other replicas.
    prefix = gw.settings.redis.key_prefix
    assert redis_sync.hget(f"{prefix}catalog:{{vllm}}", "qwen2.5-7b-instruct") == b"32768"
    assert 0 < redis_sync.ttl(f"{prefix}catalog:{{vllm}}") <= 1800


def test_a_failing_listing_does_not_stop_the_gateway(
    gateway_factory: GatewayFactory, fake: FakeProviders, redis_url: str
) -> None:
    config = base_config(fake, redis_url)
    config["providers"][1]["models_path"] = "/no-such-listing"
    gw = gateway_factory(config)
    with httpx.Client() as http:
        deadline = time.monotonic() + 10
        while True:
            ready = http.get(gw.root_url + "/readyz").json()
            if "fake-vllm" in ready["model_listings"] or time.monotonic() > deadline:
                break
            time.sleep(0.02)
    assert ready["status"] == "ready"
    assert ready["model_listings"]["fake-vllm"]["ok"] is False
    assert "404" in ready["model_listings"]["fake-vllm"]["error"]
    reply = gw.openai().chat.completions.create(model="llama", messages=[{"role": "user", "content": "hi"}])
    assert reply.choices[0].message.content == "You said: hi"


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
