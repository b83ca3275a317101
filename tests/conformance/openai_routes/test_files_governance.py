"""Files and batches governed like every route: each operation admitted (request limits, the
allow-lists of the models it involves) and settled with a usage event of zero tokens; a finished
batch's tokens charged once to its key and team at batch prices."""

from __future__ import annotations

import json
import threading
from typing import Any

import httpx
import openai
import pytest

from fake_providers.testing import FakeProviders
from gateway.pricing import PriceTable, Usage
from gateway.testing import GATEWAY_KEY, RunningGateway, poll_until
from tests.conformance.openai_routes.support import surface_config, usage_events
from tests.conformance.openai_routes.test_files_batches import advance, batch_lines
from tests.conftest import GatewayFactory

FILE_ROUTES = ("/v1/files", "/v1/files/{file_id}", "/v1/files/{file_id}/content")
BATCH_ROUTES = ("/v1/batches", "/v1/batches/{batch_id}", "/v1/batches/{batch_id}/cancel")


def events(gw: RunningGateway, redis_url: str, endpoint: str, count: int) -> list[dict[str, Any]]:
    return usage_events(gw, redis_url, endpoint, count)


def self_view(gw: RunningGateway) -> dict[str, Any]:
    answer = httpx.get(gw.root_url + "/admin/v1/self", headers={"authorization": f"Bearer {GATEWAY_KEY}"})
    assert answer.status_code == 200, answer.text
    view: dict[str, Any] = answer.json()
    return view


