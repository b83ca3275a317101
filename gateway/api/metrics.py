"""``GET /metrics``: Prometheus text exposition of the app's own registry."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get
from prometheus_client import CONTENT_TYPE_LATEST


@get("/metrics", sync_to_thread=False)
def metrics(request: Request[Any, Any, Any]) -> Response[bytes]:
    services = request.app.state.services
    if not services.settings.telemetry.metrics:
        return Response(b"metrics are disabled\n", status_code=404, media_type="text/plain")
    return Response(services.metrics.exposition(), status_code=200, media_type=CONTENT_TYPE_LATEST)


ROUTES = [metrics]
