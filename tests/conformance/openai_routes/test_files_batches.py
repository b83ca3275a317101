"""Files and batches through the official OpenAI SDK: owner-scoped, routed by their ids."""

from __future__ import annotations

import json
from typing import Any

import httpx
import openai
import pytest

from fake_providers.testing import FakeProviders
from gateway.openai_routes.objects import where
from gateway.testing import RunningGateway, add_anthropic
from tests.conformance.openai_routes.support import metric_lines, surface_config, usage_events
from tests.conftest import OTHER_KEY, AutoAdvance, GatewayFactory


def batch_lines(*models: str) -> bytes:
    lines = [
        {
            "custom_id": f"req-{i}",
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {"model": model, "messages": [{"role": "user", "content": f"question {i}"}]},
        }
        for i, model in enumerate(models)
    ]
    return b"".join(json.dumps(line).encode() + b"\n" for line in lines)


def advance(fake: FakeProviders, gw: RunningGateway, batch_id: str, steps: int) -> None:
    found = where("batches", batch_id)
    assert found is not None
    for _ in range(steps):
        assert httpx.post(fake.url(f"/_fake/batches/{found[1]}/advance")).status_code == 200


def test_a_file_is_its_owners_only(
    gateway_factory: GatewayFactory, fake: FakeProviders, redis_url: str
) -> None:
    gw = gateway_factory(surface_config(fake, redis_url))
    mine, theirs = gw.openai(), gw.openai(api_key=OTHER_KEY)
    uploaded = mine.files.create(file=("notes.txt", b"some notes"), purpose="user_data")
    assert uploaded.id.startswith("file-") and uploaded.filename == "notes.txt" and uploaded.bytes == 10
    assert where("files", uploaded.id) is not None
    other = theirs.files.create(file=("theirs.txt", b"other notes"), purpose="assistants")

    assert [f.id for f in mine.files.list()] == [uploaded.id]
    assert [f.id for f in theirs.files.list()] == [other.id]
    assert mine.files.retrieve(uploaded.id).id == uploaded.id
    assert mine.files.content(uploaded.id).content == b"some notes"
    for call in (
        lambda: theirs.files.retrieve(uploaded.id),
        lambda: theirs.files.content(uploaded.id),
        lambda: theirs.files.delete(uploaded.id),
        lambda: mine.files.retrieve("file-not-one-of-ours"),
    ):
        with pytest.raises(openai.NotFoundError):
            call()
    assert [f.id for f in mine.files.list(purpose="assistants")] == []

    deleted = mine.files.delete(uploaded.id)
    assert deleted.deleted is True and deleted.id == uploaded.id
    assert list(mine.files.list()) == []
    with pytest.raises(openai.NotFoundError):
        mine.files.retrieve(uploaded.id)
    assert [f.id for f in theirs.files.list()] == [other.id]


def test_a_batch_file_gets_the_upstream_model_names_and_checks_the_keys_models(
    gateway_factory: GatewayFactory, fake: FakeProviders, redis_url: str
) -> None:
    config = surface_config(fake, redis_url)
    config["models"].append({"name": "mini", "provider": "fake-openai", "upstream_model": "gpt-4o-mini"})
    config["auth"]["keys"][1]["models"] = ["mini"]
    gw = gateway_factory(config)
    uploaded = gw.openai().files.create(
        file=("in.jsonl", batch_lines("mini", "gpt-4o-mini")), purpose="batch"
    )
    sent = fake.requests(path="/openai/v1/files")[-1].body
    assert '"model":"gpt-4o-mini"' in sent and '"mini"' not in sent

    theirs = gw.openai(api_key=OTHER_KEY)
    with pytest.raises(openai.PermissionDeniedError):
        theirs.files.create(file=("in.jsonl", batch_lines("gpt-4o-mini")), purpose="batch")
    with pytest.raises(openai.BadRequestError) as info:
        gw.openai().files.create(file=("in.jsonl", batch_lines("nope")), purpose="batch")
    assert "Line 1" in info.value.message
    with pytest.raises(openai.NotFoundError):
        theirs.batches.create(
            input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
        )
    [event] = usage_events(gw, redis_url, "/v1/files", 1)
    assert event["model"] == "mini" and event["status"] == 200


