"""Following chat event streams: one shared reader per process, not a connection per follower.

Every open ``GET /chats/{id}/stream`` and every running turn's watcher waits for new entries of
a chat's event stream. A blocking ``XREAD`` each would hold a pooled connection each, and enough
open streams would leave none for the request path (policy admission, the Responses store...).
Instead one reader per process blocks in a single ``XREAD`` over every followed stream, on the
blocking client (gateway/redis/connection.py), and hands each batch to that stream's followers.
On a Redis Cluster one ``XREAD`` may only name keys of one slot, so there is one such reader per
slot followed, each with the same rules (the chats' keys live in a bounded number of slots,
gateway/redis/keys.py, so the blocking reads stay bounded):

- a follower behind the reader (it joined with an older id than the reader's, or its buffer
  overflowed because its client reads slowly) catches up by itself with non-blocking reads from
  its own position on the command client, then takes the reader's batches again: a slow client
  never holds the reader back and no buffer grows past ``buffer`` entries;
- a follower of a stream the reader's pending ``XREAD`` does not cover adds an entry to the
  reader's private wake stream (in the reader's slot), which every read includes, so the new
  stream is read at once;
- after a read that found nothing within ``block_ms`` (and at least every ``TICK_SECONDS`` of the
  clock when there is traffic) every follower gets a tick (the SSE route sends a keep-alive) and
  the reader checks in one round trip which followed chats still exist: the followers of a
  deleted chat end.

Waiting here is on Redis (new entries) and on asyncio events, never on time: ``block_ms`` only
paces the ticks.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections import deque
from collections.abc import AsyncIterator
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import RedisError

from gateway.clock import Clock
from gateway.redis.keys import hash_tag, slot

log = logging.getLogger("gateway.chats.events")

BLOCK_MS = 1000
TICK_SECONDS = 1.0
BUFFER = 1024  # entries a follower may have waiting before it reads from Redis by itself
PULL = 256  # entries per read, the reader's and a follower's catching up
WAKE_TTL_MS = 3_600_000
RETRY = "chat_events_retry"

Entry = tuple[str, bytes]  # (stream entry id, the event's JSON)


def order(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


def _entries(raw: Any) -> list[Entry]:
    return [(entry_id.decode(), fields[b"e"]) for entry_id, fields in raw]


class Follower:
    """One follower of one chat's events. Iterating yields each entry after ``since``, in order,
    and ``None`` for a tick; it ends when the chat is deleted or the hub stops."""

    def __init__(self, hub: EventHub, key: str, since: str, alive: str | None) -> None:
        self._hub = hub
        self.key = key
        self.alive = alive
        self.since = since  # the last entry handed out
        self.fed = since  # the last entry in the buffer (or handed out)
        self.buffer: deque[Entry] = deque()
        self.tick = False
        self.gone = False
        self.wake = asyncio.Event()

    def __aiter__(self) -> Follower:
        return self

    async def __anext__(self) -> Entry | None:
        while True:
            if self.buffer:
                entry = self.buffer.popleft()
                self.since = entry[0]
                return entry
            if self.gone:
                raise StopAsyncIteration
            if self._hub.behind(self):
                await self._hub.catch_up(self)
                continue
            if self.tick:
                self.tick = False
                return None
            self.wake.clear()
            await self.wake.wait()


class _Stream:
    __slots__ = ("cursor", "followers")

    def __init__(self, cursor: str) -> None:
        self.cursor = cursor  # the last entry the reader has read
        self.followers: set[Follower] = set()


class _Reader:
    """The blocking read loop of one group of streams: all of them on one server, one slot's
    on a cluster (one ``XREAD`` may only name keys of one slot)."""

    __slots__ = ("changed", "keys", "poked", "reading", "task", "wake_id", "wake_key")

    def __init__(self, wake_key: str) -> None:
        self.wake_key = wake_key
        self.wake_id = "0-0"
        self.keys: set[str] = set()
        self.reading: dict[str, str] | None = None  # what the pending XREAD covers
        self.poked = False
        self.changed = asyncio.Event()
        self.task: asyncio.Task[None] | None = None


class EventHub:
    def __init__(
        self,
        commands: aioredis.Redis,
        blocking: aioredis.Redis,
        clock: Clock,
        key_prefix: str,
        *,
        block_ms: int = BLOCK_MS,
        buffer: int = BUFFER,
        pull: int = PULL,
    ) -> None:
        self.commands = commands
        self.blocking = blocking
        self.clock = clock
        self.block_ms = block_ms
        self.buffer = buffer
        self.pull = pull
        # On a cluster one reader per slot followed; chats live in a bounded number of slots
        # (gateway/redis/keys.py), so the blocking reads stay bounded too.
        self._per_slot = isinstance(blocking, RedisCluster)
        self.wake_key = f"{key_prefix}chats:wake:{uuid.uuid4().hex}"
        self._streams: dict[str, _Stream] = {}
        self._readers: dict[int, _Reader] = {}
        self._started = False
        self._stopped = False

    async def start(self) -> None:
        self._started = True
        for reader in self._readers.values():
            self._launch(reader)

    def _launch(self, reader: _Reader) -> None:
        if reader.task is None and self._started and not self._stopped:
            reader.task = asyncio.create_task(self._run(reader), name="chat-events")

    def _reader_of(self, key: str) -> _Reader:
        group = slot(key) if self._per_slot else 0
        reader = self._readers.get(group)
        if reader is None:
            wake = f"{self.wake_key}:{{{hash_tag(key)}}}" if self._per_slot else self.wake_key
            reader = self._readers[group] = _Reader(wake)
            self._launch(reader)
        return reader

    async def stop(self) -> None:
        """Stop reading; every follower ends (after what it has buffered)."""
        self._stopped = True
        readers = list(self._readers.values())
        for reader in readers:
            if reader.reading is not None:
                # Cancelling a blocked XREAD right after it was sent can be lost in the client
                # (it then returns after the block time): the wake entry returns it at once.
                reader.poked = False
                await self._poke(reader)
        for reader in readers:
            if reader.task is not None:
                reader.task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await reader.task
        for stream in self._streams.values():
            for follower in stream.followers:
                follower.gone = True
                follower.wake.set()
        for reader in readers:
            with contextlib.suppress(RedisError):
                await self.commands.delete(reader.wake_key)

    @contextlib.asynccontextmanager
    async def follow(self, key: str, since: str, *, alive: str | None = None) -> AsyncIterator[Follower]:
        """Follow the event stream ``key`` from after ``since``; ``alive`` is a key whose
        deletion ends the following (the chat's hash)."""
        follower = Follower(self, key, since, alive)
        if self._stopped:
            follower.gone = True
            yield follower
            return
        reader = self._reader_of(key)
        stream = self._streams.get(key)
        if stream is None:
            stream = self._streams[key] = _Stream(since)
            reader.keys.add(key)
            reader.changed.set()
        stream.followers.add(follower)
        try:
            if reader.reading is not None and key not in reader.reading:
                await self._poke(reader)
            yield follower
        finally:
            stream.followers.discard(follower)
            if not stream.followers and self._streams.get(key) is stream:
                del self._streams[key]
                reader.keys.discard(key)

    @property
    def followed(self) -> int:
        """How many streams the reader covers (for tests and introspection)."""
        return len(self._streams)

    def behind(self, follower: Follower) -> bool:
        stream = self._streams.get(follower.key)
        return stream is not None and order(follower.fed) < order(stream.cursor)

    async def catch_up(self, follower: Follower) -> None:
        """Read, without blocking, what ``follower`` missed of what the reader has read."""
        stream = self._streams.get(follower.key)
        if stream is None:
            return
        target = stream.cursor
        raw: Any = await self.commands.xread({follower.key: follower.fed}, count=self.pull)
        entries = _entries(raw[0][1]) if raw else []
        if entries:
            follower.buffer.extend(entries)
            follower.fed = entries[-1][0]
        elif order(follower.fed) < order(target):
            # Nothing after its position although the reader read up to `target`: those entries
            # were trimmed or the stream deleted since.
            follower.fed = target

    async def _poke(self, reader: _Reader) -> None:
        if reader.poked:
            return
        reader.poked = True
        try:
            async with self.commands.pipeline(transaction=False) as pipe:
                pipe.xadd(reader.wake_key, {"w": "1"}, maxlen=1, approximate=False)
                pipe.pexpire(reader.wake_key, WAKE_TTL_MS)
                await pipe.execute()
        except RedisError as exc:
            # The new stream is read when the pending read returns (within block_ms) instead.
            log.warning("waking the chat event reader failed: %s", exc)

    async def _run(self, reader: _Reader) -> None:
        last_tick = self.clock.now()
        while not self._stopped:
            if not reader.keys:
                reader.changed.clear()
                await reader.changed.wait()
                continue
            reading = {reader.wake_key: reader.wake_id, **{k: self._streams[k].cursor for k in reader.keys}}
            reader.reading = reading
            reader.poked = False
            try:
                streams: dict[Any, Any] = dict(reading)
                raw: Any = await self.blocking.xread(streams, count=self.pull, block=self.block_ms)
            except RedisError as exc:
                reader.reading = None
                if self._stopped:  # a cancellation the client turned into an error
                    return
                log.warning("reading chat events failed: %s", exc)
                await self._tick(reader, check=False)  # keep-alives hold the clients through an outage
                await self.clock.sleep(1.0, name=RETRY)
                continue
            reader.reading = None
            for name, entries in raw or ():
                key = name.decode()
                if key == reader.wake_key:
                    reader.wake_id = entries[-1][0].decode()
                else:
                    self._deliver(key, reading[key], _entries(entries))
            now = self.clock.now()
            if not raw or now - last_tick >= TICK_SECONDS:
                last_tick = now
                await self._tick(reader)

    def _deliver(self, key: str, read_from: str, batch: list[Entry]) -> None:
        stream = self._streams.get(key)
        if stream is None or stream.cursor != read_from or not batch:
            return  # no longer followed, or followed again from elsewhere since the read began
        stream.cursor = batch[-1][0]
        start = order(read_from)
        for follower in stream.followers:
            fed = order(follower.fed)
            if fed >= start:  # no gap: take what is new to it
                new = [entry for entry in batch if order(entry[0]) > fed]
                if len(follower.buffer) + len(new) > self.buffer:
                    # A slow reader: drop what it has not taken, it reads the rest itself.
                    follower.buffer.clear()
                    follower.fed = follower.since
                elif new:
                    follower.buffer.extend(new)
                    follower.fed = new[-1][0]
            follower.wake.set()

    async def _tick(self, reader: _Reader, *, check: bool = True) -> None:
        followers = [f for key in reader.keys if key in self._streams for f in self._streams[key].followers]
        alive = sorted({f.alive for f in followers if f.alive is not None}) if check else []
        exists: dict[str, bool] = {}
        if alive:
            try:
                async with self.commands.pipeline(transaction=False) as pipe:
                    for key in alive:
                        pipe.exists(key)
                    found = await pipe.execute()
                exists = dict(zip(alive, (bool(n) for n in found), strict=True))
            except RedisError as exc:
                log.warning("checking followed chats failed: %s", exc)
        for follower in followers:
            if follower.alive is not None and exists.get(follower.alive) is False:
                follower.gone = True
            follower.tick = True
            follower.wake.set()
