"""Materialized chain histories on a real Redis: a follow-up reads its whole chain in the same
number of Redis commands at any depth; branches get their own copy and stay correct; a deleted or
expired ancestor still breaks the chain; a chain whose list is gone is read record by record; and
over HTTP a branch replays only its own ancestors. Writing a turn: the record and its place in a
history list in one round trip (a root, a follow-up on a chain that did not branch), a branch's
own list, a record that names a place its turn lost (never continued there), scripts the server
forgot, and a copy of thousands of turns. ``tests/integration/cluster`` runs the writes again on
a Redis Cluster."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import msgspec
import pytest
import redis.asyncio as aioredis

from fake_providers.testing import FakeProviders
from gateway.clock import ManualClock
from gateway.config.settings import RedisSettings
from gateway.redis.connection import multiplexed
from gateway.responses import store as store_module
from gateway.responses.store import (
    ChainBroken,
    HistoryTurn,
    NewRecord,
    ResponseMeta,
    ResponseStore,
    Script,
)
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


class RoundTrips:
    """Counts what a client sends: a command, or a pipeline's commands together, is one."""

    def __init__(self, client: Any) -> None:
        self.count = 0
        command, pipeline = client.execute_command, client.pipeline

        async def counted(*args: Any, **kwargs: Any) -> Any:
            self.count += 1
            return await command(*args, **kwargs)

        def counted_pipeline(*args: Any, **kwargs: Any) -> Any:
            pipe = pipeline(*args, **kwargs)
            execute = pipe.execute

            async def run(*args: Any, **kwargs: Any) -> Any:
                self.count += 1
                return await execute(*args, **kwargs)

            pipe.execute = run
            return pipe

        client.execute_command = counted
        client.pipeline = counted_pipeline


async def load_scripts(store: ResponseStore) -> None:
    """The server (every node of a cluster) holds the store's scripts: no round trip is spent
    sending one it lacks."""
    for script in vars(store_module).values():
        if isinstance(script, Script):
            await store._redis.script_load(script.source)


def record(name: str, parent: ResponseMeta | None) -> tuple[NewRecord, HistoryTurn]:
    """A turn's record (its meta naming no history yet) and its turn as a replay sends it."""
    block, tails = parent.child_links() if parent is not None else ((), ())
    items: list[dict[str, Any]] = [{"id": f"in-{name}", "type": "message", "role": "user", "content": []}]
    output: list[dict[str, Any]] = [
        {"id": f"out-{name}", "type": "message", "role": "assistant", "content": []}
    ]
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
    )
    body = {"id": name, "output": output}
    return NewRecord(meta=meta, input=items, output=output, body=body), HistoryTurn(name, items, output)


async def add(store: ResponseStore, name: str, parent: ResponseMeta | None) -> ResponseMeta:
    """What ``Turn.save`` does: write the record and place its turn in a history list."""
    new, own = record(name, parent)
    meta = (await store.save_turn(new, parent, own)).meta
    assert meta.history is not None
    return meta


async def stored_meta(store: ResponseStore, response_id: str) -> ResponseMeta:
    raw = await store._redis.hget(store.key(response_id), "meta")
    assert raw is not None
    return msgspec.json.decode(raw, type=ResponseMeta)


def ids(turns: list[HistoryTurn] | None) -> list[str]:
    assert turns is not None
    return [t.id for t in turns]


async def chain(
    store: ResponseStore, length: int, name: str, start: ResponseMeta | None = None
) -> list[ResponseMeta]:
    metas: list[ResponseMeta] = []
    parent = start
    for n in range(length):
        parent = await add(store, f"{name}{n}", parent)
        metas.append(parent)
    return metas


