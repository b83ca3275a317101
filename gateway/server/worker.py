"""One worker: the gateway's app served by uvicorn on a socket that is already listening."""

from __future__ import annotations

import asyncio
import gc
import math
import socket
import sys
from collections.abc import Callable
from typing import Any

from gateway.config import Settings
from gateway.server.combining import CombiningHttpProtocol
from gateway.server.http import GatewayConfig, GatewayServer, HttpLimits
from gateway.server.websocket import GatewayWebSocketProtocol

STARTUP_FAILURE = 3  # uvicorn's exit status when the app's startup fails


def worker_config(
    app: Any, settings: Settings, limits: HttpLimits, *, log_level: str = "info"
) -> GatewayConfig:
    """uvicorn's config for a worker serving ``app``: the gateway's HTTP and WebSocket protocols
    and limits, uvloop, no access log."""
    config = GatewayConfig(
        app,
        limits=limits,
        loop="uvloop" if sys.platform != "win32" else "asyncio",
        lifespan="on",
        access_log=False,
        # The gateway reads neither the client's address nor the scheme: no X-Forwarded-*
        # middleware wrapping every request (a coroutine frame each resume passes through).
        proxy_headers=False,
        log_level=log_level,
        timeout_keep_alive=max(1, math.ceil(limits.keepalive_timeout)),  # unused: the protocol's own
        timeout_graceful_shutdown=math.ceil(settings.server.drain_seconds),
        # WebSockets: a direct path for the Responses events, writes combined per turn of the
        # loop; permessage-deflate only when the settings ask for it.
        ws=GatewayWebSocketProtocol,
        ws_per_message_deflate=settings.server.websocket_compression,
    )
    # The guarded protocol, writing each answer in as few system calls as it can.
    config.http = CombiningHttpProtocol
    return config


def serve_worker(
    settings: Settings,
    sock: socket.socket,
    limits: HttpLimits,
    *,
    on_ready: Callable[[], None] | None = None,
    ignore_sigint: bool = False,
) -> None:
    """Build the app from ``settings`` and serve it on ``sock`` until SIGTERM (or SIGINT).

    A signal starts a drain: the socket stops accepting, answers in flight get
    ``server.drain_seconds`` to finish; those still running then end in band (a stream with
    its dialect's error event and its proper end, a stored response recorded as failed with
    what it produced), then the app shuts down. Raises ``SystemExit(3)`` when
    the app's startup fails.
    """
    from gateway.app import create_app

    app = create_app(settings)
    # The app's long-lived objects (modules, settings, routes) need no cycle collection:
    # freeze them, and collect young garbage less often (fewer stop-the-world pauses).
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 50, 100)
    config = worker_config(app, settings, limits)

    def end_drain(running: list[asyncio.Task[Any]]) -> int:
        """The drain is over: the requests still running end themselves (in band)."""
        try:
            services = app.services
        except (AttributeError, KeyError):  # the app never started
            return 0
        return services.draining.end(running)

    server = GatewayServer(
        config,
        on_ready=on_ready,
        ignore_sigint=ignore_sigint,
        drain_seconds=settings.server.drain_seconds,
        on_drain_end=end_drain,
    )
    server.run(sockets=[sock])
    if not server.started:
        raise SystemExit(STARTUP_FAILURE)
