"""Shared helpers for the Responses API tests: configs, raw calls, SSE parsing, Redis records."""

from __future__ import annotations

import json
from typing import Any

import httpx
import redis

from fake_providers.testing import FakeProviders
from gateway.testing import GATEWAY_KEY, RunningGateway, base_config

CHAT_PATH = "/openai/v1/chat/completions"
RESPONSES_PATH = "/openai/v1/responses"
VLLM_CHAT_PATH = "/vllm/v1/chat/completions"
TTL = 3600
SLACK = TTL // 10

WEATHER_TOOL: dict[str, Any] = {
    "type": "function",
    "name": "get_weather",
    "description": "Current weather for a city.",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
        "additionalProperties": False,
    },
    "strict": True,
}


def responses_config(fake: FakeProviders, redis_url: str, **overrides: Any) -> dict[str, Any]:
    """The base config plus models for every upstream API and a short TTL.

    ``chat-model`` speaks Chat (the fake OpenAI), ``resp-model`` speaks Responses (the fake
    OpenAI's Responses API), ``llama`` speaks Chat on the vLLM fake.
    """
    config = base_config(fake, redis_url)
    config["models"] = [
        {"name": "chat-model", "provider": "fake-openai", "upstream_model": "gpt-4o-mini", "api": "chat"},
        {
            "name": "resp-model",
            "provider": "fake-openai",
            "upstream_model": "gpt-4o-mini",
            "api": "responses",
        },
        {"name": "llama", "provider": "fake-vllm", "upstream_model": "meta-llama/Llama-3.1-8B-Instruct"},
    ]
    config["responses"] = {"ttl_seconds": TTL}
    config.update(overrides)
    return config


def post(gw: RunningGateway[Any], body: dict[str, Any], *, key: str = GATEWAY_KEY) -> httpx.Response:
    with gw.http(key=key) as http:
        return http.post(gw.base_url + "/responses", json=body)


def call(
    gw: RunningGateway[Any], method: str, path: str, *, key: str = GATEWAY_KEY, **kwargs: Any
) -> httpx.Response:
    with gw.http(key=key) as http:
        return http.request(method, gw.base_url + path, **kwargs)


def sse_events(text: str) -> list[tuple[str, dict[str, Any]]]:
    """``(event name, decoded data)`` of every frame of a Responses stream."""
    events: list[tuple[str, dict[str, Any]]] = []
    for frame in text.split("\n\n"):
        if not frame.strip():
            continue
        name = ""
        data: list[str] = []
        for line in frame.split("\n"):
            if line.startswith("event: "):
                name = line.removeprefix("event: ")
            elif line.startswith("data: "):
                data.append(line.removeprefix("data: "))
        events.append((name, json.loads("\n".join(data))))
    return events


def record_key(gw: RunningGateway[Any], response_id: str) -> str:
    return f"{gw.settings.redis.key_prefix}resp:{{{response_id}}}"


def stored(redis_sync: redis.Redis, gw: RunningGateway[Any], response_id: str) -> dict[str, Any]:
    """The record Redis holds, every field decoded (empty when there is none)."""
    raw: dict[bytes, bytes] = redis_sync.hgetall(record_key(gw, response_id))  # type: ignore[assignment]
    out: dict[str, Any] = {}
    for field, value in raw.items():
        name = field.decode()
        out[name] = value.decode() if name == "owner" else json.loads(value)
    return out


def key_id(key: str) -> str:
    import hashlib

    return hashlib.sha256(key.encode()).hexdigest()[:12]


def user(text: str) -> dict[str, Any]:
    """A user message as Chat Completions receives it from a translated Responses input."""
    return {"role": "user", "content": text}


def fresh_requests(fake: FakeProviders, path: str) -> list[dict[str, Any]]:
    return [entry.body for entry in fake.requests(path=path)]
