"""Jobs on a Redis Stream consumer group, run by whichever replica reads them.

A job (a stream entry) is read by one replica's consumer and stays in the group's pending list
until its run ends; it is then acknowledged and deleted, once, by whoever ran it to its end. The
consumer renews its lease every third of the lease by re-claiming its entries (``XCLAIM`` resets
their idle time); a replica that dies stops renewing, and another replica's reaper takes the entry
over once it has been idle longer than the lease (``XAUTOCLAIM``). A consumer that stops leaves
its running jobs pending, for another replica to take over. At most ``concurrency`` jobs run at
once: the reader waits for a free slot before it reads, the reaper takes over only into free
slots. The reader blocks on the blocking client (gateway/redis/connection.py), never on the
command pool.

The consumer sleeps on the injected clock under the names ``{name}_lease_renew``,
``{name}_reaper`` and ``{name}_jobs_retry``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError, ResponseError

from gateway.clock import Clock

log = logging.getLogger("gateway.redis.jobs")


class Job:
    """One stream entry being run: ``takeover`` when a dead replica's run is taken over."""

    __slots__ = ("entry_id", "fields", "takeover", "task")

    def __init__(self, entry_id: str, fields: dict[bytes, bytes], takeover: bool) -> None:
        self.entry_id = entry_id
        self.fields = fields
        self.takeover = takeover
        self.task: asyncio.Task[None] | None = None


Run = Callable[[Job], Awaitable[None]]
Renewed = Callable[[list[Job]], Awaitable[None]]
Reaped = Callable[[], Awaitable[None]]


class JobConsumer:
    """Reads ``key``'s jobs as consumer ``id`` of ``group`` and runs each with ``run``.

    ``renewed`` sees the running jobs after each lease renewal (a feature looks there for runs
    cancelled elsewhere); ``reaped`` does a feature's own upkeep after each take-over pass, every
    ``reap_every`` seconds (the lease when not given)."""

    def __init__(
        self,
        *,
        name: str,
        redis: aioredis.Redis,
        blocking: aioredis.Redis,
        key: str,
        group: str,
        consumer_prefix: str,
        clock: Clock,
        lease_seconds: float,
        concurrency: int,
        run: Run,
        renewed: Renewed | None = None,
        reaped: Reaped | None = None,
        reap_every: float | None = None,
    ) -> None:
        self.name = name
        self.redis = redis  # commands: the group, acknowledgements, claims
        self.blocking = blocking  # the job reader's XREADGROUP BLOCK
        self.key = key
        self.group = group
        self.id = consumer_prefix + uuid.uuid4().hex[:12]
        self.clock = clock
        self.lease = lease_seconds
        self.reap_every = lease_seconds if reap_every is None else reap_every
        self._run = run
        self._renewed = renewed
        self._reaped = reaped
        self._slots = asyncio.Semaphore(concurrency)
        self._running: dict[str, Job] = {}  # entry id -> its job
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False

    @property
    def stopping(self) -> bool:
        return self._stopping

    async def start(self) -> None:
        with contextlib.suppress(ResponseError):  # BUSYGROUP: it exists already
            await self.redis.xgroup_create(self.key, self.group, id="0", mkstream=True)
        self._tasks = [
            asyncio.create_task(self._read_jobs(), name=f"{self.name}-jobs"),
            asyncio.create_task(self._renew(), name=f"{self.name}-lease"),
            asyncio.create_task(self._reap(), name=f"{self.name}-reaper"),
        ]

    async def stop(self) -> None:
        """Stop reading jobs; running ones stay pending, for another replica to take over."""
        self._stopping = True
        for task in self._tasks:
            task.cancel()
        running = [job.task for job in self._running.values() if job.task is not None]
        for task in running:
            task.cancel()
        await asyncio.gather(*self._tasks, *running, return_exceptions=True)

    # -- jobs ------------------------------------------------------------------------------
    async def _read_jobs(self) -> None:
        # ``_stopping`` as well as cancellation: redis-py can lose a cancellation that arrives just
        # as a blocking read is sent (the read then returns after its block time).
        while not self._stopping:
            await self._slots.acquire()
            try:
                # Waits on Redis for work (not on time); the block time only lets the loop
                # notice a stop.
                raw: Any = await self.blocking.xreadgroup(
                    self.group, self.id, {self.key: ">"}, count=1, block=1000
                )
            except RedisError as exc:
                self._slots.release()
                log.warning("reading %s jobs failed: %s", self.name, exc)
                await self.clock.sleep(1.0, name=f"{self.name}_jobs_retry")
                continue
            except BaseException:
                self._slots.release()
                raise
            if not raw:
                self._slots.release()
                continue
            for _stream, entries in raw:
                for entry_id, fields in entries:
                    self._spawn(Job(entry_id.decode(), fields, takeover=False))

    def _spawn(self, job: Job) -> None:
        job.task = asyncio.create_task(self._job(job), name=f"{self.name}-{job.entry_id}")
        self._running[job.entry_id] = job

    async def _job(self, job: Job) -> None:
        try:
            await self._run(job)
        except asyncio.CancelledError:
            if self._stopping:
                raise
        except Exception:
            log.exception("%s job %s failed", self.name, job.entry_id)
        finally:
            self._running.pop(job.entry_id, None)
            self._slots.release()
        if not self._stopping:
            with contextlib.suppress(RedisError):
                await self.redis.xack(self.key, self.group, job.entry_id)
                await self.redis.xdel(self.key, job.entry_id)

    # -- leases ----------------------------------------------------------------------------
    async def _renew(self) -> None:
        while True:
            await self.clock.sleep(self.lease / 3, name=f"{self.name}_lease_renew")
            with contextlib.suppress(RedisError):
                await self.renew_once()

    async def renew_once(self) -> None:
        running = list(self._running.values())
        if not running:
            return
        ids: list[int | bytes | str | memoryview[int]] = [job.entry_id for job in running]
        await self.redis.xclaim(self.key, self.group, self.id, min_idle_time=0, message_ids=ids, justid=True)
        if self._renewed is not None:
            await self._renewed(running)

    async def _reap(self) -> None:
        while True:
            await self.clock.sleep(self.reap_every, name=f"{self.name}_reaper")
            try:
                await self.reap_once()
            except RedisError as exc:
                log.warning("%s reaper: %s", self.name, exc)

    async def reap_once(self) -> None:
        """Take over the jobs of replicas that stopped renewing their lease, into free slots;
        then the feature's own upkeep."""
        claimed: Any = await self.redis.xautoclaim(
            self.key, self.group, self.id, min_idle_time=int(self.lease * 1000), count=10
        )
        for entry_id, fields in claimed[1]:
            if not fields:
                continue
            if self._slots.locked():
                break
            await self._slots.acquire()
            self._spawn(Job(entry_id.decode(), fields, takeover=True))
        if self._reaped is not None:
            await self._reaped()
