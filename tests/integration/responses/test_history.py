"""Materialized chain histories on a real Redis: a follow-up reads its whole chain in the same
number of Redis commands at any depth; branches get their own copy and stay correct; a deleted or
expired ancestor still breaks the chain; a chain whose list is gone is read record by record; and
over HTTP a branch replays only its own ancestors."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis

from fake_providers.testing import FakeProviders
from gateway.responses.store import ChainBroken, HistoryTurn, NewRecord, ResponseMeta, ResponseStore
from tests.conftest import GatewayFactory, RunningGateway
from tests.integration.responses.support import CHAT_PATH, post, responses_config

OWNER = "owner0000001"


@pytest.fixture
async def store(redis_url: str) -> AsyncIterator[ResponseStore]:
    client = aioredis.Redis.from_url(redis_url)
    prefix = f"gwhisttest{id(client)}:"
    try:
        yield ResponseStore(client, prefix=prefix, ttl=600)
    finally:
        keys = [key async for key in client.scan_iter(match=prefix + "*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()


async def add(store: ResponseStore, name: str, parent: ResponseMeta | None) -> ResponseMeta:
    """What ``Turn.save`` does: place the turn in a history list, then write the record."""
    block, tails = parent.child_links() if parent is not None else ((), ())
    items: list[dict[str, Any]] = [{"id": f"in-{name}", "type": "message", "role": "user", "content": []}]
    output: list[dict[str, Any]] = [
        {"id": f"out-{name}", "type": "message", "role": "assistant", "content": []}
    ]
    placed = await store.extend_history(parent, HistoryTurn(name, items, output))
    assert placed is not None
    meta = ResponseMeta(
        id=name,
        owner=OWNER,
        model="m",
        deployment="p/m",
        api="chat",
        status="completed",
        created_at=1,
        parent=parent.id if parent is not None else None,
        depth=parent.depth + 1 if parent is not None else 0,
        block=block,
        tails=tails,
        history=placed[0],
        history_length=placed[1],
    )
    await store.save(NewRecord(meta=meta, input=items, output=output, body={"id": name, "output": output}))
    return meta


async def chain(
    store: ResponseStore, length: int, name: str, start: ResponseMeta | None = None
) -> list[ResponseMeta]:
    metas: list[ResponseMeta] = []
    parent = start
    for n in range(length):
        parent = await add(store, f"{name}{n}", parent)
        metas.append(parent)
    return metas


class Counter:
    """Counts the commands a client sends (a pipeline counts once: one round trip)."""

    def __init__(self, client: Any) -> None:
        self.calls = 0
        original = client.execute_command

        async def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls += 1
            return await original(*args, **kwargs)

        client.execute_command = counted


async def test_a_follow_up_reads_its_chain_in_the_same_commands_at_any_depth(store: ResponseStore) -> None:
    short = await chain(store, 2, "s")
    deep = await chain(store, 200, "d")
    counter = Counter(store._redis)
    turns = await store.read_history(short[-1])
    shallow_calls = counter.calls
    counter.calls = 0
    deep_turns = await store.read_history(deep[-1])
    assert counter.calls == shallow_calls == 2  # LRANGE, then one EXISTS over every ancestor
    assert turns is not None and [t.id for t in turns] == ["s0", "s1"]
    assert deep_turns is not None and [t.id for t in deep_turns] == [f"d{n}" for n in range(200)]
    # Appending a turn to a chain that did not branch is one script, whatever the depth.
    counter.calls = 0
    await store.extend_history(deep[-1], HistoryTurn("d200", [], []))
    assert counter.calls == 1
    # One list per unbranched chain.
    assert {m.history for m in deep} == {"d0"}


async def test_branches_get_their_own_history(store: ResponseStore) -> None:
    trunk = await chain(store, 8, "t")
    branch = await chain(store, 2, "b", start=trunk[3])
    trunk_more = await chain(store, 1, "u", start=trunk[-1])
    again = await chain(store, 1, "c", start=trunk[3])
    assert branch[0].history != trunk[0].history  # the list went on: the branch copied its part
    assert trunk_more[0].history == trunk[0].history  # the trunk's own list goes on in place

    def ids(turns: list[HistoryTurn] | None) -> list[str]:
        assert turns is not None
        return [t.id for t in turns]

    assert ids(await store.read_history(branch[-1])) == ["t0", "t1", "t2", "t3", "b0", "b1"]
    assert ids(await store.read_history(trunk_more[-1])) == [*(f"t{n}" for n in range(8)), "u0"]
    assert ids(await store.read_history(again[-1])) == ["t0", "t1", "t2", "t3", "c0"]
    assert ids(await store.read_history(trunk[2])) == ["t0", "t1", "t2"]
    # The record-by-record reading agrees everywhere.
    for meta in (branch[-1], trunk_more[-1], again[-1]):
        assert [a.meta.id for a in await store.read_chain(meta)] == ids(await store.read_history(meta))


async def test_a_missing_ancestor_still_breaks_the_chain(store: ResponseStore) -> None:
    metas = await chain(store, 6, "r")
    await store.delete("r2", OWNER)
    with pytest.raises(ChainBroken) as broken:
        await store.read_history(metas[-1])
    assert broken.value.missing == "r2"


async def test_a_chain_whose_list_is_gone_is_read_record_by_record(store: ResponseStore) -> None:
    metas = await chain(store, 4, "g")
    assert metas[-1].history is not None
    await store._redis.delete(store.history_key(metas[-1].history))
    assert await store.read_history(metas[-1]) is None
    # A follow-up rebuilds a list from the records.
    placed = await store.extend_history(metas[-1], HistoryTurn("g4", [], []))
    assert placed == ("g4", 5)


@pytest.fixture
def gw(gateway_factory: GatewayFactory, fake: FakeProviders, redis_url: str) -> RunningGateway:
    return gateway_factory(responses_config(fake, redis_url))


def test_a_branch_replays_only_its_own_ancestors(gw: RunningGateway, fake: FakeProviders) -> None:
    root = post(gw, {"model": "chat-model", "input": "root"}).json()
    left = post(gw, {"model": "chat-model", "input": "left", "previous_response_id": root["id"]}).json()
    post(gw, {"model": "chat-model", "input": "left again", "previous_response_id": left["id"]})
    right = post(gw, {"model": "chat-model", "input": "right", "previous_response_id": root["id"]}).json()
    tip = post(gw, {"model": "chat-model", "input": "tip", "previous_response_id": right["id"]})
    assert tip.status_code == 200, tip.text
    sent = fake.requests(path=CHAT_PATH)[-1].body
    assert [m["content"] for m in sent["messages"]] == [
        "root",
        "You said: root",
        "right",
        "You said: right",
        "tip",
    ]
