"""Upgrading from the previous release (key layout 1, commit 1c6596f): what it stored is found by
this one. The data comes from that release itself, twice over: tests/fixtures/redis_layout_v1.json
(every key it wrote, dumped once from a run of it; always tested) and, when the repository has
that commit, a fresh run of the release in a copy of it. Either is loaded into a private
redis-server, then this gateway starts on it: the admin-created key authenticates with its spend
and budgets, usage and audit read back, the Responses chain continues by previous_response_id, the
chat's messages and event stream (by its old event ids) are there and it takes another turn, and
a second start finds the layout version and leaves everything alone."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import shutil
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
import redis.asyncio as aioredis

from fake_providers.testing import FakeProviders
from gateway.chats.store import chat_key
from gateway.clock import ManualClock
from gateway.redis.migrate import (
    LAYOUT,
    RETRY_SECONDS,
    WAIT_SECONDS,
    lock_key,
    migrate_at_start,
    migrate_layout,
    new_chat_name,
    version_key,
)
from gateway.testing import AutoAdvance, base_config, poll_until, redis_server, serve_gateway

ROOT = Path(__file__).resolve().parents[3]
FIXTURE = ROOT / "tests" / "fixtures" / "redis_layout_v1.json"
GENERATOR = ROOT / "tests" / "fixtures" / "redis_layout_v1_generate.py"
OLD_RELEASE = "1c6596f"
CHAT_SUFFIXES = ("", ":msgs", ":events")


# -- loading a dump --------------------------------------------------------------------------
def _bytes(value: Any) -> bytes:
    if isinstance(value, dict):
        return base64.b64decode(value["base64"])
    return str(value).encode()


def load_dump(client: redis.Redis, dump: dict[str, Any]) -> None:
    """Write every key of ``dump`` (the generator's format) as the old release left it."""
    for name, entry in dump["keys"].items():
        kind, value = entry["type"], entry["value"]
        if kind == "string":
            client.set(name, _bytes(value))
        elif kind == "hash":
            client.hset(name, mapping={k: _bytes(v) for k, v in value.items()})
        elif kind == "zset":
            client.zadd(name, {_bytes(m): s for m, s in value})
        elif kind == "list":
            client.rpush(name, *[_bytes(v) for v in value])
        elif kind == "set":
            client.sadd(name, *[_bytes(v) for v in value])
        elif kind == "stream":
            for entry_id, fields in value:
                client.xadd(name, {k: _bytes(v) for k, v in fields.items()}, id=entry_id)
            for group in entry["groups"]:
                client.xgroup_create(name, group["name"], id=group["last_delivered_id"], mkstream=True)
        else:
            raise AssertionError(f"{name}: type {kind}")
        if entry["pttl"]:
            client.pexpire(name, entry["pttl"])


def run_old_release(scratch: Path) -> dict[str, Any]:
    """The previous release run in a copy of itself, writing its dump (the generator's docstring
    gives the same commands)."""
    tree = scratch / "old-release"
    tree.mkdir()
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", OLD_RELEASE], check=True, capture_output=True, timeout=120
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(tree, filter="data")
    shutil.copy(GENERATOR, tree / "tests" / "test_generate_layout_v1.py")
    out = scratch / "layout_v1.json"
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_generate_layout_v1.py"],
        cwd=tree,
        env={
            "PATH": "/usr/bin:/bin",
            "PYTHONPATH": str(tree),
            "LAYOUT_V1_OUT": str(out),
            "HOME": str(scratch),
        },
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    dump: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    return dump


def _has_old_release() -> bool:
    if shutil.which("git") is None:
        return False
    probe = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--verify", "--quiet", f"{OLD_RELEASE}^{{commit}}"],
        capture_output=True,
        timeout=30,
    )
    return probe.returncode == 0


@pytest.fixture(params=["fixture", "old-release"])
def dump(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, Any]]:
    if request.param == "fixture":
        yield json.loads(FIXTURE.read_text(encoding="utf-8"))
        return
    if not _has_old_release():
        pytest.skip(f"this clone has no commit {OLD_RELEASE} (the previous release) to run")
    yield run_old_release(tmp_path)


# -- the upgrade -----------------------------------------------------------------------------
def _config(fake: FakeProviders, url: str, dump: dict[str, Any]) -> dict[str, Any]:
    config = base_config(fake, url)
    config["redis"]["key_prefix"] = dump["prefix"]
    config["admin"] = {"keys": [{"name": "ops", "key": dump["meta"]["admin_key"]}]}
    return config


