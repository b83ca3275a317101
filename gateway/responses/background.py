"""Background responses (``background: true``): the run is a job in Redis that any replica may
take, the client polls the record or follows the run's events.

Keys (``P`` is ``[redis] key_prefix``; a response's keys share its hash tag, so one script may
touch them together):

=============================  ================================================================
``P resp:{<id>}``              the response's record; while the run lasts it holds ``owner``,
                               ``body`` (the Response as polling shows it: ``queued``, then
                               ``in_progress``), ``output`` (``[]``) and ``bg``, the run's state
                               (``queued``, ``in_progress``, ``done``, ``cancelled``) and
                               ``worker``, the consumer running it; the finished run writes the
                               whole record as any response's
``P resp:{<id>}:events``       the run's events in order (field ``e``: the event's JSON), read
                               by ``GET /v1/responses/{id}?stream=true&starting_after=N``
``P responses:jobs``           the job stream (one entry per run: id, owner, body), consumed by
                               the group ``responses`` (see :mod:`.worker`)
=============================  ================================================================

A queued run is cancelled by flipping ``bg`` (a script: only a queued or running run of its
owner); the replica that runs it notices within a third of the lease and cancels the task, which
closes the upstream call.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import msgspec
import redis.asyncio as aioredis

from gateway.errors.client import InvalidRequest
from gateway.redis.connection import blocking_client
from gateway.responses import errors
from gateway.responses.store import F_BODY, F_OUTPUT, F_OWNER, ResponseStore, Script
from gateway.services import Services
from gateway.translate import encode_event, response_skeleton

if TYPE_CHECKING:
    from gateway.exchange import Exchange
    from gateway.responses.upstreams import Turn

JOBS_GROUP = "responses"
F_BG = b"bg"
QUEUED, RUNNING, DONE, CANCELLED = "queued", "in_progress", "done", "cancelled"
TERMINAL_EVENTS = frozenset({"response.completed", "response.incomplete", "response.failed"})
_ENCODER = msgspec.json.Encoder()
_OBJECT = msgspec.json.Decoder(dict[str, Any])

# Start (or take over) a run: only a queued or running one. Returns the state it had.
_CLAIM = Script(
    """
local state = redis.call('HGET', KEYS[1], 'bg')
if state == 'queued' or state == 'in_progress' then
  redis.call('HSET', KEYS[1], 'bg', 'in_progress', 'body', ARGV[1], 'worker', ARGV[2])
end
return state
"""
)

# Cancel a queued or running run of ARGV[1]; returns {state before, body} (false: not theirs).
_CANCEL = Script(
    """
local v = redis.call('HMGET', KEYS[1], 'owner', 'bg', 'body')
if not v[1] or v[1] ~= ARGV[1] or not v[2] then return false end
if v[2] == 'queued' or v[2] == 'in_progress' then
  redis.call('HSET', KEYS[1], 'bg', 'cancelled')
end
return {v[2], v[3]}
"""
)


class BackgroundStore:
    """The background runs' keys (see the module docstring)."""

    __slots__ = ("records", "redis")

    def __init__(self, records: ResponseStore, redis: aioredis.Redis) -> None:
        self.records = records
        self.redis = redis

    @property
    def jobs_key(self) -> str:
        return f"{self.records.prefix}responses:jobs"

    def events_key(self, response_id: str) -> str:
        return self.records.key(response_id) + ":events"

    async def queue(self, response: dict[str, Any], owner: str, body: bytes) -> None:
        """The queued record (its TTL with it), then the job."""
        key = self.records.key(response["id"])
        pipe = self.redis.pipeline(transaction=True)
        pipe.hset(
            key,
            mapping={
                F_OWNER: owner.encode(),
                F_BODY: _ENCODER.encode(response),
                F_OUTPUT: b"[]",
                F_BG: QUEUED,
            },
        )
        pipe.expire(key, self.records.ttl)
        events = self.events_key(response["id"])
        queued = {"type": "response.queued", "response": response, "sequence_number": 0}
        pipe.xadd(events, {"e": _ENCODER.encode(queued)})
        pipe.expire(events, self.records.ttl)
        await pipe.execute()
        await self.redis.xadd(
            self.jobs_key,
            {"id": response["id"], "owner": owner, "body": body, "created_at": str(response["created_at"])},
        )

    async def claim(self, response_id: str, body: dict[str, Any], worker: str) -> str | None:
        """Mark the run ``in_progress`` by ``worker`` (``body``: the Response as polling shows it
        now) when it is queued or running; the state it had (None: no such run)."""
        state = await _CLAIM.run(self.redis, [self.records.key(response_id)], [_ENCODER.encode(body), worker])
        return state.decode() if isinstance(state, bytes) else None

    async def state(self, response_id: str) -> str | None:
        raw = await self.redis.hget(self.records.key(response_id), "bg")
        return raw.decode() if isinstance(raw, bytes) else None

    async def states(self, response_ids: list[str]) -> list[str | None]:
        pipe = self.redis.pipeline(transaction=False)
        for response_id in response_ids:
            pipe.hget(self.records.key(response_id), "bg")
        return [raw.decode() if isinstance(raw, bytes) else None for raw in await pipe.execute()]

    async def finish(self, response_id: str, state: str, body: dict[str, Any] | None = None) -> None:
        key = self.records.key(response_id)
        mapping: dict[bytes, bytes] = {F_BG: state.encode()}
        if body is not None:
            mapping[F_BODY] = _ENCODER.encode({**body, "output": []})
            mapping[F_OUTPUT] = _ENCODER.encode(body.get("output") or [])
        await self.redis.hset(key, mapping=mapping)  # type: ignore[arg-type]

    async def last_sequence(self, response_id: str) -> int:
        """The sequence number of the run's last event (-1: none yet)."""
        found: Any = await self.redis.xrevrange(self.events_key(response_id), count=1)
        if not found:
            return -1
        return int(_OBJECT.decode(found[0][1][b"e"]).get("sequence_number", -1))

    async def publish(self, response_id: str, events: list[bytes]) -> None:
        key = self.events_key(response_id)
        pipe = self.redis.pipeline(transaction=True)
        for event in events:
            pipe.xadd(key, {"e": event})
        pipe.expire(key, self.records.ttl)
        await pipe.execute()

    async def cancel(self, response_id: str, owner: str) -> tuple[str, dict[str, Any]] | None:
        """Cancel ``owner``'s run: its state before and the Response (None: not a run of theirs)."""
        found = await _CANCEL.run(self.redis, [self.records.key(response_id)], [owner])
        if not found:
            return None
        state, body = found[0].decode(), _OBJECT.decode(found[1])
        if state in (QUEUED, RUNNING):
            body = {**body, "status": "cancelled", "completed_at": None}
            await self.finish(response_id, CANCELLED, {**body, "output": []})
        return state, body


