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


def answers(providers: FakeProviders) -> list[bytes]:
    with httpx.Client(base_url=providers.base_url) as http:
        chat = [http.post(CHAT, json=request).content for request in REQUESTS]
        response = http.post("/openai/v1/responses", json={"model": "gpt-4o-mini", "input": "hi"}).content
    return [*chat, response]


def test_reset_with_a_seed_restarts_ids_and_clock_on_a_running_server() -> None:
    """One session-wide server, and still the same bytes in every test that resets with a seed."""
    with FakeProviders() as providers:
        answers(providers)  # whatever ran before
        providers.reset(seed=7)
        first = answers(providers)
        answers(providers)
        providers.reset(seed=7)
        assert answers(providers) == first
        assert b'"created":1735689600' in first[0]
        assert b'"created_at":1735689603' in first[-1]
        providers.reset(seed=0)  # 0 is a seed like any other, not "no seed"
        zero = answers(providers)
        assert zero != first
        assert b'"created":1735689600' in zero[0]
        providers.reset(seed=None)  # random again, real clock
        assert b'"created":1735689600' not in answers(providers)[0]
        providers.reset()  # without a seed, ids keep their sequence


def test_reset_refuses_a_bad_body() -> None:
    with FakeProviders() as providers:
        response = httpx.post(providers.url("/_fake/reset"), json={"seed": "x"})
        assert response.status_code == 400
        assert "invalid reset request" in response.json()["error"]["message"]
        assert httpx.post(providers.url("/_fake/reset"), json={"sede": 1}).status_code == 400