def _old_chat_keys(client: redis.Redis, prefix: str, chat_id: str) -> list[str]:
    return [f"{prefix}chat:{{{chat_id}}}{s}" for s in CHAT_SUFFIXES]


def _sse(response: httpx.Response, until: int) -> list[dict[str, str]]:
    events: list[dict[str, str]] = []
    block: dict[str, str] = {}
    for line in response.iter_lines():
        if not line:
            if "data" in block:
                events.append(block)
                if len(events) >= until:
                    return events
            block = {}
            continue
        field, _, value = line.partition(":")
        block[field] = value.lstrip()
    return events


def test_the_previous_release_data_is_found_after_the_upgrade(dump: dict[str, Any]) -> None:
    meta, prefix = dump["meta"], dump["prefix"]
    kid, chat_id, chain = meta["key_id"], meta["chat_id"], meta["response_chain"]
    with redis_server() as server, FakeProviders() as fake:
        client = redis.Redis.from_url(server.url)
        load_dump(client, dump)
        old_chat = _old_chat_keys(client, prefix, chat_id)
        assert all(client.exists(k) for k in old_chat)
        config = _config(fake, server.url, dump)
        with serve_gateway(config, clock=ManualClock()) as gw:
            # The chat's keys now have this release's names; nothing else moved.
            assert client.get(version_key(prefix)) == str(LAYOUT).encode()
            for old in old_chat:
                assert not client.exists(old)
                new = new_chat_name(prefix, old)
                assert new is not None and new.startswith(chat_key(prefix, chat_id))
                assert client.exists(new)
            left = {k.decode() for k in client.scan_iter(match=prefix + "*")}
            moved = {new_chat_name(prefix, k) or k for k in dump["keys"]}
            assert moved - left <= {n for n, e in dump["keys"].items() if e["pttl"] and e["pttl"] < 60_000}

            admin = httpx.Client(
                base_url=gw.root_url + "/admin/v1",
                headers={"authorization": f"Bearer {meta['admin_key']}"},
                timeout=30,
            )
            # The admin-created key: its record, team, budgets and spend.
            key = admin.get(f"/keys/{kid}").json()
            assert key["team_id"] == meta["team_id"] and key["alias"] == "svc"
            assert {b["window"] for b in key["budgets"]} == {"total", "day"}
            assert key["spend_nusd"]["total"] == meta["spend_total_nusd"] > 0
            team = admin.get(f"/teams/{meta['team_id']}").json()
            assert team["spend_nusd"]["total"] == meta["team_spend"]["total"]
            assert [b["window"] for b in team["budgets"]] == ["month"]
            # Usage (the rollups and the usage stream) and the audit stream.
            assert admin.get(f"/keys/{kid}/usage").json()["total"] == meta["key_usage_total"]
            assert [e["action"] for e in admin.get("/audit").json()["data"]] == meta["audit_actions"]

            api = gw.http(key=meta["key_secret"])
            answer = api.post(
                "/v1/chat/completions",
                json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "after"}]},
            )
            assert answer.status_code == 200, answer.text
            poll_until(
                lambda: admin.get(f"/keys/{kid}").json()["spend_nusd"]["total"] > meta["spend_total_nusd"],
                what="the new request's spend added to the old",
            )

            # The Responses chain: read, then continued from its last turn.
            last = api.get(f"/v1/responses/{chain[-1]}")
            assert (
                last.status_code == 200
                and last.json()["output"][0]["content"][0]["text"] == "You said: three"
            )
            follow = api.post(
                "/v1/responses", json={"model": "llama", "input": "four", "previous_response_id": chain[-1]}
            )
            assert follow.status_code == 200, follow.text
            [sent] = fake.requests(path="/vllm/v1/chat/completions")
            users = [m["content"] for m in sent.body["messages"] if m["role"] == "user"]
            assert users == ["one", "two", "three", "four"]
            items = api.get(f"/v1/responses/{follow.json()['id']}/input_items", params={"limit": 100}).json()
            assert len(items["data"]) == 7

            # The chat: listed, its messages, its event stream by its old ids, and one more turn.
            chats = httpx.Client(base_url=gw.root_url + "/api/v1/chats", headers=api.headers, timeout=30)
            assert chat_id in [c["id"] for c in chats.get("").json()["chats"]]
            assert chats.get(f"/{chat_id}").json()["status"] == "waiting"
            messages = chats.get(f"/{chat_id}/messages").json()["messages"]
            assert [[m["role"], m["content"][0]["text"]] for m in messages] == meta["chat_messages"]
            # Resumed after its first event: a status frame with that id, then the old entries.
            old_events = dump["keys"][f"{prefix}chat:{{{chat_id}}}:events"]["value"]
            with chats.stream(
                "GET", f"/{chat_id}/stream", headers={"last-event-id": old_events[0][0]}
            ) as stream:
                assert stream.status_code == 200
                replayed = _sse(stream, until=4)
            assert [e["id"] for e in replayed] == [i for i, _ in old_events[:4]]
            assert replayed[0]["event"] == "status"
            assert [json.loads(e["data"]) for e in replayed[1:]] == [
                json.loads(f["e"]) for _, f in old_events[1:4]
            ]
            assert chats.post(f"/{chat_id}/messages", json={"message": "Third"}).status_code == 200
            poll_until(
                lambda: (
                    len(chats.get(f"/{chat_id}/messages").json()["messages"]) == 6
                    and chats.get(f"/{chat_id}").json()["status"] == "waiting"
                ),
                what="the chat's third turn",
            )

        # A second start: the version key says done, so even a stray old-layout key stays put.
        stray = f"{prefix}chat:{{stray-chat}}"
        client.hset(stray, "id", "stray-chat")
        with serve_gateway(config, clock=ManualClock()):
            assert client.exists(stray)
            assert client.get(version_key(prefix)) == str(LAYOUT).encode()
        client.close()