def test_a_batch_from_creation_to_its_output(
    gateway_factory: GatewayFactory, fake: FakeProviders, redis_url: str
) -> None:
    gw = gateway_factory(surface_config(fake, redis_url))
    client, theirs = gw.openai(), gw.openai(api_key=OTHER_KEY)
    source = client.files.create(
        file=("in.jsonl", batch_lines("gpt-4o-mini", "gpt-4o-mini")), purpose="batch"
    )
    batch = client.batches.create(
        input_file_id=source.id,
        endpoint="/v1/chat/completions",
        completion_window="24h",
        metadata={"run": "1"},
    )
    assert batch.id.startswith("batch_") and batch.input_file_id == source.id and batch.status == "validating"
    sent = fake.requests(path="/openai/v1/batches")[-1].body
    found = where("files", source.id)
    assert found is not None and sent["input_file_id"] == found[1]

    assert [b.id for b in client.batches.list()] == [batch.id]
    assert list(theirs.batches.list()) == []
    with pytest.raises(openai.NotFoundError):
        theirs.batches.retrieve(batch.id)
    with pytest.raises(openai.NotFoundError):
        theirs.batches.cancel(batch.id)

    advance(fake, gw, batch.id, 3)
    done = client.batches.retrieve(batch.id)
    assert done.status == "completed" and done.output_file_id is not None
    assert done.request_counts is not None and done.request_counts.completed == 2
    output = client.files.content(done.output_file_id).content
    answers = [json.loads(line) for line in output.splitlines()]
    assert [a["custom_id"] for a in answers] == ["req-0", "req-1"]
    assert answers[0]["response"]["body"]["choices"][0]["message"]["content"] == "You said: question 0"
    # The output is one of the caller's files now, and no one else's.
    assert done.output_file_id in [f.id for f in client.files.list()]
    with pytest.raises(openai.NotFoundError):
        theirs.files.content(done.output_file_id)


def test_cancel_a_batch_and_the_unsupported_cases(
    gateway_factory: GatewayFactory, fake: FakeProviders, redis_url: str
) -> None:
    config = add_anthropic(surface_config(fake, redis_url), fake)
    gw = gateway_factory(config)
    client = gw.openai()
    notes = client.files.create(file=("notes.txt", b"x"), purpose="user_data")
    with pytest.raises(openai.BadRequestError) as info:
        client.batches.create(
            input_file_id=notes.id, endpoint="/v1/chat/completions", completion_window="24h"
        )
    assert info.value.body["param"] == "input_file_id"  # type: ignore[index]

    source = client.files.create(file=("in.jsonl", batch_lines("gpt-4o-mini")), purpose="batch")
    batch = client.batches.create(
        input_file_id=source.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    assert client.batches.cancel(batch.id).status == "cancelling"
    advance(fake, gw, batch.id, 1)
    assert client.batches.retrieve(batch.id).status == "cancelled"

    # Claude's provider serves no files: a batch of Claude requests is refused up front.
    with pytest.raises(openai.BadRequestError) as info:
        client.files.create(file=("in.jsonl", batch_lines("claude")), purpose="batch")
    assert "claude" in info.value.message


def test_a_files_call_is_retried_and_counted(
    gateway_factory: GatewayFactory, fake: FakeProviders, redis_url: str
) -> None:
    gw = gateway_factory(surface_config(fake, redis_url))
    client = gw.openai()
    uploaded = client.files.create(file=("notes.txt", b"x"), purpose="user_data")
    fake.script([{"fault": "503"}])
    with AutoAdvance(gw.clock):
        raw = client.files.with_raw_response.retrieve(uploaded.id)
    assert raw.headers["x-gateway-attempts"] == "2"
    lines = metric_lines(gw, "gw_requests_total", "/v1/files/{file_id}")
    assert any('status_class="2xx"' in line for line in lines), lines


def test_other_methods_are_405(gateway_factory: GatewayFactory, fake: FakeProviders, redis_url: str) -> None:
    gw = gateway_factory(surface_config(fake, redis_url))
    answers: list[Any] = []
    with gw.http() as http:
        answers.append(http.get("/v1/embeddings"))
        answers.append(http.put("/v1/files"))
    assert [a.status_code for a in answers] == [405, 405]
    assert all(a.json()["error"]["code"] == "method_not_allowed" for a in answers)
