"""Following chat event streams: one shared reader per process, not a connection per follower.

Every open ``GET /chats/{id}/stream`` and every running turn's watcher waits for new entries of
a chat's event stream. A blocking ``XREAD`` each would hold a pooled connection each, and enough
open streams would leave none for the request path (policy admission, the Responses store...).
Instead one reader per process blocks in a single ``XREAD`` over every followed stream, on the
blocking client (gateway/redis/connection.py), and hands each batch to that stream's followers:

- a follower behind the reader (it joined with an older id than the reader's, or its buffer
  overflowed because its client reads slowly) catches up by itself with non-blocking reads from
  its own position on the command client, then takes the reader's batches again: a slow client
  never holds the reader back and no buffer grows past ``buffer`` entries;
- a follower of a stream the reader's pending ``XREAD`` does not cover adds an entry to the
  reader's private wake stream, which every read includes, so the new stream is read at once;
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
from redis.exceptions import RedisError

from gateway.clock import Clock

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
        self.wake_key = f"{key_prefix}chats:wake:{uuid.uuid4().hex}"
        self._wake_id = "0-0"
        self._streams: dict[str, _Stream] = {}
        self._reading: dict[str, str] | None = None  # what the pending XREAD covers
        self._poked = False
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopped = False

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="chat-events")

    async def stop(self) -> None:
        """Stop reading; every follower ends (after what it has buffered)."""
        self._stopped = True
        if self._reading is not None:
            # Cancelling a blocked XREAD right after it was sent can be lost in the client (it
            # then returns after the block time): the wake entry returns it at once.
            self._poked = False
            await self._poke()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for stream in self._streams.values():
            for follower in stream.followers:
                follower.gone = True
                follower.wake.set()
        with contextlib.suppress(RedisError):
            await self.commands.delete(self.wake_key)

    @contextlib.asynccontextmanager
    async def follow(self, key: str, since: str, *, alive: str | None = None) -> AsyncIterator[Follower]:
        """Follow the event stream ``key`` from after ``since``; ``alive`` is a key whose
        deletion ends the following (the chat's hash)."""
        follower = Follower(self, key, since, alive)
        if self._stopped:
            follower.gone = True
            yield follower
            return
        stream = self._streams.get(key)
        if stream is None:
            stream = self._streams[key] = _Stream(since)
            self._changed.set()
        stream.followers.add(follower)
        try:
            if self._reading is not None and key not in self._reading:
                await self._poke()
            yield follower
        finally:
            stream.followers.discard(follower)
            if not stream.followers and self._streams.get(key) is stream:
                del self._streams[key]

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

    async def _poke(self) -> None:
        if self._poked:
            return
        self._poked = True
        try:
            async with self.commands.pipeline(transaction=False) as pipe:
                pipe.xadd(self.wake_key, {"w": "1"}, maxlen=1, approximate=False)
                pipe.pexpire(self.wake_key, WAKE_TTL_MS)
                await pipe.execute()
        except RedisError as exc:
            # The new stream is read when the pending read returns (within block_ms) instead.
            log.warning("waking the chat event reader failed: %s", exc)

    async def _run(self) -> None:
        last_tick = self.clock.now()
        while not self._stopped:
            if not self._streams:
                self._changed.clear()
                await self._changed.wait()
                continue
            reading = {self.wake_key: self._wake_id, **{k: s.cursor for k, s in self._streams.items()}}
            self._reading = reading
            self._poked = False
            try:
                streams: dict[Any, Any] = dict(reading)
                raw: Any = await self.blocking.xread(streams, count=self.pull, block=self.block_ms)
            except RedisError as exc:
                self._reading = None
                if self._stopped:  # a cancellation the client turned into an error
                    return
                log.warning("reading chat events failed: %s", exc)
                await self._tick(check=False)  # keep-alives hold the clients through an outage
                await self.clock.sleep(1.0, name=RETRY)
                continue
            self._reading = None
            for name, entries in raw or ():
                key = name.decode()
                if key == self.wake_key:
                    self._wake_id = entries[-1][0].decode()
                else:
                    self._deliver(key, reading[key], _entries(entries))
            now = self.clock.now()
            if not raw or now - last_tick >= TICK_SECONDS:
                last_tick = now
                await self._tick()

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

    async def _tick(self, *, check: bool = True) -> None:
        followers = [f for stream in self._streams.values() for f in stream.followers]
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
