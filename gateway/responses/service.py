"""The Responses API's reads, served from the gateway's records: retrieve, cancel, delete (the
upstream's copy too, best effort) and a response's input items. Creating is
:mod:`gateway.responses.endpoint`."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import httpx
import msgspec

from gateway.clock import Watchdog
from gateway.errors.client import InvalidRequest, ServiceUnavailable
from gateway.policy.auth import Principal
from gateway.responses import errors
from gateway.responses.background import QUEUED, RUNNING, background_store
from gateway.responses.store import ResponseStore
from gateway.services import Services

log = logging.getLogger("gateway.responses")

_ENCODER = msgspec.json.Encoder()
UPSTREAM_DELETE = "upstream_delete"


def store_unavailable() -> ServiceUnavailable:
    return ServiceUnavailable(
        "The response store is unavailable; please try again.",
        code="response_store_unavailable",
        headers={"retry-after": "1", "x-should-retry": "true"},
    )


def response_store(services: Services) -> ResponseStore:
    settings = services.settings
    return ResponseStore(services.redis, prefix=settings.redis.key_prefix, ttl=settings.responses.ttl_seconds)


# -- retrieve, delete, list -----------------------------------------------------------------------


async def retrieve(
    services: Services, principal: Principal, response_id: str, *, stream: str | None = None
) -> bytes:
    if stream is not None and stream.lower() == "true":
        # Replaying a stored response as events (with `starting_after`) is for background runs
        # (their route streams them); any other response is refused.
        raise InvalidRequest(
            "Streaming a stored response is not supported by this gateway; retrieve it without 'stream'.",
            param="stream",
            code="unsupported_parameter",
        )
    found = await response_store(services).response_body(response_id, principal.key_id)
    if found is None:
        raise errors.response_not_found(response_id)
    return _ENCODER.encode(found)


async def cancel(services: Services, principal: Principal, response_id: str) -> bytes:
    """Cancel a background run (a queued or running one; a finished one is answered as it is).
    Other responses cannot be cancelled."""
    cancelled = await background_store(services).cancel(response_id, principal.key_id)
    if cancelled is not None:
        state, body = cancelled
        if state in (QUEUED, RUNNING):
            return _ENCODER.encode({**body, "output": []})
        found_run = await response_store(services).response_body(response_id, principal.key_id)
        return _ENCODER.encode(found_run if found_run is not None else body)
    found = await response_store(services).response_body(response_id, principal.key_id)
    if found is None:
        raise errors.response_not_found(response_id)
    raise InvalidRequest(
        "Only background responses can be cancelled; this response has already finished.",
        param="response_id",
        code="unsupported_parameter",
    )


async def delete(services: Services, principal: Principal, response_id: str) -> bytes:
    meta = await response_store(services).delete(response_id, principal.key_id)
    if meta is None:
        raise errors.response_not_found(response_id)
    if meta.upstream_id is not None:
        await _delete_upstream(services, meta.deployment.partition("/")[0], meta.upstream_id)
    return _ENCODER.encode({"id": response_id, "object": "response", "deleted": True})


async def _delete_upstream(services: Services, provider: str, upstream_id: str) -> None:
    """Best effort: the upstream's copy goes too. Failures are logged, never shown."""
    upstream = services.upstreams.get(provider)
    if upstream is None:
        return
    guard = Watchdog(services.clock, upstream.settings.timeouts.request, name=UPSTREAM_DELETE)
    try:
        response = await upstream.send(upstream.request("DELETE", f"/responses/{upstream_id}"), stream=False)
        if response.status_code >= 400 and response.status_code != 404:
            log.warning(
                "upstream %s refused to delete %s: HTTP %s", provider, upstream_id, response.status_code
            )
    except httpx.HTTPError as exc:
        log.warning("upstream %s: deleting %s failed: %s", provider, upstream_id, exc)
    except asyncio.CancelledError:
        if guard.absorb():
            log.warning("upstream %s: deleting %s timed out", provider, upstream_id)
            return
        raise
    finally:
        guard.cancel()


def _limit(raw: str | None) -> int:
    if raw is None:
        return 20
    try:
        value = int(raw)
    except ValueError:
        raise InvalidRequest(
            f"Invalid 'limit': expected an integer, but got '{raw}' instead.",
            param="limit",
            code="invalid_type",
        ) from None
    if value < 1:
        raise InvalidRequest(
            f"Invalid 'limit': integer below minimum value. Expected a value >= 1, but got {value} instead.",
            param="limit",
            code="integer_below_min_value",
        )
    if value > 100:
        raise InvalidRequest(
            f"Invalid 'limit': integer above maximum value. Expected a value <= 100, but got {value} instead.",
            param="limit",
            code="integer_above_max_value",
        )
    return value


class ItemPage(msgspec.Struct, kw_only=True):
    object: str = "list"
    data: list[dict[str, Any]]
    first_id: str | None
    last_id: str | None
    has_more: bool


async def list_input_items(
    services: Services,
    principal: Principal,
    response_id: str,
    *,
    limit: str | None,
    order: str | None,
    after: str | None,
) -> bytes:
    """A page of the turn's input items: ``order`` desc (newest first) unless asc, after ``after``."""
    count = _limit(limit)
    direction = order or "desc"
    if direction not in ("asc", "desc"):
        raise InvalidRequest(
            f"Invalid value: '{direction}'. Supported values are: 'asc' and 'desc'.",
            param="order",
            code="invalid_value",
        )
    items = await response_store(services).input_items(response_id, principal.key_id)
    if items is None:
        raise errors.response_not_found(response_id)
    ordered = items if direction == "asc" else items[::-1]
    start = 0
    if after is not None:
        position = next((i for i, item in enumerate(ordered) if item.get("id") == after), None)
        if position is None:
            raise InvalidRequest(
                f"Invalid 'after': no input item with id '{after}' in response '{response_id}'.",
                param="after",
                code="invalid_value",
            )
        start = position + 1
    data = ordered[start : start + count]
    return _ENCODER.encode(
        ItemPage(
            data=data,
            first_id=data[0].get("id") if data else None,
            last_id=data[-1].get("id") if data else None,
            has_more=start + count < len(ordered),
        )
    )