def finished_batch(gw: RunningGateway, fake: FakeProviders, client: openai.OpenAI, *models: str) -> str:
    source = client.files.create(file=("in.jsonl", batch_lines(*models)), purpose="batch")
    batch = client.batches.create(
        input_file_id=source.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    advance(fake, gw, batch.id, 3)
    return batch.id


def test_every_operation_is_settled_with_a_zero_token_usage_event(
    gateway_factory: GatewayFactory, fake: FakeProviders, redis_url: str
) -> None:
    gw = gateway_factory(surface_config(fake, redis_url))
    client = gw.openai()
    notes = client.files.create(file=("notes.txt", b"some notes"), purpose="user_data")
    list(client.files.list())
    client.files.retrieve(notes.id)
    client.files.content(notes.id)
    client.files.delete(notes.id)
    source = client.files.create(file=("in.jsonl", batch_lines("gpt-4o-mini")), purpose="batch")
    batch = client.batches.create(
        input_file_id=source.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    list(client.batches.list())
    client.batches.retrieve(batch.id)
    client.batches.cancel(batch.id)

    counts = {"/v1/files": 3, "/v1/files/{file_id}": 2, "/v1/files/{file_id}/content": 1}
    counts |= {"/v1/batches": 2, "/v1/batches/{batch_id}": 1, "/v1/batches/{batch_id}/cancel": 1}
    for route, count in counts.items():
        found = events(gw, redis_url, route, count)
        assert len(found) == count, (route, found)
        for event in found:
            assert event["status"] == 200
            assert [event.get(f, 0) for f in ("input_tokens", "output_tokens", "cost_nusd")] == [0, 0, 0]
            assert event["usage_source"] == "reported"
    # A plain file names no model; a batch and its file name theirs.
    by_route = {route: events(gw, redis_url, route, count) for route, count in counts.items()}
    assert {e.get("model") for e in by_route["/v1/files/{file_id}"]} == {""}
    assert {e.get("model") for e in by_route["/v1/batches"]} == {"", "gpt-4o-mini"}


def test_file_and_batch_operations_count_against_the_keys_requests_per_minute(
    gateway_factory: GatewayFactory, fake: FakeProviders, redis_url: str
) -> None:
    config = surface_config(fake, redis_url)
    config["auth"]["keys"][0]["limits"] = {"rpm": 3}
    gw = gateway_factory(config)
    client = gw.openai()
    notes = client.files.create(file=("notes.txt", b"x"), purpose="user_data")
    client.files.retrieve(notes.id)
    list(client.batches.list())
    for call in (lambda: client.files.list(), lambda: client.files.content(notes.id)):
        with pytest.raises(openai.RateLimitError) as info:
            call()
        assert info.value.response.headers["x-ratelimit-limit-requests"] == "3"
    # The refused calls never reached the provider.
    assert len(fake.requests(path="/openai/v1/files")) == 1
    assert fake.requests(path=f"/openai/v1/files/{notes.id}/content") == []


def test_a_batch_whose_models_the_key_may_no_longer_use_is_refused(
    gateway_factory: GatewayFactory, fake: FakeProviders, redis_url: str
) -> None:
    """The same key on a second replica whose config allows it fewer models: its batch, the
    batch's input and output files all involve a model it may not use (403), its plain files
    and its listings do not."""
    config = surface_config(fake, redis_url)
    gw = gateway_factory(config)
    client = gw.openai()
    batch_id = finished_batch(gw, fake, client, "gpt-4o-mini")
    done = client.batches.retrieve(batch_id)
    assert done.output_file_id is not None
    notes = client.files.create(file=("notes.txt", b"x"), purpose="user_data")

    narrowed = json.loads(json.dumps(config))
    narrowed["auth"]["keys"][0]["models"] = ["llama"]
    other = gateway_factory(narrowed).openai()
    for call in (
        lambda: other.batches.retrieve(batch_id),
        lambda: other.batches.cancel(batch_id),
        lambda: other.files.retrieve(done.input_file_id),
        lambda: other.files.content(done.output_file_id or ""),
    ):
        with pytest.raises(openai.PermissionDeniedError) as info:
            call()
        assert info.value.body["code"] == "model_not_allowed"  # type: ignore[index]
    assert other.files.retrieve(notes.id).id == notes.id
    assert batch_id in [b.id for b in other.batches.list()]


def charge_events(gw: RunningGateway, redis_url: str) -> list[dict[str, Any]]:
    return [e for e in events(gw, redis_url, "/v1/batches", 1) if e["usage_source"] == "batch"]


def output_usage(client: openai.OpenAI, output_file_id: str) -> Usage:
    lines = [json.loads(line) for line in client.files.content(output_file_id).content.splitlines()]
    usages = [line["response"]["body"]["usage"] for line in lines]
    return Usage(
        input_tokens=sum(u["prompt_tokens"] for u in usages),
        output_tokens=sum(u["completion_tokens"] for u in usages),
    )


def test_a_finished_batch_is_charged_once_at_batch_prices_to_its_key_and_team(
    gateway_factory: GatewayFactory, fake: FakeProviders, redis_url: str
) -> None:
    config = surface_config(fake, redis_url)
    config["teams"] = [{"id": "research", "budgets": [{"window": "day", "limit_usd": 100}]}]
    config["auth"]["keys"][0] |= {"team": "research", "budgets": [{"window": "day", "limit_usd": 50}]}
    gw = gateway_factory(config)
    client = gw.openai()
    batch_id = finished_batch(gw, fake, client, "gpt-4o-mini", "gpt-4o-mini", "gpt-4o-mini")
    before = self_view(gw)

    done = client.batches.retrieve(batch_id)  # read completed: charged
    assert done.status == "completed" and done.output_file_id is not None
    [charge] = [e for e in events(gw, redis_url, "/v1/batches", 2) if e["usage_source"] == "batch"]
    used = output_usage(client, done.output_file_id)  # read again: not charged again
    assert used.input_tokens > 0 and used.output_tokens > 0
    assert (charge["input_tokens"], charge["output_tokens"]) == (used.input_tokens, used.output_tokens)
    assert charge["model"] == "gpt-4o-mini" and charge["provider"] == "fake-openai"
    assert charge["request_id"] == batch_id and charge["status"] == 200
    full = PriceTable().cost(used, "gpt-4o-mini")
    assert full > 0 and charge["cost_nusd"] == round(full * 0.5)

    client.batches.retrieve(batch_id)
    list(client.batches.list())
    events(gw, redis_url, "/v1/batches/{batch_id}", 2)  # settled after any charge they made
    after = self_view(gw)
    assert after["spend_nusd"]["day"] - before["spend_nusd"]["day"] == charge["cost_nusd"]
    [team_before], [team_after] = (v["team"]["budgets_remaining_usd"] for v in (before, after))
    assert team_before["remaining_usd"] - team_after["remaining_usd"] == pytest.approx(
        charge["cost_nusd"] / 1e9
    )
    assert len([e for e in events(gw, redis_url, "/v1/batches", 1) if e["usage_source"] == "batch"]) == 1


def test_reading_the_output_first_charges_it_and_a_failed_read_is_charged_later(
    gateway_factory: GatewayFactory, fake: FakeProviders, redis_url: str
) -> None:
    gw = gateway_factory(surface_config(fake, redis_url))
    client = gw.openai()
    first = finished_batch(gw, fake, client, "gpt-4o-mini")
    # The output file becomes the caller's when the batch is read; the charge's own read of it
    # fails (a 401, which the gateway does not retry): nothing is charged, the client's call is
    # unharmed.
    fake.script([{}, {}, {"fault": "401"}])
    done = client.batches.retrieve(first)
    assert done.status == "completed" and done.output_file_id is not None
    assert all(e["usage_source"] != "batch" for e in events(gw, redis_url, "/v1/batches", 1))
    client.files.content(done.output_file_id)  # the output downloaded: charged now
    [charge] = poll_charges(gw, redis_url, 1)
    assert charge["request_id"] == first
    client.batches.retrieve(first)
    client.files.content(done.output_file_id)
    events(gw, redis_url, "/v1/files/{file_id}/content", 2)  # settled after any charge they made
    assert len(poll_charges(gw, redis_url, 1)) == 1


def poll_charges(gw: RunningGateway, redis_url: str, count: int) -> list[dict[str, Any]]:
    def found() -> list[dict[str, Any]] | None:
        charges = charge_events(gw, redis_url)
        return charges if len(charges) >= count else None

    return poll_until(found, what=f"{count} batch charges")


def test_two_replicas_reading_a_finished_batch_at_once_charge_it_once(
    gateway_factory: GatewayFactory, fake: FakeProviders, redis_url: str
) -> None:
    config = surface_config(fake, redis_url)
    one = gateway_factory(config)
    two = gateway_factory(config)  # the same Redis prefix: replicas of one gateway
    client = one.openai()
    batch_id = finished_batch(one, fake, client, "gpt-4o-mini")
    barrier = threading.Barrier(4)
    failures: list[BaseException] = []

    def read(gw: RunningGateway) -> None:
        try:
            barrier.wait()
            assert gw.openai().batches.retrieve(batch_id).status == "completed"
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=read, args=(gw,)) for gw in (one, two, one, two)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert failures == []
    events(one, redis_url, "/v1/batches/{batch_id}", 4)  # each replica settles a charge before its read
    [charge] = poll_charges(one, redis_url, 1)
    assert charge["request_id"] == batch_id
    assert len(poll_charges(two, redis_url, 1)) == 1
