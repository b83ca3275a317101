"""A finished batch's tokens, charged once to the key that created it, at batch prices.

A batch's requests run at the provider, out of any request the gateway admits; what they used
is in its output file, one line per request with the upstream's answer and its ``usage``. When a
batch is seen finished with an output file (its status read as ``completed``, ``cancelled`` or
``expired``, or its output downloaded), the first replica to see it marks the batch's record
(``charged``, a field of the record's hash in the owner's slot: one ``HSETNX``, so two replicas
or two readers charge it once), reads the output file from the provider line by line (never
held whole) and charges the sum of its lines' usage per model to the key and its team: cost to
every budget window and rollup at the price table's batch rates, one usage event per model
(endpoint ``/v1/batches``, ``usage_source`` ``batch``). The per-minute token limiter is not
charged: the provider ran the batch over hours, in its own queue. When the output cannot be
read, the mark is taken back and a later read tries again; the client's own call is unaffected.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import httpx
import msgspec

from gateway.clock import STREAM_IDLE, Watchdog
from gateway.dialects.openai_routes import open_body
from gateway.errors import AttemptFailed
from gateway.openai_routes.hosted import provider_plan, store_of
from gateway.openai_routes.objects import ObjectStore, Record
from gateway.policy.store import STORE_ERRORS
from gateway.policy.usage import usage_from_dict, usage_from_responses
from gateway.pricing import BATCH, Usage
from gateway.services import Services
from gateway.upstream import Router
from gateway.upstream.failover import Attempt, Failover, Trace

log = logging.getLogger("gateway.openai_routes")
ENDPOINT = "/v1/batches"
FINISHED = frozenset({"completed", "cancelled", "expired"})  # statuses whose output is billed


class _Body(msgspec.Struct):
    model: str = ""
    usage: dict[str, Any] | None = None


class _Answer(msgspec.Struct):
    status_code: int = 0
    body: _Body | None = None


class _Line(msgspec.Struct):
    response: _Answer | None = None


_LINE = msgspec.json.Decoder(_Line)


def line_usage(line: bytes) -> tuple[str, Usage] | None:
    """``(upstream model, usage)`` of one output line (Chat Completions, embeddings and
    completions usage, or Responses'); None for a failed request or a line without usage."""
    try:
        answer = _LINE.decode(line).response
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None
    if answer is None or answer.body is None or answer.body.usage is None:
        return None
    raw = answer.body.usage
    usage = usage_from_responses(raw) if "input_tokens" in raw else usage_from_dict(raw)
    if usage is None:
        return None
    return answer.body.model, usage


def summed(lines: Iterable[bytes], totals: dict[str, Usage]) -> None:
    """Add each line's usage to ``totals`` (by the answer's upstream model name)."""
    for line in lines:
        if not line.strip():
            continue
        found = line_usage(line)
        if found is None:
            continue
        model, usage = found
        totals[model] = usage.plus(totals.get(model))


def public_model(router: Router, record: Record, answered: str) -> tuple[str, str]:
    """``(public model, configured upstream model)`` of an answer's model name: the batch's model
    whose deployment on the batch's provider names it (an answer may name a dated snapshot of
    it, ``gpt-4o-mini-2024-07-18``); else the batch's first model."""
    fallback: tuple[str, str] | None = None
    for model in record.models:
        for deployment in router.deployments(model):
            if deployment.provider != record.provider:
                continue
            upstream = deployment.upstream_model
            if answered == upstream or answered.startswith(upstream + "-"):
                return model, upstream
            if fallback is None:
                fallback = (model, upstream)
    return fallback or (record.models[0] if record.models else "", answered)


async def output_usage(services: Services, record: Record, output_id: str) -> dict[str, Usage]:
    """The summed usage of a batch's output file (upstream id ``output_id``), by upstream model,
    read as it streams from the provider (with the usual retries)."""
    plan = provider_plan(services, record.provider, "Batches")
    path = f"/files/{output_id}/content"

    async def once(attempt: Attempt) -> httpx.Response:
        return await open_body(attempt, attempt.upstream.request("GET", path), services.clock)

    response: httpx.Response = await Failover[httpx.Response](services.router, services.clock, Trace()).run(
        plan, once
    )
    idle_timeout = services.router.upstreams[record.provider].settings.timeouts.idle
    idle = Watchdog(services.clock, idle_timeout, name=STREAM_IDLE)
    totals: dict[str, Usage] = {}
    rest = b""
    try:
        async for chunk in response.aiter_raw():
            idle.touch()
            lines = (rest + chunk).split(b"\n")
            rest = lines.pop()
            summed(lines, totals)
    except BaseException:
        if not idle.absorb():
            raise
        raise TimeoutError(f"no data for {idle_timeout:g} s") from None
    finally:
        idle.cancel()
        await response.aclose()
    summed([rest], totals)
    return totals


async def charge_once(services: Services, owner: str, batch_id: str, record: Record, output_id: str) -> None:
    """Charge the finished batch ``batch_id`` (its record ``record``, its output file's upstream
    id ``output_id``) to ``owner`` unless it was charged already. Never raises for the caller:
    a charge that cannot be made now is left for a later read."""
    if record.charged or not services.policy.enabled:
        return
    store = store_of(services)
    try:
        if not await store.claim_charge(owner, batch_id):
            return
    except STORE_ERRORS as exc:
        log.warning(
            "batch %s: the charge mark could not be written (%s); a later read charges it", batch_id, exc
        )
        return
    try:
        totals = await output_usage(services, record, output_id)
    except (AttemptFailed, httpx.HTTPError, TimeoutError) as exc:
        log.warning(
            "batch %s: its output could not be read to charge it (%s); a later read tries again",
            batch_id,
            exc,
        )
        await _release(store, owner, batch_id)
        return
    by_model: dict[tuple[str, str], Usage] = {}
    for answered, usage in totals.items():
        key = public_model(services.router, record, answered)
        by_model[key] = usage.plus(by_model.get(key))
    done = 0
    try:
        for (model, upstream_model), usage in by_model.items():
            await services.policy.charge(
                owner,
                model=model,
                usage=msgspec.structs.replace(usage, source=BATCH),
                request_id=batch_id,
                endpoint=ENDPOINT,
                provider=record.provider,
                upstream_model=upstream_model,
                stream=False,
                attempts=0,
            )
            done += 1
    except STORE_ERRORS as exc:  # the key could not be read: nothing was queued for this model
        log.error("batch %s: charged for %d of %d models (%s)", batch_id, done, len(by_model), exc)
        if not done:
            await _release(store, owner, batch_id)


async def _release(store: ObjectStore, owner: str, batch_id: str) -> None:
    try:
        await store.release_charge(owner, batch_id)
    except STORE_ERRORS:
        log.error("batch %s: the charge mark could not be taken back; it is not charged", batch_id)
