"""``/v1/files``: upload, list, retrieve, delete and download, scoped to the key that uploaded.

Every operation is admitted and settled like any request (:mod:`.hosted`). An upload goes to the
provider that will use the file. A ``batch`` file names its models on
every line (``body.model``): each must be configured and allowed for the key, and served by one
provider that serves files, which receives the file with the public names replaced by that
provider's model names. Other files go to the provider of the optional ``model`` form field,
else to the first configured provider that serves files. The provider's answer comes back with
the gateway's id (:mod:`.objects`); every later call routes by that id and answers 404 to any
other key.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx
import msgspec

from gateway.config.providers import OpenAIRoute
from gateway.dialects.openai_routes import open_body, serves
from gateway.errors.client import InvalidRequest
from gateway.exchange import ClientChannel, Exchange
from gateway.exchange.body import missing, parse_count
from gateway.openai_routes import multipart
from gateway.openai_routes.batch_usage import charge_once
from gateway.openai_routes.hosted import (
    ZERO,
    JsonObject,
    admit,
    call_object,
    files_provider,
    not_supported,
    provider_plan,
    store_of,
    stored,
)
from gateway.openai_routes.objects import Record, file_not_found, mint, where
from gateway.openai_routes.passthrough import open_answer, relay_body
from gateway.policy.engine import Caller
from gateway.services import Services
from gateway.upstream import Deployment
from gateway.upstream.failover import Attempt
from gateway.upstream.http11_transport import BodyPieces

ROUTE = "/v1/files"
ONE = "/v1/files/{file_id}"
CONTENT = "/v1/files/{file_id}/content"
_DECODER = msgspec.json.Decoder()
_ENCODER = msgspec.json.Encoder()


def _line_error(number: int, message: str) -> InvalidRequest:
    return InvalidRequest(
        f"Line {number} of the batch file: {message}", param="file", code="invalid_batch_file"
    )


def _deployment_on(services: Services, model: str, provider: str | None) -> Deployment | None:
    for deployment in services.router.deployments(model):
        upstream = services.router.upstream(deployment)
        if serves(upstream, OpenAIRoute.FILES) and provider in (None, deployment.provider):
            return deployment
    return None


def batch_file(services: Services, caller: Caller, content: bytes) -> tuple[str, bytes, tuple[str, ...]]:
    """A batch input file for one provider: ``(provider, content with upstream model names,
    public models)``. Each line's model must be configured, allowed for the key and served by
    the provider of the first line's model."""
    provider: str | None = None
    models: list[str] = []
    out: list[bytes] = []
    for number, line in enumerate(content.split(b"\n"), start=1):
        if not line.strip():
            out.append(line)
            continue
        try:
            entry = _DECODER.decode(line)
        except msgspec.DecodeError:
            raise _line_error(number, "not a JSON object.") from None
        body = entry.get("body") if isinstance(entry, dict) else None
        model = body.get("model") if isinstance(body, dict) else None
        if not isinstance(entry, dict) or not isinstance(body, dict) or not isinstance(model, str):
            raise _line_error(number, "expected an object with a 'body' naming its 'model'.")
        if not services.router.knows(model):
            raise _line_error(number, f"the model '{model}' does not exist.")
        services.policy.check_model(caller, model)
        deployment = _deployment_on(services, model, provider)
        if deployment is None:
            where_ = "a provider that serves files" if provider is None else f"provider '{provider}'"
            raise _line_error(number, f"the model '{model}' is not served by {where_}.")
        provider = deployment.provider
        if model not in models:
            models.append(model)
        if deployment.upstream_model != model:
            entry = {**entry, "body": {**body, "model": deployment.upstream_model}}
            line = _ENCODER.encode(entry)
        out.append(line)
    if provider is None:
        raise InvalidRequest("The batch file has no requests.", param="file", code="invalid_batch_file")
    return provider, b"\n".join(out), tuple(models)


async def upload(services: Services, channel: ClientChannel) -> None:
    async with Exchange(services, channel, route=ROUTE, error_api="chat") as exchange:
        caller = await exchange.authenticate(admits=True)
        raw = await exchange.read_body()
        content_type = channel.header(b"content-type")
        boundary = multipart.boundary_of(content_type)
        parts = multipart.scan(raw, boundary)
        purpose = multipart.field(raw, parts, "purpose")
        if not purpose:
            raise missing("purpose")
        file = multipart.find(parts, "file")
        if file is None or file.filename is None:
            raise missing("file")
        body: bytes | BodyPieces = raw
        models: tuple[str, ...] = ()
        if purpose == "batch":
            provider, content, models = batch_file(services, caller, raw[file.start : file.end])
            if content != raw[file.start : file.end]:
                body = BodyPieces(multipart.replace(raw, file, content))
        else:
            model = multipart.field(raw, parts, "model")
            found: str | None
            if model:
                services.policy.check_model(caller, model)
                deployment = _deployment_on(services, model, None)
                found = deployment.provider if deployment is not None else None
                models = (model,)
            else:
                found = files_provider(services)
            if found is None:
                raise not_supported(model or "(none)", "Uploading files")
            provider = found
        plan = provider_plan(services, provider, "Uploading files")
        await admit(exchange, caller, models=models)
        assert content_type is not None
        async with exchange.upstream():
            created = await call_object(exchange, plan, "POST", "/files", body, content_type=content_type)
        upstream_id = str(created.get("id") or "")
        file_id = mint("files", provider, upstream_id)
        created["id"] = file_id
        record = Record(provider=provider, upstream_id=upstream_id, purpose=purpose, models=models)
        at = float(created.get("created_at") or services.clock.now())
        await stored(
            store_of(services).put("files", caller.principal.key_id, file_id, record, created, created_at=at)
        )
        await exchange.send_json(JsonObject(created))