async def test_a_follow_up_reads_its_chain_in_the_same_commands_at_any_depth(store: ResponseStore) -> None:
    short = await chain(store, 2, "s")
    deep = await chain(store, 200, "d")
    counter = RoundTrips(store._redis)
    turns = await store.read_history(short[-1])
    shallow_calls = counter.count
    counter.count = 0
    deep_turns = await store.read_history(deep[-1])
    assert counter.count == shallow_calls == 2  # LRANGE, then one EXISTS over every ancestor
    assert turns is not None and [t.id for t in turns] == ["s0", "s1"]
    assert deep_turns is not None and [t.id for t in deep_turns] == [f"d{n}" for n in range(200)]
    # Appending a turn to a chain that did not branch is one script, whatever the depth.
    counter.count = 0
    await store.extend_history(deep[-1], HistoryTurn("d200", [], []))
    assert counter.count == 1
    # One list per unbranched chain.
    assert {m.history for m in deep} == {"d0"}


async def test_branches_get_their_own_history(store: ResponseStore) -> None:
    trunk = await chain(store, 8, "t")
    branch = await chain(store, 2, "b", start=trunk[3])
    trunk_more = await chain(store, 1, "u", start=trunk[-1])
    again = await chain(store, 1, "c", start=trunk[3])
    assert branch[0].history != trunk[0].history  # the list went on: the branch copied its part
    assert trunk_more[0].history == trunk[0].history  # the trunk's own list goes on in place

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


async def test_a_turn_is_written_in_one_round_trip(store: ResponseStore) -> None:
    await load_scripts(store)
    trips = RoundTrips(store._redis)
    root = await add(store, "w0", None)
    assert trips.count == 1
    assert (root.history, root.history_length) == ("w0", 1)
    trips.count = 0
    child = await add(store, "w1", root)
    assert trips.count == 1  # the list's script and the record's, one pipeline
    assert (child.history, child.history_length) == ("w0", 2)
    # What Redis holds: the record as returned, with its TTL; the list with the chain's.
    assert await stored_meta(store, "w1") == child
    redis = store._redis
    assert 0 < await redis.ttl(store.key("w1")) <= store.ttl
    assert store.ttl < await redis.ttl(store.history_key("w0")) <= store.extended_ttl
    assert await store.response_body("w1", OWNER) == {"id": "w1", "output": record("w1", root)[0].output}
    assert ids(await store.read_history(child)) == ["w0", "w1"]


async def test_a_branch_written_with_its_record_gets_its_own_list(store: ResponseStore) -> None:
    metas = [await add(store, "t0", None)]
    for n in range(1, 4):
        metas.append(await add(store, f"t{n}", metas[-1]))
    await load_scripts(store)
    trips = RoundTrips(store._redis)
    branch = await add(store, "b0", metas[1])
    assert trips.count == 2  # the append finds the list went on, and hands the parent's part back
    assert (branch.history, branch.history_length) == ("b0", 3)
    assert await stored_meta(store, "b0") == branch
    assert ids(await store.read_history(branch)) == ["t0", "t1", "b0"]
    assert ids(await store.read_history(metas[-1])) == ["t0", "t1", "t2", "t3"]  # the trunk as it was
    tip = await add(store, "b1", branch)
    assert (tip.history, tip.history_length) == ("b0", 4)


async def test_a_record_naming_a_place_its_turn_lost_is_not_continued_there(store: ResponseStore) -> None:
    """A record written with the place it expected, where the chain's list went on with another
    turn first (the write of its own copy failed): its children never join that list."""
    root = await add(store, "s0", None)
    await add(store, "s1", root)  # the list: s0, s1
    lost = record("x0", root)[0]
    lost = msgspec.structs.replace(
        lost, meta=msgspec.structs.replace(lost.meta, history="s0", history_length=2)
    )
    await store.save(lost)
    assert await store.read_history(lost.meta) is None  # its list does not end with it
    child = await add(store, "x1", lost.meta)
    assert child.history == "x1"  # a copy read record by record, not the list of s1
    assert ids(await store.read_history(child)) == ["s0", "x0", "x1"]
    assert ids(await store.read_history(await stored_meta(store, "s1"))) == ["s0", "s1"]
    assert await store._redis.llen(store.history_key("s0")) == 2


async def test_scripts_the_server_forgot_are_sent_again(store: ResponseStore) -> None:
    root = await add(store, "f0", None)
    await store._redis.script_flush()
    child = await add(store, "f1", root)
    assert (child.history, child.history_length) == ("f0", 2)
    assert await stored_meta(store, "f1") == child
    assert ids(await store.read_history(child)) == ["f0", "f1"]


