"""The request journal: `GET /_fake/requests` with filters, `DELETE`, bounds."""

from __future__ import annotations

import time

import httpx
import openai

from fake_providers import FakeOptions
from fake_providers.journal import JournalEntry
from fake_providers.testing import FakeProviders

CHAT = "/openai/v1/chat/completions"


def test_an_sdk_request_is_recorded_whole(providers: FakeProviders, client: openai.OpenAI) -> None:
    before = time.time()
    client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], temperature=0.5
    )
    [entry] = providers.requests()
    assert entry.method == "POST"
    assert entry.path == CHAT
    assert entry.query == {}
    assert entry.model == "gpt-4o-mini"
    assert entry.body == {
        "messages": [{"role": "user", "content": "hi"}],
        "model": "gpt-4o-mini",
        "temperature": 0.5,
    }
    assert entry.headers["authorization"] == "Bearer sk-test-1234567890abcd"
    assert entry.headers["content-type"] == "application/json"
    assert entry.headers["x-stainless-retry-count"] == "0"
    assert all(name == name.lower() for name in entry.headers)
    assert before <= entry.received_at <= time.time()


def test_queries_raw_bodies_and_listings_are_recorded(providers: FakeProviders, http: httpx.Client) -> None:
    http.get("/vllm/v1/models", params={"a": "1", "b": "x y"})
    http.post(CHAT, content=b"not json at all", headers={"content-type": "text/plain"})
    listing, raw = providers.requests()
    assert (listing.method, listing.path, listing.query, listing.body, listing.model) == (
        "GET",
        "/vllm/v1/models",
        {"a": "1", "b": "x y"},
        None,
        None,
    )
    assert raw.body == "not json at all"
    assert raw.seq == listing.seq + 1


def test_requests_answered_by_faults_are_recorded(providers: FakeProviders, http: httpx.Client) -> None:
    for model in ("fault-429", "fault-500"):
        http.post(CHAT, json={"model": model, "messages": [{"role": "user", "content": "x"}]})
    assert [entry.model for entry in providers.requests()] == ["fault-429", "fault-500"]


def test_control_requests_are_not_recorded(providers: FakeProviders, http: httpx.Client) -> None:
    http.get("/_fake/script")
    http.get("/_fake/status")
    assert providers.requests() == []


def test_filters_and_clear(providers: FakeProviders, http: httpx.Client) -> None:
    start = providers.last_seq()
    for model in ("a", "b", "a"):
        http.post(CHAT, json={"model": model, "messages": [{"role": "user", "content": model}]})
    http.get("/openai/v1/models")
    assert [entry.seq for entry in providers.requests()] == [start + 1, start + 2, start + 3, start + 4]
    assert [entry.body["messages"][0]["content"] for entry in providers.requests(model="a")] == ["a", "a"]
    assert [entry.path for entry in providers.requests(path="/openai/v1/models")] == ["/openai/v1/models"]
    assert [entry.seq for entry in providers.requests(since=start + 2)] == [start + 3, start + 4]
    page = http.get("/_fake/requests", params={"limit": 2, "path": CHAT}).json()
    assert [entry["seq"] for entry in page["data"]] == [start + 2, start + 3]
    assert page["last_seq"] == start + 4
    assert http.get("/_fake/requests", params={"since": "soon"}).status_code == 400
    assert http.delete("/_fake/requests").json() == {"cleared": 4}
    assert providers.requests() == []
    http.get("/openai/v1/models")
    assert [entry.seq for entry in providers.requests()] == [start + 5]


def test_the_journal_keeps_only_the_newest_entries() -> None:
    with (
        FakeProviders(FakeOptions(journal_limit=2)) as providers,
        httpx.Client(base_url=providers.base_url) as http,
    ):
        for index in range(3):
            http.get("/vllm/v1/models", params={"n": str(index)})
        entries = providers.requests()
        assert [entry.query["n"] for entry in entries] == ["1", "2"]
        assert [entry.seq for entry in entries] == [2, 3]
        assert all(isinstance(entry, JournalEntry) for entry in entries)