# -- the migration itself, on a real server --------------------------------------------------
@pytest.fixture
def fixture_server() -> Iterator[tuple[str, dict[str, Any]]]:
    """A private redis-server holding the fixture's old-layout keys."""
    dump = json.loads(FIXTURE.read_text(encoding="utf-8"))
    with redis_server() as server:
        with redis.Redis.from_url(server.url) as client:
            load_dump(client, dump)
        yield server.url, dump


def _chat_names(dump: dict[str, Any]) -> list[str]:
    return [n for n in dump["keys"] if new_chat_name(dump["prefix"], n) is not None]


def test_old_chat_names_map_to_the_chat_store_names() -> None:
    for suffix in ("", ":msgs", ":queue", ":events"):
        assert new_chat_name("gw:", f"gw:chat:{{c-1}}{suffix}") == chat_key("gw:", "c-1") + suffix
    for other in (
        chat_key("gw:", "c-1"),
        chat_key("gw:", "c-1") + ":msgs",
        "gw:chat:{c-1}:other",
        "gw:chats:jobs",
        "gw:resp:{resp_1}",
        "other:chat:{c-1}",
        "gw:chat:{}",
    ):
        assert new_chat_name("gw:", other) is None


async def test_two_processes_starting_together_migrate_once(
    fixture_server: tuple[str, dict[str, Any]],
) -> None:
    url, dump = fixture_server
    prefix, clock = dump["prefix"], ManualClock()
    a, b = aioredis.Redis.from_url(url), aioredis.Redis.from_url(url)
    try:
        with AutoAdvance(clock, "redis_layout_wait"):
            reports = await asyncio.gather(migrate_layout(a, prefix, clock), migrate_layout(b, prefix, clock))
        [ran] = [r for r in reports if r.ran]
        [waited] = [r for r in reports if not r.ran]
        assert (ran.found, ran.renamed, ran.skipped) == (1, len(_chat_names(dump)), ())
        assert (waited.found, waited.renamed) == (LAYOUT, 0)
        assert not await a.exists(lock_key(prefix))
        for old in _chat_names(dump):
            new = new_chat_name(prefix, old)
            assert new is not None and await a.exists(new) and not await a.exists(old)
    finally:
        await a.aclose()
        await b.aclose()


