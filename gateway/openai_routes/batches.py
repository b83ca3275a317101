"""``/v1/batches``: create, list, retrieve and cancel, scoped to the key that created them.

A batch is created on the provider holding its input file, which must be the caller's own
``batch`` file; every model the file names must still be allowed for the key (and the first one
admits the request against the key's limits). The provider's batch comes back with the
gateway's ids: its own, its input file's, and its output and error files' once they exist —
those join the caller's files (listed, readable and deletable like an upload). Every operation is
admitted and settled like any request (:mod:`.hosted`); a batch read finished has its tokens
charged once (:mod:`.batch_usage`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import msgspec

from gateway.errors.client import InvalidRequest
from gateway.exchange import ClientChannel, Exchange
from gateway.exchange.body import decode_json_object, invalid_type, missing
from gateway.openai_routes.batch_usage import FINISHED, charge_once
from gateway.openai_routes.files import limit_param, order_param, owned
from gateway.openai_routes.hosted import (
    JsonObject,
    admit,
    call_object,
    provider_plan,
    store_of,
    stored,
)
from gateway.openai_routes.objects import Record, batch_not_found, mint, where
from gateway.policy.engine import Caller
from gateway.services import Services
from gateway.upstream import Deployment

ROUTE = "/v1/batches"
ONE = "/v1/batches/{batch_id}"
CANCEL = "/v1/batches/{batch_id}/cancel"
_ENCODER = msgspec.json.Encoder()


async def _mapped(
    exchange: Exchange, caller: Caller, plan: list[Deployment], batch: dict[str, Any], record: Record
) -> dict[str, Any]:
    """The provider's batch with the gateway's ids; new output and error files registered as
    the caller's."""
    services = exchange.services
    store = store_of(services)
    owner = caller.principal.key_id
    batch_id = batch["id"] = mint("batches", record.provider, record.upstream_id)
    batch["input_file_id"] = record.input_file
    for field in ("output_file_id", "error_file_id"):
        upstream_id = batch.get(field)
        if not isinstance(upstream_id, str) or not upstream_id:
            continue
        file_id = mint("files", record.provider, upstream_id)
        batch[field] = file_id
        if await stored(store.get(owner, file_id)) is None:
            found = await call_object(exchange, plan, "GET", f"/files/{upstream_id}")
            found["id"] = file_id
            output = Record(
                provider=record.provider,
                upstream_id=upstream_id,
                purpose=str(found.get("purpose") or ""),
                models=record.models,
                batch=batch_id if field == "output_file_id" else "",
            )
            at = float(found.get("created_at") or services.clock.now())
            await stored(store.put("files", owner, file_id, output, found, created_at=at))
    return batch


async def create(services: Services, channel: ClientChannel) -> None:
    async with Exchange(services, channel, route=ROUTE, error_api="chat") as exchange:
        caller = await exchange.authenticate()
        raw = await exchange.read_body()
        data = decode_json_object(raw)
        file_id = data.get("input_file_id")
        if file_id is None:
            raise missing("input_file_id")
        if not isinstance(file_id, str):
            raise invalid_type("input_file_id", "a string", file_id)
        source = await owned(services, caller, file_id)
        if source.purpose != "batch" or not source.models:
            raise InvalidRequest(
                f"The file {file_id} was not uploaded with purpose 'batch'.",
                param="input_file_id",
                code="invalid_value",
            )
        plan = provider_plan(services, source.provider, "Batches")
        await admit(exchange, caller, models=source.models)
        body = _ENCODER.encode({**data, "input_file_id": source.upstream_id})
        async with exchange.upstream():
            batch = await call_object(exchange, plan, "POST", "/batches", body)
            upstream_id = str(batch.get("id") or "")
            record = Record(
                provider=source.provider, upstream_id=upstream_id, models=source.models, input_file=file_id
            )
            batch = await _mapped(exchange, caller, plan, batch, record)
        at = float(batch.get("created_at") or services.clock.now())
        owner = caller.principal.key_id
        await stored(store_of(services).put("batches", owner, batch["id"], record, batch, created_at=at))
        await exchange.send_json(JsonObject(batch))


async def _owned(services: Services, caller: Caller, batch_id: str) -> Record:
    if where("batches", batch_id) is None:
        raise batch_not_found(batch_id)
    record = await stored(store_of(services).get(caller.principal.key_id, batch_id))
    if record is None:
        raise batch_not_found(batch_id)
    return record


async def _fresh(
    exchange: Exchange, caller: Caller, batch_id: str, record: Record, *, cancel: bool
) -> dict[str, Any]:
    services = exchange.services
    plan = provider_plan(services, record.provider, "Batches")
    path = f"/batches/{record.upstream_id}" + ("/cancel" if cancel else "")
    batch = await call_object(exchange, plan, "POST" if cancel else "GET", path)
    output = batch.get("output_file_id")
    batch = await _mapped(exchange, caller, plan, batch, record)
    await stored(store_of(services).refresh(caller.principal.key_id, batch_id, batch))
    if batch.get("status") in FINISHED and isinstance(output, str) and output:
        await charge_once(services, caller.principal.key_id, batch_id, record, output)
    return batch


async def retrieve(services: Services, channel: ClientChannel, batch_id: str) -> None:
    async with Exchange(services, channel, route=ONE, error_api="chat") as exchange:
        caller = await exchange.authenticate()
        record = await _owned(services, caller, batch_id)
        provider_plan(services, record.provider, "Batches")  # a provider that still serves batches
        await admit(exchange, caller, models=record.models)
        async with exchange.upstream():
            batch = await _fresh(exchange, caller, batch_id, record, cancel=False)
        await exchange.send_json(JsonObject(batch))


async def cancel(services: Services, channel: ClientChannel, batch_id: str) -> None:
    async with Exchange(services, channel, route=CANCEL, error_api="chat") as exchange:
        caller = await exchange.authenticate()
        record = await _owned(services, caller, batch_id)
        provider_plan(services, record.provider, "Batches")  # a provider that still serves batches
        await admit(exchange, caller, models=record.models)
        async with exchange.upstream():
            batch = await _fresh(exchange, caller, batch_id, record, cancel=True)
        await exchange.send_json(JsonObject(batch))


async def list_batches(services: Services, channel: ClientChannel, query: Mapping[str, str]) -> None:
    """The caller's batches, newest first, each as its provider tells it now."""
    async with Exchange(services, channel, route=ROUTE, error_api="chat") as exchange:
        caller = await exchange.authenticate(admits=True)
        limit = limit_param(query.get("limit"), 20, 100)
        newest_first = order_param(query.get("order"))
        await admit(exchange, caller)
        store = store_of(services)
        owner = caller.principal.key_id
        ids = await stored(
            store.page("batches", owner, after=query.get("after"), count=limit + 1, newest_first=newest_first)
        )
        more = len(ids) > limit
        ids = ids[:limit]
        records = [await stored(store.get(owner, batch_id)) for batch_id in ids]
        async with exchange.upstream():
            found = await asyncio.gather(
                *(
                    _fresh(exchange, caller, batch_id, record, cancel=False)
                    for batch_id, record in zip(ids, records, strict=True)
                    if record is not None
                )
            )
        page = {
            "object": "list",
            "data": list(found),
            "first_id": found[0]["id"] if found else None,
            "last_id": found[-1]["id"] if found else None,
            "has_more": more,
        }
        await exchange.send_json(JsonObject(page))
