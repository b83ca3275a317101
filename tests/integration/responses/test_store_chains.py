"""The record store on a real Redis: long chains listed in a bounded number of reads, links that
stay small however long a chain grows, forks, and ownership inside a chain."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis

from gateway.responses.store import BLOCK, ChainBroken, NewRecord, ResponseMeta, ResponseStore

OWNER = "owner0000001"


@pytest.fixture
async def store(redis_url: str) -> AsyncIterator[ResponseStore]:
    client = aioredis.Redis.from_url(redis_url)
    prefix = f"gwstoretest{id(client)}:"
    try:
        yield ResponseStore(client, prefix=prefix, ttl=600)
    finally:
        keys = [key async for key in client.scan_iter(match=prefix + "*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()


def _meta(response_id: str, parent: ResponseMeta | None) -> ResponseMeta:
    block, tails = parent.child_links() if parent is not None else ((), ())
    return ResponseMeta(
        id=response_id,
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
    )


async def _chain(
    store: ResponseStore, length: int, name: str = "r", start: ResponseMeta | None = None
) -> list[ResponseMeta]:
    metas: list[ResponseMeta] = []
    parent = start
    for n in range(length):
        meta = _meta(f"{name}{n}", parent)
        items: list[dict[str, Any]] = [
            {"id": f"in{name}{n}", "type": "message", "role": "user", "content": []}
        ]
        output: list[dict[str, Any]] = [
            {"id": f"out{name}{n}", "type": "message", "role": "assistant", "content": []}
        ]
        await store.save(
            NewRecord(meta=meta, input=items, output=output, body={"id": meta.id, "output": output})
        )
        metas.append(meta)
        parent = meta
    return metas


async def test_a_long_chain_is_read_whole_and_in_order(store: ResponseStore) -> None:
    length = 2 * BLOCK + 17
    metas = await _chain(store, length)
    last = metas[-1]
    assert last.depth == length - 1
    # Bounded links: the last block's members and one tail per earlier full block.
    assert last.tails == (f"r{BLOCK - 1}", f"r{2 * BLOCK - 1}")
    assert last.block == tuple(f"r{n}" for n in range(2 * BLOCK, length - 1))
    assert max(len(m.block) + len(m.tails) for m in metas) < BLOCK + length // BLOCK + 1

    turns = await store.read_chain(last)
    assert [turn.meta.id for turn in turns] == [f"r{n}" for n in range(length)]
    assert [turn.input[0]["id"] for turn in turns] == [f"inr{n}" for n in range(length)]
    assert [turn.output[0]["id"] for turn in turns] == [f"outr{n}" for n in range(length)]


async def test_forks_share_their_history(store: ResponseStore) -> None:
    trunk = await _chain(store, BLOCK + 3)
    branch = await _chain(store, 2, name="b", start=trunk[5])
    turns = await store.read_chain(branch[-1])
    assert [turn.meta.id for turn in turns] == [f"r{n}" for n in range(6)] + ["b0", "b1"]
    assert [turn.meta.id for turn in await store.read_chain(trunk[-1])] == [f"r{n}" for n in range(BLOCK + 3)]


async def test_a_missing_ancestor_breaks_the_chain(store: ResponseStore) -> None:
    metas = await _chain(store, BLOCK + 5)
    assert await store.delete(f"r{BLOCK - 1}", "someone else") is None  # a foreign delete is a no-op
    deleted = await store.delete(f"r{BLOCK - 1}", OWNER)  # a tail: its block can no longer be listed
    assert deleted is not None and deleted.id == f"r{BLOCK - 1}"
    with pytest.raises(ChainBroken) as broken:
        await store.read_chain(metas[-1])
    assert broken.value.missing == f"r{BLOCK - 1}"
    await store.delete("r3", OWNER)
    with pytest.raises(ChainBroken) as broken:
        await store.read_chain(metas[10])
    assert broken.value.missing == "r3"


async def test_reading_a_parent_is_for_its_owner_and_extends_it(store: ResponseStore, redis_url: str) -> None:
    [meta] = await _chain(store, 1)
    client = aioredis.Redis.from_url(redis_url)
    try:
        key = store.key(meta.id)
        assert 590 <= await client.ttl(key) <= 600
        assert await store.read_parent(meta.id, "intruder") is None
        assert 590 <= await client.ttl(key) <= 600
        assert await store.read_parent(meta.id, OWNER) == meta
        assert 600 + 60 - 10 <= await client.ttl(key) <= 660
        assert await store.response_body(meta.id, "intruder") is None
        assert await store.input_items(meta.id, "intruder") is None
    finally:
        await client.aclose()


async def test_touching_a_chain_extends_every_ancestor(store: ResponseStore, redis_url: str) -> None:
    metas = await _chain(store, BLOCK + 4)
    client = aioredis.Redis.from_url(redis_url)
    try:
        for meta in metas:
            await client.expire(store.key(meta.id), 50)
        assert store.touch_due(metas[-1], now=metas[-1].chain_touched_at + store.slack / 2)
        assert not store.touch_due(metas[0], now=10**12)  # a root has no ancestors to touch
        await store.touch_chain(metas[-1])
        ttls = [await client.ttl(store.key(meta.id)) for meta in metas]
        assert all(660 - 10 <= ttl <= 660 for ttl in ttls)
    finally:
        await client.aclose()


async def test_input_items_list_the_whole_context_and_skip_what_is_gone(store: ResponseStore) -> None:
    metas = await _chain(store, BLOCK + 3)
    items = await store.input_items(metas[-1].id, OWNER)
    assert items is not None
    expected = [f"{kind}r{n}" for n in range(BLOCK + 2) for kind in ("in", "out")] + [f"inr{BLOCK + 2}"]
    assert [item["id"] for item in items] == expected
    assert await store.input_items(metas[-1].id, "intruder") is None

    await store.delete("r1", OWNER)
    await store.delete(f"r{BLOCK - 1}", OWNER)  # a tail: its whole block can no longer be listed
    items = await store.input_items(metas[-1].id, OWNER)
    assert items is not None
    assert [item["id"] for item in items] == [
        f"{kind}r{n}" for n in range(BLOCK, BLOCK + 2) for kind in ("in", "out")
    ] + [f"inr{BLOCK + 2}"]
    await store.touch_chain(metas[-1])  # a broken chain is touched where it still stands