async def owned(services: Services, caller: Caller, file_id: str) -> Record:
    """The caller's file ``file_id``, or the 404 of a file that does not exist (its models
    are not checked here)."""
    if where("files", file_id) is None:
        raise file_not_found(file_id)
    record = await stored(store_of(services).get(caller.principal.key_id, file_id))
    if record is None:
        raise file_not_found(file_id)
    return record


def limit_param(raw: str | None, default: int, most: int) -> int:
    if raw is None:
        return default
    limit = parse_count(raw)
    if limit is None or not 1 <= limit <= most:
        raise InvalidRequest(
            f"Invalid 'limit': expected an integer between 1 and {most}.", param="limit", code="invalid_value"
        )
    return limit


def order_param(raw: str | None) -> bool:
    """Newest first (``desc``, the default) or oldest first (``asc``)."""
    if raw in (None, "desc"):
        return True
    if raw == "asc":
        return False
    raise InvalidRequest("Invalid 'order': expected 'asc' or 'desc'.", param="order", code="invalid_value")


async def list_files(services: Services, channel: ClientChannel, query: Mapping[str, str]) -> None:
    async with Exchange(services, channel, route=ROUTE, error_api="chat") as exchange:
        caller = await exchange.authenticate(admits=True)
        limit = limit_param(query.get("limit"), 10000, 10000)
        newest_first = order_param(query.get("order"))
        await admit(exchange, caller)
        purpose = query.get("purpose")
        store = store_of(services)
        owner = caller.principal.key_id
        found: list[dict[str, Any]] = []
        after = query.get("after")
        more = False
        while len(found) <= limit:
            ids = await stored(store.page("files", owner, after=after, count=100, newest_first=newest_first))
            if not ids:
                break
            for snapshot in await stored(store.snapshots(owner, ids)):
                if snapshot is not None and (purpose is None or snapshot.get("purpose") == purpose):
                    found.append(snapshot)
            after = ids[-1]
        if len(found) > limit:
            found, more = found[:limit], True
        page = {
            "object": "list",
            "data": found,
            "first_id": found[0]["id"] if found else None,
            "last_id": found[-1]["id"] if found else None,
            "has_more": more,
        }
        await exchange.send_json(JsonObject(page))


async def retrieve(services: Services, channel: ClientChannel, file_id: str) -> None:
    async with Exchange(services, channel, route=ONE, error_api="chat") as exchange:
        caller = await exchange.authenticate()
        record = await owned(services, caller, file_id)
        plan = provider_plan(services, record.provider, "Retrieving files")
        await admit(exchange, caller, models=record.models)
        async with exchange.upstream():
            found = await call_object(exchange, plan, "GET", f"/files/{record.upstream_id}")
        found["id"] = file_id
        await stored(store_of(services).refresh(caller.principal.key_id, file_id, found))
        await exchange.send_json(JsonObject(found))


async def delete(services: Services, channel: ClientChannel, file_id: str) -> None:
    async with Exchange(services, channel, route=ONE, error_api="chat") as exchange:
        caller = await exchange.authenticate()
        record = await owned(services, caller, file_id)
        plan = provider_plan(services, record.provider, "Deleting files")
        await admit(exchange, caller, models=record.models)
        async with exchange.upstream():
            answer = await call_object(exchange, plan, "DELETE", f"/files/{record.upstream_id}")
        await stored(store_of(services).delete("files", caller.principal.key_id, file_id))
        answer["id"] = file_id
        await exchange.send_json(JsonObject(answer))


async def content(services: Services, channel: ClientChannel, file_id: str) -> None:
    async with Exchange(services, channel, route=CONTENT, error_api="chat") as exchange:
        caller = await exchange.authenticate()
        record = await owned(services, caller, file_id)
        plan = provider_plan(services, record.provider, "Downloading files")
        await admit(exchange, caller, models=record.models)
        path = f"/files/{record.upstream_id}/content"

        async def once(attempt: Attempt) -> httpx.Response:
            request = attempt.upstream.request("GET", path)
            return await open_body(attempt, request, services.clock)

        async with exchange.upstream():
            response = await open_answer(exchange, plan, once)
            await relay_body(exchange, response)
        exchange.outcome.usage = ZERO
        if record.batch and not exchange.outcome.error_type:  # a finished batch's output, read
            batch = await stored(store_of(services).get(caller.principal.key_id, record.batch))
            if batch is not None:
                await charge_once(services, caller.principal.key_id, record.batch, batch, record.upstream_id)