@pytest.fixture
async def shared_store(redis_url: str, store: ResponseStore) -> AsyncIterator[ResponseStore]:
    """``store``'s records, with the per-turn calls over a shared connection (as the gateway
    makes them on one server)."""
    connection = multiplexed(RedisSettings(url=redis_url), ManualClock())
    assert connection is not None
    try:
        yield ResponseStore(store._redis, prefix=store.prefix, ttl=store.ttl, shared=connection)
    finally:
        await connection.aclose()


class SharedCalls:
    """Counts what goes over a shared connection: a command, or a batch, is one write."""

    def __init__(self, connection: Any) -> None:
        self.count = 0
        for name in ("execute_command", "evalsha", "pipeline_execute"):
            setattr(connection, name, self._counted(getattr(connection, name)))

    def _counted(self, method: Any) -> Any:
        async def counted(*args: Any, **kwargs: Any) -> Any:
            self.count += 1
            return await method(*args, **kwargs)

        return counted


async def test_a_turn_goes_over_a_shared_connection_in_one_write(shared_store: ResponseStore) -> None:
    store = shared_store
    await load_scripts(store)
    trips = RoundTrips(store._redis)
    calls = SharedCalls(store._shared)
    root = await add(store, "m0", None)
    child = await add(store, "m1", root)
    branch = await add(store, "m2", root)  # the list went on past m0: its own copy
    assert (calls.count, trips.count) == (4, 0)  # one batch a turn, two for the branch
    assert (child.history, child.history_length) == ("m0", 2)
    assert (branch.history, branch.history_length) == ("m2", 2)
    assert await stored_meta(store, "m2") == branch
    assert ids(await store.read_history(branch)) == ["m0", "m2"]
    calls.count = trips.count = 0
    assert await store.read_parent("m1", OWNER) == child
    assert await store.read_parent("m1", "someone else") is None
    assert (calls.count, trips.count) == (2, 0)
    # Scripts the server forgot are sent again whole, on the same connection.
    await store._redis.script_flush()
    calls.count = 0
    tip = await add(store, "m3", child)
    assert (tip.history, tip.history_length) == ("m0", 3)
    assert calls.count == 2
    assert await store.read_parent("m3", OWNER) == tip
    assert ids(await store.read_history(tip)) == ["m0", "m1", "m3"]


async def test_the_response_as_the_client_gets_it_is_made_of_what_was_written(store: ResponseStore) -> None:
    """The stored body with the stored output spliced back: the bytes of the Response encoded
    whole; none when the output's place is not the one ``"output":[]`` in the body, or the
    Response's output is not the list stored."""
    new, own = record("j0", None)
    body = {"id": "j0", "object": "response", "status": "completed", "output": new.output, "usage": None}
    saved = await store.save_turn(msgspec.structs.replace(new, body=body), None, own)
    assert saved.response_json == msgspec.json.encode(body)
    tools = [{"type": "function", "name": "f", "parameters": {"output": []}}]
    lookalike = {**body, "id": "j1", "tools": tools}
    new, own = record("j1", None)
    saved = await store.save_turn(msgspec.structs.replace(new, body=lookalike), None, own)
    assert saved.response_json is None
    new, own = record("j2", None)
    saved = await store.save_turn(msgspec.structs.replace(new, body={**body, "output": None}), None, own)
    assert saved.response_json is None
    assert await store.response_body("j0", OWNER) == body


async def test_a_copy_of_thousands_of_turns_is_written_whole(store: ResponseStore) -> None:
    """A parent without a list and a known chain longer than one Lua ``unpack`` can take."""
    known = [HistoryTurn(f"k{n}", [], []) for n in range(9000)]
    parent = msgspec.structs.replace(record("k8999", None)[0].meta, depth=8999)
    placed = await store.extend_history(parent, HistoryTurn("k9000", [], []), known)
    assert placed == ("k9000", 9001)
    raw = await store._redis.lrange(store.history_key("k9000"), 0, -1)
    assert [msgspec.json.decode(element, type=HistoryTurn).id for element in raw] == [
        f"k{n}" for n in range(9001)
    ]


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
