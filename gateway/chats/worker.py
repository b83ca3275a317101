"""Runs chat turns on any replica: jobs (``chats:jobs`` entries naming a chat) on a Redis Stream
consumer group (:class:`~gateway.redis.jobs.JobConsumer`: a replica that dies stops renewing its
lease, another one takes the job over and continues the chat from its persisted state).

A chat marked ``pending`` longer than a lease ago that is still ``pending`` lost its job (the
replica died between the transition and the enqueue): the reaper enqueues it again. A watcher
follows the chat's event stream while a turn runs (through the shared event reader,
gateway/chats/events.py: no connection per turn) and cancels it when the chat leaves ``running``
(interrupt, deletion). The reaper also times out stale ``requires_action`` chats.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import msgspec
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from gateway.chats.events import EventHub
from gateway.chats.loop import OnStep, Turn, end_in_error, unexpected_error
from gateway.chats.step import StepState
from gateway.chats.store import JOBS_GROUP, ChatStore, chat_from_fields
from gateway.chats.tools import ToolSet
from gateway.clock import Clock
from gateway.errors import ErrorKind
from gateway.pricing import Usage
from gateway.redis.jobs import Job, JobConsumer
from gateway.upstream import Deployment, Router
from gateway.upstream.catalog import ModelCatalog
from gateway.upstream.retry import rfc3339

if TYPE_CHECKING:
    from gateway.policy.engine import PolicyService

log = logging.getLogger("gateway.chats.worker")
_DEC = msgspec.json.Decoder()
_ENC = msgspec.json.Encoder()
TIMED_OUT = "Dynamic tool execution timed out"
# The job consumer's timers (its name is "chat").
LEASE_RENEW = "chat_lease_renew"
REAPER = "chat_reaper"
TAKEN_OVER = "The replica running this chat stopped; another one continues it."

ToolsFor = Callable[[list[str]], Awaitable[list[object]]]


def takeover_retry(chat_id: str, now: str) -> dict[str, Any]:
    """The ``retry`` event published when a replica takes over a ``running`` chat: the step the
    dead worker was streaming starts again, so clients drop its partial parts."""
    return {
        "type": "retry",
        "chat_id": chat_id,
        "retry": {
            "attempt": 1,
            "delay_ms": 0,
            "error": TAKEN_OVER,
            "kind": str(ErrorKind.GENERIC),
            "provider": "",
            "status_code": 0,
            "retrying_at": now,
        },
    }


class Worker:
    def __init__(
        self,
        *,
        store: ChatStore,
        events: EventHub,
        blocking: aioredis.Redis,
        router: Router,
        clock: Clock,
        catalog: ModelCatalog | None,
        tools_for: Callable[[list[str]], Awaitable[ToolSet | None]] | None = None,
        lease_seconds: float = 30.0,
        action_timeout: float = 300.0,
        max_steps: int = 1200,
        concurrency: int = 16,
        upstream_store: bool = True,
        policy: PolicyService | None = None,
    ) -> None:
        self.store = store
        self.events = events  # the shared event reader: watchers hold no connection each
        self.blocking = blocking  # the blocking client: the job reader's XREADGROUP BLOCK
        self.router = router
        self.policy = policy
        self.clock = clock
        self.catalog = catalog
        self.tools_for = tools_for
        self.lease = lease_seconds
        self.action_timeout = action_timeout
        self.max_steps = max_steps
        self.upstream_store = upstream_store
        self.jobs = JobConsumer(
            name="chat",
            redis=store.redis,
            blocking=blocking,
            key=store.jobs_key,
            group=JOBS_GROUP,
            consumer_prefix="w-",
            clock=clock,
            lease_seconds=lease_seconds,
            concurrency=concurrency,
            run=self._job,
            reaped=self._reaped,
            reap_every=min(lease_seconds, action_timeout / 5),
        )
        self.id = self.jobs.id

    async def start(self) -> None:
        await self.jobs.start()

    async def stop(self) -> None:
        """Stop reading jobs; running turns go back to ``pending`` for another replica."""
        await self.jobs.stop()

    async def _job(self, job: Job) -> None:
        await self.run_chat(job.fields[b"chat"].decode(), takeover=job.takeover)

    async def run_chat(self, chat_id: str, *, takeover: bool) -> None:
        now = rfc3339(self.clock.now())
        args = [now, self.id, "1" if takeover else "0"]
        if takeover:
            args.append(_ENC.encode(takeover_retry(chat_id, now)).decode())
        result = await self.store.run("acquire", chat_id, *args)
        if result[0] != "run":
            return
        try:
            turn = await self._turn(chat_id)
        except Exception:
            # Corrupt state, a failing tool listing...: the chat must not stay `running`.
            log.exception("chat %s: preparing the turn failed", chat_id)
            with contextlib.suppress(RedisError):
                await end_in_error(
                    self.store, chat_id, self.id, rfc3339(self.clock.now()), unexpected_error()
                )
            return
        if turn is None:
            return
        last: Any = await self.store.redis.xrevrange(self.store.events_key(chat_id), count=1)
        since = last[0][0].decode() if last else "0"
        runner = asyncio.create_task(turn.run())
        watcher = asyncio.create_task(self._watch(chat_id, since, runner, turn))
        try:
            await runner
        except asyncio.CancelledError:
            if self.jobs.stopping:
                with contextlib.suppress(RedisError):
                    await self.store.mark_pending(chat_id, self.clock.now())
                    await self.store.run("finish", chat_id, rfc3339(self.clock.now()), self.id, "release")
                    await self.store.enqueue(chat_id)
                raise
            # Interrupted (or deleted): keep what the step produced, then end the turn.
            with contextlib.suppress(RedisError):
                await turn.persist_interrupted()
                await turn.finish()
        except Exception:
            log.exception("chat %s: the turn failed", chat_id)
            # `running` -> `error` if the chat is still ours (the script checks).
            with contextlib.suppress(RedisError):
                await turn.fail(unexpected_error())
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
            if not runner.done():
                runner.cancel()

    async def _turn(self, chat_id: str) -> Turn | None:
        fields = await self.store.load(chat_id)
        if fields is None:
            return None
        chat = chat_from_fields(fields)
        tools = ToolSet([], chat.dynamic_tools)
        if self.tools_for is not None:
            found = await self.tools_for(chat.mcp_servers)
            if found is not None:
                tools = ToolSet(list(found.builtin.values()), chat.dynamic_tools)
        return Turn(
            store=self.store,
            router=self.router,
            clock=self.clock,
            catalog=self.catalog,
            chat_id=chat_id,
            model=chat.model,
            worker=self.id,
            tools=tools,
            max_steps=self.max_steps,
            action_timeout=self.action_timeout,
            upstream_store=self.upstream_store,
            on_step=self._charger(chat_id, chat.model, fields.get("owner", "")),
        )

    def _charger(self, chat_id: str, model: str, owner: str) -> OnStep | None:
        """Charges each upstream step's usage to the chat owner's key (budgets, TPM, usage
        reports), on whichever replica runs the turn. Never fails the turn."""
        policy = self.policy
        if policy is None or not owner:
            return None

        async def charge(state: StepState, deployment: Deployment) -> None:
            reported = state.usage
            usage = (
                None
                if reported is None
                else Usage(
                    input_tokens=reported.input_tokens,
                    cache_read_tokens=reported.cache_read_tokens,
                    output_tokens=reported.output_tokens,
                    reasoning_tokens=reported.reasoning_tokens,
                )
            )
            try:
                await policy.charge(
                    owner,
                    model=model,
                    usage=usage,
                    request_id=f"{chat_id}:{uuid.uuid4().hex[:16]}",
                    endpoint="/v1/chats",
                    provider=deployment.provider,
                    upstream_model=deployment.upstream_model,
                )
            except Exception:
                log.exception("chat %s: charging the step's usage failed", chat_id)

        return charge

    async def _watch(self, chat_id: str, since: str, runner: asyncio.Task[object], turn: Turn) -> None:
        key = self.store.events_key(chat_id)
        async with self.events.follow(key, since, alive=self.store.chat_key(chat_id)) as follower:
            while not runner.done():
                try:
                    entry = await anext(follower)
                except StopAsyncIteration:  # the chat was deleted (or the process stops)
                    if not turn.ending and not self.jobs.stopping:
                        runner.cancel()
                    return
                except RedisError:
                    await self.clock.sleep(1.0, name="chat_watch_retry")
                    continue
                if entry is None:
                    continue
                event = _DEC.decode(entry[1])
                if turn.ending:
                    return
                if event.get("type") == "status" and event["status"]["status"] != "running":
                    runner.cancel()
                    return

    # -- upkeep ----------------------------------------------------------------------
    async def _reaped(self) -> None:
        """After each take-over pass: enqueue ``pending`` chats whose job was lost, and time out
        stale ``requires_action`` chats."""
        now = self.clock.now()
        for chat_id in await self.store.requeue_stale(now, self.lease):
            log.info("chat %s: pending without a job; enqueued again", chat_id)
        due: Any = await self.store.redis.zrangebyscore(self.store.actions_key, "-inf", now)
        for raw_id in due:
            chat_id = raw_id.decode()
            await self.store.run("action_timeout", chat_id, rfc3339(now), repr(now), TIMED_OUT)
            await self.store.redis.zrem(self.store.actions_key, chat_id)
