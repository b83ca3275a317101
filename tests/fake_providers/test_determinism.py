"""With a seed, the same requests get byte-identical answers (ids, timestamps, request ids)."""

from __future__ import annotations

import httpx

from fake_providers import FakeOptions
from fake_providers.testing import FakeProviders

CHAT = "/openai/v1/chat/completions"
TOOLS = [
    {
        "type": "function",
        "function": {"name": "f", "parameters": {"type": "object", "properties": {"a": {"type": "integer"}}}},
    }
]
REQUESTS = [
    {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "one"}]},
    {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "two"}], "stream": True},
    {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "three"}],
        "tools": TOOLS,
        "tool_choice": "required",
    },
]


def run(options: FakeOptions) -> list[tuple[bytes, str]]:
    with FakeProviders(options) as providers, httpx.Client(base_url=providers.base_url) as http:
        answers = [http.post(CHAT, json=request) for request in REQUESTS]
        return [(answer.content, answer.headers["x-request-id"]) for answer in answers]


def test_same_seed_same_bytes() -> None:
    first = run(FakeOptions(seed=42))
    assert first == run(FakeOptions(seed=42))
    assert b'"created":1735689600' in first[0][0]
    assert b'"created":1735689601' in first[1][0]


def test_without_a_seed_ids_differ() -> None:
    assert run(FakeOptions())[0][1] != run(FakeOptions())[0][1]
