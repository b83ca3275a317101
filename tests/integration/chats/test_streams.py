"""The chat stream as an SSE client lives it: a client that drops at any frame and reconnects
with the id it holds (``Last-Event-ID`` as EventSource keeps it: the last ``id:`` line it
received) misses nothing; a client joining mid-turn gets the parts streamed so far; a deleted
chat's stream ends and nothing of the chat is left in Redis, even while its turn was streaming."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx
import pytest
import redis
import redis.asyncio as aioredis

from fake_providers.clock import FIRST_PART, GAP
from fake_providers.testing import FakeProviders
from gateway.chats.store import ChatStore, chat_key
from gateway.clock import ManualClock
from tests.conftest import GatewayFactory, RunningGateway, base_config
from tests.integration.chats.helpers import DEADLINE, client, poll, read_events, wait_status
from tests.integration.chats.test_dynamic_tools import CHAT, create

Frame = dict[str, Any]


def frames(
    c: httpx.Client, chat_id: str, last_event_id: str | None, *, count: int | None = None, until: str = ""
) -> list[Frame]:
    """Read the stream until ``count`` frames, or the first frame of type ``until``, or its end.
    Each frame: ``id`` (None when the frame has no ``id:`` line), ``event``, ``data``."""
    headers = {"last-event-id": last_event_id} if last_event_id else {}
    out: list[Frame] = []
    end = time.monotonic() + DEADLINE
    with c.stream("GET", f"/{chat_id}/stream", headers=headers) as response:
        assert response.status_code == 200
        block: dict[str, str] = {}
        for line in response.iter_lines():
            assert time.monotonic() < end, f"timed out; frames so far: {[f['event'] for f in out]}"
            if line.startswith(":"):
                continue
            if line:
                field, _, value = line.partition(": ")
                block[field] = value
                continue
            if "data" not in block:
                continue
            out.append({"id": block.get("id"), "event": block["event"], "data": json.loads(block["data"])})
            block = {}
            if len(out) == count or out[-1]["event"] == until:
                break
    return out


def held_id(received: list[Frame], before: str | None) -> str | None:
    """The id an SSE client holds after ``received``: the last ``id:`` it saw, else what it had."""
    for frame in reversed(received):
        if frame["id"] is not None:
            return str(frame["id"])
    return before


def _order(event_id: str) -> tuple[int, int]:
    ms, seq = event_id.split("-")
    return int(ms), int(seq)


def event_ids(r: redis.Redis, gw: RunningGateway, chat_id: str) -> list[str]:
    raw: Any = r.xrange(chat_key(gw.settings.redis.key_prefix, chat_id) + ":events")
    return [entry_id.decode() for entry_id, _ in raw]


def reconnect(
    c: httpx.Client, r: redis.Redis, gw: RunningGateway, chat_id: str, holding: str | None
) -> list[Frame]:
    """What a client reconnecting with ``holding`` receives before live events."""
    if holding is None:
        return frames(c, chat_id, None, until="queue_update")
    owed = [i for i in event_ids(r, gw, chat_id) if _order(i) > _order(holding)]
    return frames(c, chat_id, holding, count=1 + len(owed))


def test_a_client_dropping_at_any_frame_of_a_resumed_stream_misses_nothing(
    gateway: RunningGateway, fake: FakeProviders, redis_sync: redis.Redis
) -> None:
    chat = create(gateway, dynamic_tools=[])
    with client(gateway) as c:
        wait_status(c, chat["id"], "waiting")
        assert c.post(f"/{chat['id']}/messages", json={"message": "again"}).json()["queued"] is False
        wait_status(c, chat["id"], "waiting")
        history = event_ids(redis_sync, gateway, chat["id"])
        resume_at = history[0]  # the first user message: everything after it is owed
        owed = history[1:]
        for cut in (1, 2, 3):
            first = frames(c, chat["id"], resume_at, count=cut)
            # Every frame of a resumed stream carries an id.
            assert all(f["id"] for f in first)
            holding = held_id(first, resume_at)
            again = reconnect(c, redis_sync, gateway, chat["id"], holding)
            got = {f["id"] for f in first[1:] + again[1:]}
            assert [i for i in owed if i not in got] == [], (cut, holding)


def test_a_client_joining_mid_turn_gets_the_parts_so_far_and_loses_none_when_it_drops(
    gateway: RunningGateway, fake: FakeProviders, redis_sync: redis.Redis
) -> None:
    # The first turn of a new chat stalls after a few chunks: its answer is in flight.
    fake.script([{"fault": "stall-3", "reply": {"text": "one two three four five six"}}])
    chat = create(gateway, dynamic_tools=[])
    with client(gateway) as c:
        read_events(
            c,
            chat["id"],
            lambda evs: sum(1 for e in evs if e["event"] == "message_part") >= 2,
            last_event_id="0-0",
        )
        snapshot = frames(c, chat["id"], None, until="queue_update")
        assert snapshot[0]["event"] == "status"
        assert snapshot[0]["data"]["status"]["status"] == "running"
        assert [f["event"] for f in snapshot[1:2]] == ["message"]
        # The parts streamed so far, each with its own id, in order.
        streamed = read_events(
            c,
            chat["id"],
            lambda evs: sum(1 for e in evs if e["event"] == "message_part") >= 2,
            last_event_id="0-0",
        )
        parts = [f for f in snapshot if f["event"] == "message_part"]
        assert len(parts) >= 2
        assert [p["id"] for p in parts] == [e["id"] for e in streamed if e["event"] == "message_part"][
            : len(parts)
        ]
        # Ids never go backwards and the snapshot's last frame carries the newest.
        ids = [f["id"] for f in snapshot if f["id"] is not None]
        assert ids == sorted(ids, key=_order) and snapshot[-1]["id"] == ids[-1]

        # A client that drops anywhere in the snapshot and reconnects with what it holds gets
        # every message and part it had not received yet.
        def owed(fs: list[Frame]) -> set[str]:
            return {
                f"message {f['data']['message']['id']}" if f["event"] == "message" else f"part {f['id']}"
                for f in fs
                if f["event"] in ("message", "message_part")
            }

        for cut in range(1, len(snapshot)):
            holding = held_id(snapshot[:cut], None)
            again = reconnect(c, redis_sync, gateway, chat["id"], holding)
            assert owed(snapshot) <= owed(snapshot[:cut] + again), (cut, holding)
        assert c.post(f"/{chat['id']}/interrupt").json()["status"] == "waiting"


@pytest.fixture
def slow_gateway(gateway_factory: GatewayFactory, fake: FakeProviders, redis_url: str) -> RunningGateway:
    config = base_config(fake, redis_url)
    config["models"] = [
        *config["models"],
        {"name": "slow", "provider": "fake-openai", "upstream_model": SLOW},
    ]
    return gateway_factory(config)


SLOW = "fault-slow-10ms-100ms"


def test_deleting_a_streaming_chat_ends_its_stream_and_leaves_nothing(
    slow_gateway: RunningGateway, fake: FakeProviders, fake_clock: ManualClock, redis_sync: redis.Redis
) -> None:
    gw = slow_gateway
    words = " ".join(f"w{i}" for i in range(40))
    prefix = gw.settings.redis.key_prefix
    with client(gw) as c, client(gw) as other:
        created = c.post("", json={"model": "slow", "message": words})
        assert created.status_code == 201, created.text
        chat_id = created.json()["id"]
        # The upstream answer sends its first three chunks, then waits on the fakes' clock for
        # the next: the turn is streaming, and stays so until the test moves that clock.
        fake_clock.fire(FIRST_PART)
        fake_clock.fire(GAP)
        fake_clock.fire(GAP)
        fake_clock.wait_for_timer_blocking(GAP)
        deleted = False
        end = time.monotonic() + DEADLINE
        with c.stream("GET", f"/{chat_id}/stream", headers={"last-event-id": "0-0"}) as response:
            for line in response.iter_lines():
                assert time.monotonic() < end, "the stream of a deleted chat did not end"
                if not deleted and line == "event: message_part":
                    assert other.delete(f"/{chat_id}").status_code == 204
                    deleted = True
        assert deleted
        assert c.get(f"/{chat_id}").status_code == 404

    jobs = f"{prefix}chats:jobs"
    poll(lambda: redis_sync.xpending(jobs, "workers")["pending"] == 0, what="the turn to end")
    # Nothing the turn did after the deletion wrote the chat back.
    assert redis_sync.keys(chat_key(prefix, chat_id) + "*") == []
    owners: Any = redis_sync.keys(f"{prefix}chats:owner:*")
    assert all(redis_sync.zscore(k, chat_id) is None for k in owners)
    # The upstream stream was abandoned, not read to the end.
    assert len(fake.requests(path=CHAT, model=SLOW)) == 1
    poll(lambda: fake.status()["active_replies"] == 0, what="the upstream answer to be abandoned")
    assert fake_clock.history(GAP)[-1] == "cancelled"


def test_only_the_worker_running_a_chat_adds_to_its_stream(
    gateway: RunningGateway, fake: FakeProviders, redis_sync: redis.Redis, redis_url: str
) -> None:
    fake.script([{"fault": "stall-3", "reply": {"text": "one two three four five six"}}])
    chat = create(gateway, dynamic_tools=[])
    chat_id = chat["id"]
    prefix = gateway.settings.redis.key_prefix
    events_key = chat_key(prefix, chat_id) + ":events"
    part = {"type": "message_part", "chat_id": chat_id, "message_part": {"role": "assistant", "part": {}}}

    async def publish(chat: str, worker: str) -> str | None:
        r = aioredis.from_url(redis_url)
        try:
            return await ChatStore(r, prefix).publish(chat, worker, part)
        finally:
            await r.aclose()

    with client(gateway) as c:
        read_events(
            c, chat_id, lambda evs: any(e["event"] == "message_part" for e in evs), last_event_id="0-0"
        )
        raw: Any = redis_sync.hget(chat_key(prefix, chat_id), "worker")
        worker = raw.decode()
        before = redis_sync.xlen(events_key)
        # A worker that lost the chat (taken over after a stall) and a deleted chat: nothing.
        assert asyncio.run(publish(chat_id, "w-stranger")) is None
        assert asyncio.run(publish("no-such-chat", worker)) is None
        assert redis_sync.keys(chat_key(prefix, "no-such-chat") + "*") == []
        assert redis_sync.xlen(events_key) == before
        # The worker running it: added.
        added = asyncio.run(publish(chat_id, worker))
        assert added is not None and redis_sync.xlen(events_key) == before + 1
        # Once interrupted, the turn's late parts are not added after the `waiting` status.
        assert c.post(f"/{chat_id}/interrupt").json()["status"] == "waiting"
        assert asyncio.run(publish(chat_id, worker)) is None
