"""Operations: ``/healthz`` (the process lives) and ``/readyz`` (Redis and config are ready)."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request, Response, get

from gateway.api.openai import services_of
from gateway.redis.connection import ping


@get("/healthz", sync_to_thread=False)
def healthz() -> Response[dict[str, str]]:
    return Response({"status": "ok"})


@get("/readyz")
async def readyz(request: Request[Any, Any, Any]) -> Response[dict[str, object]]:
    services = services_of(request.scope)
    redis_ok = await ping(services.redis)
    body: dict[str, object] = {
        "status": "ready" if redis_ok else "unavailable",
        "checks": {"redis": "ok" if redis_ok else "unreachable", "config": "ok"},
        # Listings that failed are reported, not fatal: they are retried in the background.
        "model_listings": {name: msgspec.to_builtins(s) for name, s in services.catalog.status.items()},
    }
    return Response(body, status_code=200 if redis_ok else 503)


ROUTES = [healthz, readyz]
