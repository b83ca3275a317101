"""The shared chat event reader (gateway/chats/events.py) over the real Redis: many followers on one
blocking connection, each getting exactly its stream's entries in order, whatever its pace or the
id it joins with; deleted chats end their followers; stopping ends them all and leaves nothing."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis
import redis.asyncio as aioredis

from gateway.chats.events import RETRY, EventHub, Follower
from gateway.clock import ManualClock
from gateway.redis.connection import blocking_client, redis_client
from tests.integration.chats.helpers import DEADLINE, poll

Hub = tuple[EventHub, aioredis.Redis]


@pytest.fixture
def name() -> str:
    """The blocking connection's name, this test's own."""
    return f"hub-test-{uuid.uuid4().hex[:8]}"


@pytest.fixture
async def clients(redis_url: str, name: str) -> AsyncIterator[tuple[aioredis.Redis, aioredis.Redis]]:
    commands = redis_client(redis_url, max_connections=2)
    # No socket timeout: reads may block longer than the default 5 s here.
    blocking = blocking_client(commands, name=name, socket_timeout=None)
    yield commands, blocking
    await blocking.aclose()
    await commands.aclose()


def hub_of(clients: tuple[aioredis.Redis, aioredis.Redis], prefix: str, **kwargs: Any) -> EventHub:
    return EventHub(clients[0], clients[1], ManualClock(), prefix, **kwargs)


@pytest.fixture
def prefix() -> str:
    return f"hubtest{uuid.uuid4().hex[:8]}:"


async def take(follower: Follower, n: int) -> list[tuple[str, bytes]]:
    """The next ``n`` entries (ticks skipped), within the deadline."""
    out: list[tuple[str, bytes]] = []
    async with asyncio.timeout(DEADLINE):
        while len(out) < n:
            entry = await anext(follower)
            if entry is not None:
                out.append(entry)
    return out


def blocked_readers(r: redis.Redis, name: str) -> int:
    return sum(1 for c in r.client_list() if c["name"] == name and "b" in c["flags"])


def blocking_connections(r: redis.Redis, name: str) -> int:
    return sum(1 for c in r.client_list() if c["name"] == name)


async def test_followers_of_many_chats_get_their_own_entries_over_one_blocking_connection(
    clients: tuple[aioredis.Redis, aioredis.Redis], prefix: str, redis_sync: redis.Redis, name: str
) -> None:
    hub = hub_of(clients, prefix, block_ms=600_000)
    await hub.start()
    keys = [f"{prefix}chat:{{c{i}}}:events" for i in range(40)]
    try:
        async with Following(hub, keys) as followers:
            for round_ in range(3):
                for i, key in enumerate(keys):
                    await clients[0].xadd(key, {"e": f'{{"type":"t","n":{i},"round":{round_}}}'})
            for i, (key, follower) in enumerate(zip(keys, followers, strict=True)):
                got = await take(follower, 3)
                stored: Any = redis_sync.xrange(key)
                assert [entry_id for entry_id, _ in got] == [e[0].decode() for e in stored]
                assert [body for _, body in got] == [
                    f'{{"type":"t","n":{i},"round":{r}}}'.encode() for r in range(3)
                ]
            # All 40 followed with one blocking read on one connection.
            assert hub.followed == 40
            assert blocking_connections(redis_sync, name) == 1
        assert hub.followed == 0
    finally:
        await hub.stop()


class Following:
    """Follow every key from the start, as one context."""

    def __init__(self, hub: EventHub, keys: list[str], since: str = "0-0") -> None:
        self.contexts = [hub.follow(key, since) for key in keys]

    async def __aenter__(self) -> list[Follower]:
        return [await cm.__aenter__() for cm in self.contexts]

    async def __aexit__(self, *exc: object) -> None:
        for cm in self.contexts:
            await cm.__aexit__(None, None, None)


async def test_a_stream_followed_while_the_reader_blocks_is_read_at_once(
    clients: tuple[aioredis.Redis, aioredis.Redis], prefix: str, redis_sync: redis.Redis, name: str
) -> None:
    # The block time is far beyond the deadline: only the wake-up can deliver in time.
    hub = hub_of(clients, prefix, block_ms=600_000)
    await hub.start()
    try:
        async with hub.follow(f"{prefix}a", "0-0") as first:
            await asyncio.to_thread(
                poll, lambda: blocked_readers(redis_sync, name) == 1, what="the reader to block"
            )
            async with hub.follow(f"{prefix}b", "0-0") as second:
                await clients[0].xadd(f"{prefix}b", {"e": b'{"type":"x"}'})
                assert [body for _, body in await take(second, 1)] == [b'{"type":"x"}']
            await clients[0].xadd(f"{prefix}a", {"e": b'{"type":"y"}'})
            assert [body for _, body in await take(first, 1)] == [b'{"type":"y"}']
        # The wake stream keeps one entry and expires with the process gone.
        assert redis_sync.xlen(hub.wake_key) == 1
        assert 0 < redis_sync.pttl(hub.wake_key) <= 3_600_000
    finally:
        await hub.stop()
    assert redis_sync.exists(hub.wake_key) == 0


async def test_a_slow_follower_misses_nothing_and_its_buffer_stays_bounded(
    clients: tuple[aioredis.Redis, aioredis.Redis], prefix: str, redis_sync: redis.Redis
) -> None:
    hub = hub_of(clients, prefix, block_ms=600_000, buffer=4, pull=3)
    await hub.start()
    key = f"{prefix}slow"
    try:
        async with hub.follow(key, "0-0") as fast, hub.follow(key, "0-0") as slow:
            async with clients[0].pipeline(transaction=False) as pipe:
                for n in range(50):
                    pipe.xadd(key, {"e": f'{{"n":{n}}}'})
                await pipe.execute()
            expected = [f'{{"n":{n}}}'.encode() for n in range(50)]
            # The fast one takes all while the slow one takes none: the reader read them all.
            assert [body for _, body in await take(fast, 50)] == expected
            assert len(slow.buffer) <= 4
            got = []
            for _ in range(50):
                got.extend(await take(slow, 1))
                assert len(slow.buffer) <= 4
            assert [body for _, body in got] == expected
            stored: Any = redis_sync.xrange(key)
            assert [entry_id for entry_id, _ in got] == [e[0].decode() for e in stored]
    finally:
        await hub.stop()


async def test_a_follower_joining_behind_the_reader_catches_up_then_follows(
    clients: tuple[aioredis.Redis, aioredis.Redis], prefix: str
) -> None:
    hub = hub_of(clients, prefix, block_ms=600_000)
    await hub.start()
    key = f"{prefix}join"
    try:
        async with hub.follow(key, "0-0") as first:
            ids = [await clients[0].xadd(key, {"e": f"{n}"}) for n in range(3)]
            assert [body for _, body in await take(first, 3)] == [b"0", b"1", b"2"]
            # Joins holding the first entry: the reader is past it.
            async with hub.follow(key, ids[0].decode()) as late:
                assert [body for _, body in await take(late, 2)] == [b"1", b"2"]
                # And one joining ahead of what it has read skips nothing it lacks.
                async with hub.follow(key, ids[2].decode()) as ahead:
                    await clients[0].xadd(key, {"e": "3"})
                    assert [body for _, body in await take(late, 1)] == [b"3"]
                    assert [body for _, body in await take(first, 1)] == [b"3"]
                    assert [body for _, body in await take(ahead, 1)] == [b"3"]
    finally:
        await hub.stop()


async def test_followers_of_a_deleted_chat_end_and_the_others_go_on(
    clients: tuple[aioredis.Redis, aioredis.Redis], prefix: str
) -> None:
    # Idle reads return after 20 ms: each is a tick (keep-alives) and a check of the chats.
    hub = hub_of(clients, prefix, block_ms=20)
    await hub.start()
    commands = clients[0]
    await commands.hset(f"{prefix}chat:{{gone}}", "status", "waiting")
    await commands.hset(f"{prefix}chat:{{kept}}", "status", "waiting")
    try:
        async with (
            hub.follow(f"{prefix}chat:{{gone}}:events", "0-0", alive=f"{prefix}chat:{{gone}}") as gone,
            hub.follow(f"{prefix}chat:{{kept}}:events", "0-0", alive=f"{prefix}chat:{{kept}}") as kept,
        ):
            async with asyncio.timeout(DEADLINE):
                assert await anext(gone) is None  # a tick
                await commands.delete(f"{prefix}chat:{{gone}}")
                async for entry in gone:
                    assert entry is None
                assert gone.gone
                assert await anext(kept) is None
                await commands.xadd(f"{prefix}chat:{{kept}}:events", {"e": "after"})
            assert [body for _, body in await take(kept, 1)] == [b"after"]
            assert not kept.gone
    finally:
        await hub.stop()
        await commands.delete(f"{prefix}chat:{{kept}}", f"{prefix}chat:{{kept}}:events")


async def test_stopping_ends_every_follower_and_closes_the_blocking_connection(
    clients: tuple[aioredis.Redis, aioredis.Redis], prefix: str, redis_sync: redis.Redis, name: str
) -> None:
    hub = hub_of(clients, prefix, block_ms=600_000)
    await hub.start()
    async with hub.follow(f"{prefix}a", "0-0") as a, hub.follow(f"{prefix}b", "0-0") as b:
        await asyncio.to_thread(
            poll, lambda: blocked_readers(redis_sync, name) == 1, what="the reader to block"
        )
        waiting = asyncio.create_task(anext(a))
        await asyncio.sleep(0)
        await hub.stop()
        async with asyncio.timeout(DEADLINE):
            with pytest.raises(StopAsyncIteration):
                await waiting
            with pytest.raises(StopAsyncIteration):
                await anext(b)
    async with hub.follow(f"{prefix}c", "0-0") as late:
        with pytest.raises(StopAsyncIteration):
            await anext(late)
    await clients[1].aclose()
    poll(lambda: blocking_connections(redis_sync, name) == 0, what="the blocking connection to close")


async def test_the_reader_survives_its_connection_being_killed(
    clients: tuple[aioredis.Redis, aioredis.Redis],
    prefix: str,
    redis_sync: redis.Redis,
    name: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = ManualClock()
    hub = EventHub(clients[0], clients[1], clock, prefix, block_ms=600_000)
    await hub.start()
    key = f"{prefix}killed"
    try:
        async with hub.follow(key, "0-0") as follower:
            await asyncio.to_thread(
                poll, lambda: blocked_readers(redis_sync, name) == 1, what="the reader to block"
            )
            for c in redis_sync.client_list():
                if c["name"] == name:
                    redis_sync.client_kill_filter(_id=c["id"])
            # The read fails: the follower gets a keep-alive, the reader retries after a second.
            await clock.wait_for_timer(RETRY)
            assert "reading chat events failed" in caplog.text
            async with asyncio.timeout(DEADLINE):
                assert await anext(follower) is None
            await clients[0].xadd(key, {"e": "after the kill"})
            clock.advance(1.0)
            assert [body for _, body in await take(follower, 1)] == [b"after the kill"]
    finally:
        await hub.stop()
