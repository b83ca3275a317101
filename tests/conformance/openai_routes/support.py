"""The gateway configuration the OpenAI-surface conformance tests share, and small helpers."""

from __future__ import annotations

from typing import Any

import httpx
import msgspec

from fake_providers.testing import FakeProviders
from gateway.testing import RunningGateway, base_config, poll_until

SURFACE_MODELS: list[dict[str, Any]] = [
    {"name": "text-embedding-3-small", "provider": "fake-openai"},
    {
        "name": "embed-floats",
        "provider": "fake-openai",
        "upstream_model": "text-embedding-3-small-floats-only",
    },
    {
        "name": "embed-base64",
        "provider": "fake-openai",
        "upstream_model": "text-embedding-3-small-base64-only",
    },
    {"name": "nomic-embed", "provider": "fake-vllm", "upstream_model": "nomic-embed-text"},
    {"name": "gpt-3.5-turbo-instruct", "provider": "fake-openai"},
    {"name": "omni-moderation-latest", "provider": "fake-openai"},
    {"name": "dall-e-2", "provider": "fake-openai"},
    {"name": "gpt-image-1", "provider": "fake-openai"},
    {"name": "whisper-1", "provider": "fake-openai"},
    {"name": "gpt-4o-mini-transcribe", "provider": "fake-openai"},
    {"name": "tts-1", "provider": "fake-openai"},
]


def surface_config(fake: FakeProviders, redis_url: str, **overrides: Any) -> dict[str, Any]:
    """:func:`base_config` with the surface's models (embeddings on both fake providers, the
    simple routes' models on the fake OpenAI)."""
    config = base_config(fake, redis_url, **overrides)
    if "models" not in overrides:
        config["models"] = [*config["models"], *SURFACE_MODELS]
    return config


def usage_events(gw: RunningGateway, redis_url: str, endpoint: str, count: int) -> list[dict[str, Any]]:
    """The usage events of ``endpoint`` once ``count`` of them are written."""
    import redis

    client = redis.Redis.from_url(redis_url)
    name = f"{gw.settings.redis.key_prefix}usage"

    def events() -> list[dict[str, Any]] | None:
        decoded = [msgspec.json.decode(f[b"e"]) for _, f in client.xrange(name)]
        mine = [e for e in decoded if e["endpoint"] == endpoint]
        return mine if len(mine) >= count else None

    try:
        return poll_until(events, what=f"{count} usage events of {endpoint}")
    finally:
        client.close()


def metric_lines(gw: RunningGateway, family: str, route: str) -> list[str]:
    text = httpx.get(gw.root_url + "/metrics").text
    return [line for line in text.splitlines() if line.startswith(family) and f'route="{route}"' in line]