def background_store(services: Services) -> BackgroundStore:
    settings = services.settings
    records = ResponseStore(
        services.redis, prefix=settings.redis.key_prefix, ttl=settings.responses.ttl_seconds
    )
    return BackgroundStore(records, services.redis)


def queued_response(turn: Turn) -> dict[str, Any]:
    response = response_skeleton(
        turn.data,
        response_id=turn.response_id,
        created_at=turn.created_at,
        previous_response_id=turn.previous_response_id,
    )
    response["status"] = "queued"
    response["background"] = True
    return response


async def enqueue(services: Services, exchange: Exchange, turn: Turn, body: bytes) -> None:
    """Queue the admitted turn as a job and answer it queued (JSON, or its events when the
    client asked for a stream)."""
    response = queued_response(turn)
    runs = background_store(services)
    await runs.queue(response, turn.principal.key_id, body)
    exchange.outcome.ok()
    if exchange.ticket is not None:
        exchange.ticket.settle(status=202)  # the run charges its own usage when it ends
    if not turn.request.stream:
        await exchange.channel.send_json(200, _ENCODER.encode(response), exchange.headers_now())
        return
    await exchange.channel.start_stream(exchange.headers_now())
    async with exchange.upstream():
        async for chunk in follow(services, runs, turn.response_id, starting_after=None):
            await exchange.channel.send_chunk(chunk)
    await exchange.channel.end_stream()


async def follow(
    services: Services,
    runs: BackgroundStore,
    response_id: str,
    *,
    starting_after: int | None,
) -> AsyncIterator[bytes]:
    """The run's events as SSE frames, from the one after ``starting_after``, until its end
    (``response.queued``, numbered 0, is the first). Waits on Redis (a blocking read on a client
    of its own), never on time."""
    reader = blocking_client(services.redis, max_connections=1, name="gateway-responses-follow")
    key = runs.events_key(response_id)
    last_id = "0"
    try:
        while True:
            found: Any = await reader.xread({key: last_id}, count=100, block=1000)
            entries = found[0][1] if found else []
            for entry_id, fields in entries:
                last_id = entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
                event = _OBJECT.decode(fields[b"e"])
                sequence = event.get("sequence_number")
                if starting_after is not None and isinstance(sequence, int) and sequence <= starting_after:
                    continue
                yield encode_event(event)
                if event.get("type") in TERMINAL_EVENTS:
                    return
            if not entries and await runs.state(response_id) in (DONE, CANCELLED, None):
                return
    finally:
        await reader.aclose()


def starting_after(raw: str | None) -> int | None:
    if raw is None:
        return None
    if not raw.isascii() or not raw.isdigit():
        raise InvalidRequest(
            f"Invalid 'starting_after': expected a non-negative integer, but got '{raw}' instead.",
            param="starting_after",
            code="invalid_type",
        )
    return int(raw)


async def stream_run(
    services: Services, owner: str, response_id: str, after: str | None
) -> AsyncIterator[bytes] | None:
    """The events of ``owner``'s background run ``response_id`` (None: a response that is not
    a background one). Raises the 404 for an unknown or foreign id."""
    runs = background_store(services)
    values: Any = await services.redis.hmget(runs.records.key(response_id), ["owner", "bg"])
    if values[0] is None or values[0] != owner.encode():
        raise errors.response_not_found(response_id)
    if values[1] is None:
        return None
    return follow(services, runs, response_id, starting_after=starting_after(after))
