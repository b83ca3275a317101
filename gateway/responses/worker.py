"""Runs background responses on any replica: jobs (``responses:jobs`` entries: response id,
owner, request body) on a Redis Stream consumer group (:class:`~gateway.redis.jobs.JobConsumer`).

After each lease renewal the worker looks whether one of its runs was cancelled (it then cancels
the run, which closes the upstream call). A replica that dies stops renewing; another one takes
the job over and runs the response again from its start: its events continue the numbering of
the dead run's (a client following the stream sees the answer begin again after
``response.in_progress``), and the record ends as one run's answer. A job is acknowledged once,
by whoever finishes its run, so exactly one answer is recorded.

A run goes through the same request cycle as ``POST /v1/responses`` with ``stream: true``; its
channel (:class:`RunChannel`) writes each event to the run's event stream instead of a socket.
The run's usage is charged to its owner's key when it ends (admission happened when it was
queued).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Iterable
from typing import Any

import msgspec

from gateway.exchange import ClientDisconnected, Exchange
from gateway.policy.auth import Principal
from gateway.redis.connection import blocking_client
from gateway.redis.jobs import Job, JobConsumer
from gateway.responses import endpoint
from gateway.responses.background import (
    CANCELLED,
    DONE,
    JOBS_GROUP,
    QUEUED,
    RUNNING,
    TERMINAL_EVENTS,
    BackgroundStore,
    background_store,
)
from gateway.responses.frames import FrameSplitter
from gateway.responses.request import parse_responses_request
from gateway.responses.store import ResponseStore
from gateway.responses.upstreams import Turn, begin_turn
from gateway.services import Services
from gateway.translate import response_skeleton

log = logging.getLogger("gateway.responses.worker")
_OBJECT = msgspec.json.Decoder(dict[str, Any])
_ENCODER = msgspec.json.Encoder()
# The job consumer's timers (its name is "responses").
LEASE_RENEW = "responses_lease_renew"
REAPER = "responses_reaper"


class RunChannel:
    """A background run's :class:`~gateway.exchange.ClientChannel`: each event goes to the run's
    event stream, renumbered after what the stream holds; an error answered before the stream
    started becomes ``error`` and ``response.failed`` there (and the failed record)."""

    def __init__(self, runs: BackgroundStore, skeleton: dict[str, Any], offset: int) -> None:
        self._runs = runs
        self._skeleton = skeleton
        self._offset = offset
        self._frames = FrameSplitter()
        self.started = False
        self.final: dict[str, Any] | None = None
        self._task: asyncio.Task[Any] | None = None
        self._gone = False

    def presented_key(self) -> str | None:
        return None

    def header(self, name: bytes) -> str | None:
        return None

    async def read_body(self, limit: int) -> bytes:
        raise AssertionError("a background run has no body to read")

    async def send_json(self, status: int, body: bytes, headers: Iterable[tuple[str, str]] = ()) -> None:
        self.started = True
        error = _OBJECT.decode(body).get("error") or {}
        failed = {
            **self._skeleton,
            "status": "failed",
            "error": {"code": str(error.get("code") or "server_error"), "message": str(error.get("message"))},
        }
        events = [
            {
                "type": "error",
                "code": error.get("code"),
                "message": str(error.get("message") or ""),
                "param": error.get("param"),
                "error": error,
                "sequence_number": 0,
            },
            {"type": "response.failed", "response": failed, "sequence_number": 1},
        ]
        await self._publish([_ENCODER.encode(event) for event in events])

    async def start_stream(self, headers: Iterable[tuple[str, str]] = ()) -> None:
        self.started = True

    async def send_chunk(self, chunk: bytes) -> None:
        if self._gone:
            raise ClientDisconnected
        await self._publish(self._frames.feed(chunk))

    async def _publish(self, datas: list[bytes]) -> None:
        if not datas:
            return
        out = []
        for data in datas:
            event = _OBJECT.decode(data)
            sequence = event.get("sequence_number")
            if isinstance(sequence, int):
                event["sequence_number"] = sequence + self._offset
            if event.get("type") in TERMINAL_EVENTS:
                self.final = event["response"]
            out.append(_ENCODER.encode(event))
        await self._runs.publish(str(self._skeleton["id"]), out)

    async def end_stream(self) -> None:
        return None

    def cancel(self) -> None:
        """The run was cancelled: stop it as a client that went away stops a request."""
        self._gone = True
        if self._task is not None:
            self._task.cancel()

    @contextlib.asynccontextmanager
    async def cancel_on_disconnect(self) -> AsyncIterator[None]:
        task = asyncio.current_task()
        assert task is not None
        self._task = task
        try:
            yield
        except asyncio.CancelledError:
            if self._gone:
                task.uncancel()
                raise ClientDisconnected from None
            raise
        finally:
            self._task = None


class Worker:
    """Reads background jobs, runs them, renews their leases, takes over dead replicas' runs."""

    def __init__(self, services: Services, *, lease_seconds: float, concurrency: int) -> None:
        self.services = services
        settings = services.settings
        self.runs = BackgroundStore(
            ResponseStore(
                services.redis, prefix=settings.redis.key_prefix, ttl=settings.responses.ttl_seconds
            ),
            services.redis,
        )
        self.blocking = blocking_client(services.redis, max_connections=1, name="gateway-responses-jobs")
        self.lease = lease_seconds
        self.jobs = JobConsumer(
            name="responses",
            redis=services.redis,
            blocking=self.blocking,
            key=self.runs.jobs_key,
            group=JOBS_GROUP,
            consumer_prefix="rw-",
            clock=services.clock,
            lease_seconds=lease_seconds,
            concurrency=concurrency,
            run=self._job,
            renewed=self._cancel_cancelled,
        )
        self.id = self.jobs.id
        self._channels: dict[str, RunChannel] = {}  # job entry id -> its run's channel

    async def start(self) -> None:
        await self.jobs.start()

    async def stop(self) -> None:
        """Stop reading jobs; running runs stay pending, for another replica to take over."""
        await self.jobs.stop()
        await self.blocking.aclose()

    async def _job(self, job: Job) -> None:
        if job.takeover:
            log.info("taking over background response %s", job.fields[b"id"].decode())
        try:
            await self.run(job.fields, entry_id=job.entry_id)
        finally:
            self._channels.pop(job.entry_id, None)

    async def run(self, fields: dict[bytes, bytes], *, entry_id: str) -> None:
        """Run one job (stream entry ``entry_id``) to its end (or to its cancellation)."""
        services = self.services
        response_id, owner = fields[b"id"].decode(), fields[b"owner"].decode()
        body = fields[b"body"]
        request = parse_responses_request(body)
        request = msgspec.structs.replace(request, data={**request.data, "stream": True}, stream=True)
        skeleton = response_skeleton(
            request.data,
            response_id=response_id,
            created_at=int(fields[b"created_at"]),
            previous_response_id=request.previous_response_id,
        )
        state = await self.runs.claim(response_id, skeleton, self.id)
        if state not in (QUEUED, RUNNING):
            return  # cancelled while queued, or finished by a replica that then died
        channel = RunChannel(self.runs, skeleton, await self.runs.last_sequence(response_id) + 1)
        self._channels[entry_id] = channel
        turn: Turn | None = None
        async with Exchange(services, channel, route=endpoint.ROUTE, error_api="responses") as exchange:
            exchange.model = request.model
            turn = await begin_turn(
                services,
                self.runs.records,
                Principal(owner, owner),
                request,
                response_id=response_id,
                created_at=int(fields[b"created_at"]),
            )
            plan = exchange.plan(request.model, turn.prompt_tokens, param="input")
            await endpoint.run(exchange, services, turn, plan, stream=True)
        if await self.runs.state(response_id) == CANCELLED:
            return
        recorded = turn is not None and turn.finished is not None
        final = channel.final or {**skeleton, "status": "failed"}
        await self.runs.finish(response_id, DONE, None if recorded else final)
        await self._charge(owner, request.model, exchange)

    async def _charge(self, owner: str, model: str, exchange: Exchange) -> None:
        relay = exchange.relay
        attempts = exchange.trace.attempts
        if relay is None or not attempts:
            return
        last = attempts[-1]
        try:
            await self.services.policy.charge(
                owner,
                model=model,
                usage=relay.usage,
                request_id=exchange.request_id,
                endpoint=endpoint.ROUTE,
                provider=last.provider,
                upstream_model=last.upstream_model,
                attempts=len(attempts),
            )
        except Exception:
            log.exception("charging a background response's usage failed")

    # -- cancellations ---------------------------------------------------------------------
    async def _cancel_cancelled(self, running: list[Job]) -> None:
        """After each lease renewal: stop the runs cancelled meanwhile (a run that has its
        channel stops as a client that went away; one still starting, by its task)."""
        states = await self.runs.states([job.fields[b"id"].decode() for job in running])
        for job, state in zip(running, states, strict=True):
            if state != CANCELLED:
                continue
            channel = self._channels.get(job.entry_id)
            if channel is not None:
                channel.cancel()
            elif job.task is not None:
                job.task.cancel()


def build_worker(services: Services) -> Worker | None:
    settings = services.settings.responses
    if not settings.background_worker:
        return None
    return Worker(
        services, lease_seconds=settings.background_lease_seconds, concurrency=settings.background_concurrency
    )


__all__ = ["RunChannel", "Worker", "background_store", "build_worker"]