async def test_a_process_waits_for_the_one_migrating_and_takes_over_if_it_died(
    fixture_server: tuple[str, dict[str, Any]],
) -> None:
    url, dump = fixture_server
    prefix, clock = dump["prefix"], ManualClock()
    client = aioredis.Redis.from_url(url)
    try:
        # Another process holds the lock: this one waits on the clock and touches nothing.
        await client.set(lock_key(prefix), "other-process", px=60_000)
        waiting = asyncio.create_task(migrate_layout(client, prefix, clock))
        for _ in range(3):
            await clock.wait_for_timer("redis_layout_wait")
            clock.advance(WAIT_SECONDS)
        assert not waiting.done()
        assert all([await client.exists(old) for old in _chat_names(dump)])
        # It dies (its lock runs out) without writing the version: this process takes over.
        await client.pexpire(lock_key(prefix), 1)

        async def move_clock_until_done() -> None:
            while not waiting.done():
                if clock.pending("redis_layout_wait"):
                    clock.advance(WAIT_SECONDS)
                await asyncio.sleep(0.005)

        await asyncio.wait_for(move_clock_until_done(), 10)
        report = waiting.result()
        assert report.ran and report.renamed == len(_chat_names(dump))
        assert await client.get(version_key(prefix)) == str(LAYOUT).encode()
    finally:
        await client.aclose()


async def test_an_old_key_whose_new_name_is_taken_is_left_in_place() -> None:
    with redis_server() as server:
        client = aioredis.Redis.from_url(server.url)
        try:
            prefix = "p[1]*:"  # glob characters in the prefix are matched as themselves
            old, new = f"{prefix}chat:{{c-1}}", chat_key(prefix, "c-1")
            await client.xgroup_create(f"{prefix}chats:jobs", "workers", id="0", mkstream=True)
            await client.hset(old, "id", "old")
            await client.hset(new, "id", "new")
            await client.hset(f"{prefix}chat:{{c-2}}:msgs", "x", "1")  # a wrong type is no matter
            await client.hset("p1x:chat:{c-3}", "id", "another prefix")
            report = await migrate_layout(client, prefix, ManualClock())
            assert report.skipped == (old,) and report.renamed == 1
            assert await client.hget(old, "id") == b"old" and await client.hget(new, "id") == b"new"
            assert await client.exists(chat_key(prefix, "c-2") + ":msgs")
            assert await client.exists("p1x:chat:{c-3}")
        finally:
            await client.aclose()


async def test_redis_down_at_startup_the_migration_runs_when_it_is_back(tmp_path: Path) -> None:
    dump = json.loads(FIXTURE.read_text(encoding="utf-8"))
    prefix, clock = dump["prefix"], ManualClock()
    with redis_server(str(tmp_path)) as server:
        client = aioredis.Redis.from_url(server.url, socket_connect_timeout=1)
        try:
            await client.zadd(f"{prefix}chats:pending", {"c-1": 1.0})  # the one layout-1 index
            for name, entry in dump["keys"].items():
                if new_chat_name(prefix, name) is not None and entry["type"] == "hash":
                    await client.hset(name, mapping={k: _bytes(v) for k, v in entry["value"].items()})
            await client.save()
            server.stop()
            task = await migrate_at_start(client, prefix, clock)
            assert task is not None and not task.done()
            await clock.wait_for_timer("redis_layout_retry")
            clock.advance(RETRY_SECONDS)  # still down: tried, and armed again
            await clock.wait_for_timer("redis_layout_retry")
            assert not task.done()
            server.start()
            clock.advance(RETRY_SECONDS)
            report = await asyncio.wait_for(task, 10)
            assert report.ran and report.renamed == 1
        finally:
            await client.aclose()


async def _scans(client: aioredis.Redis) -> int:
    stats = await client.info("commandstats")
    return int(stats.get("cmdstat_scan", {}).get("calls", 0))


async def test_without_a_layout_1_chat_index_nothing_is_scanned() -> None:
    """A new install (or any prefix the old release never ran chats under) costs a few commands,
    not a SCAN of the whole database; its old-looking keys are then not chats of layout 1."""
    with redis_server() as server:
        client = aioredis.Redis.from_url(server.url)
        try:
            await client.hset("fresh:chat:{looks-old}", "id", "x")
            report = await migrate_layout(client, "fresh:", ManualClock())
            assert (report.ran, report.renamed, await _scans(client)) == (True, 0, 0)
            assert await client.get(version_key("fresh:")) == str(LAYOUT).encode()
            await client.xgroup_create("old:chats:jobs", "workers", id="0", mkstream=True)
            await client.hset("old:chat:{c-1}", "id", "c-1")
            assert (await migrate_layout(client, "old:", ManualClock())).renamed == 1
            assert await _scans(client) >= 1
        finally:
            await client.aclose()
