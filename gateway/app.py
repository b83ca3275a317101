"""Build the gateway's ASGI app from a :class:`Settings` object. No globals: the lifespan creates
the Redis client, the upstream clients and the clock, and hangs them on the Litestar app's
``state.services``; the proxy's hot routes are served in front of Litestar (``api/hot_routes``). The chat
engine hangs beside the services on ``state.chats``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator, Mapping
from typing import Any

import httpx
from litestar import Litestar
from litestar.config.app import AppConfig
from litestar.exceptions import HTTPException
from litestar.plugins import PluginProtocol
from litestar.plugins.core import MsgspecDIPlugin
from litestar.types import Scope

from gateway.api import admin, chats, health, messages, metrics, openai, openai_routes, openapi, responses
from gateway.api.hot_routes import GatewayApp
from gateway.api.unrouted import EXCEPTION_HANDLERS
from gateway.chats.engine import ChatEngine
from gateway.clock import Clock, RealClock
from gateway.config import Settings
from gateway.errors.client import GatewayError
from gateway.policy.auth import KeyRing
from gateway.policy.engine import PolicyService
from gateway.redis.connection import SETTLEMENT_NAME, connect, multiplexed
from gateway.redis.embedded import EmbeddedRedis
from gateway.redis.migrate import migrate_at_start
from gateway.responses.worker import Worker as ResponsesWorker
from gateway.responses.worker import build_worker
from gateway.services import Services
from gateway.telemetry.metrics import DisabledMetrics, Metrics
from gateway.telemetry.tracing import build_tracing
from gateway.upstream import Router, build_upstreams
from gateway.upstream.breaker import Breakers
from gateway.upstream.catalog import ModelCatalog
from gateway.upstream.health import HealthMetrics

log = logging.getLogger("gateway")


def create_app(
    settings: Settings,
    *,
    clock: Clock | None = None,
    transports: Mapping[str, httpx.AsyncBaseTransport] | None = None,
    span_exporter: Any | None = None,
) -> GatewayApp:
    """The gateway as an ASGI app.

    ``clock`` defaults to the real clock; tests pass a ``ManualClock``. ``transports`` replaces
    the HTTP transport of named providers (unit tests use ``httpx.MockTransport`` or respx).
    ``span_exporter`` receives the trace spans instead of OTLP when traces are on (tests).
    """
    the_clock = clock or RealClock()

    @contextlib.asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        embedded: EmbeddedRedis | None = None
        url = settings.redis.url
        if settings.redis.embedded:
            embedded = EmbeddedRedis(settings.redis.data_dir)
            embedded.start()
            url = embedded.url
            log.info("embedded redis-server started with data in %s", embedded.data_dir)
        # One server, a Redis Cluster or a Sentinel-managed primary ([redis] mode).
        redis = connect(settings.redis, url)
        # On one server, the policy's calls for each request go over shared, pipelined
        # connections: admissions on one, settlements and renewals on the other.
        admission_redis = multiplexed(settings.redis, the_clock, url)
        settlement_redis = multiplexed(settings.redis, the_clock, url, name=SETTLEMENT_NAME)
        # What an earlier release stored is renamed to this release's key names before any use.
        migration = await migrate_at_start(
            redis, settings.redis.key_prefix, the_clock, cluster=settings.redis.effective_mode == "cluster"
        )
        upstreams = build_upstreams(settings, the_clock, transports)
        catalog = ModelCatalog(
            upstreams,
            redis,
            the_clock,
            key_prefix=settings.redis.key_prefix,
            refresh_seconds=settings.server.models_refresh_seconds,
        )
        refresher = asyncio.create_task(catalog.run(), name="model-catalog")
        keyring = KeyRing(settings.auth.keys)
        # Bounded label values: the configured public and upstream model names, provider names.
        meters = (Metrics if settings.telemetry.metrics else DisabledMetrics)(
            [*(m.name for m in settings.models), *(m.target_model for m in settings.models)],
            [p.name for p in settings.providers],
        )
        policy = PolicyService(
            settings,
            redis,
            the_clock,
            meters,
            keyring=keyring,
            pepper=os.environ.get("GATEWAY_KEY_PEPPER"),
            admission_redis=admission_redis,
            settlement_redis=settlement_redis,
        )
        await policy.start()
        tracing = build_tracing(settings.telemetry, span_exporter)
        health_metrics = HealthMetrics(meters.registry)
        breakers = Breakers(settings, the_clock, redis=redis, metrics=health_metrics, upstreams=upstreams)
        router = Router(settings, upstreams, breakers=breakers, health=health_metrics)
        await router.start()
        chat_engine = ChatEngine(settings, redis, router, the_clock, catalog, policy)
        background: ResponsesWorker | None = None
        try:
            await chat_engine.start()
            app.state.services = Services(
                settings=settings,
                clock=the_clock,
                redis=redis,
                upstreams=upstreams,
                router=router,
                keys=keyring,
                policy=policy,
                metrics=meters,
                catalog=catalog,
                tracing=tracing,
            )
            app.state.chats = chat_engine
            # Background responses run on any replica (gateway/responses/worker.py).
            background = build_worker(app.state.services)
            if background is not None:
                await background.start()
            yield
        finally:
            if migration is not None:
                migration.cancel()
            # The workers first: a turn's last charges still reach the settler.
            if background is not None:
                await background.stop()
            await chat_engine.stop()
            await policy.stop()
            if tracing is not None:
                tracing.shutdown()
            refresher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await refresher
            await router.stop()
            for upstream in upstreams.values():
                await upstream.aclose()
            for shared in (admission_redis, settlement_redis):
                if shared is not None:
                    await shared.aclose()
            await redis.aclose()
            if embedded is not None:
                embedded.stop()

    litestar = MsgspecLitestar(
        route_handlers=[
            *openai.ROUTES,
            *responses.ROUTES,
            *openai_routes.ROUTES,
            *messages.ROUTES,
            *chats.ROUTES,
            *health.ROUTES,
            *admin.ROUTES,
            *metrics.ROUTES,
            openapi.route(settings),
        ],
        lifespan=[lifespan],
        openapi_config=None,
        debug=False,
        after_exception=[log_unhandled],
        exception_handlers=EXCEPTION_HANDLERS,
    )
    hot = {**openai.HOT_ROUTES, **responses.HOT_ROUTES, **messages.HOT_ROUTES, **openai_routes.HOT_ROUTES}
    return GatewayApp(litestar, hot)


class MsgspecLitestar(Litestar):
    """Litestar without the plugins it adds for libraries the gateway does not use (its routes
    take and give msgspec Structs and bytes): detecting them imports pydantic, attrs and
    OpenTelemetry, about 8 MB of each worker's memory."""

    @staticmethod
    def _get_default_plugins(plugins: list[PluginProtocol]) -> list[PluginProtocol]:
        return [*plugins, MsgspecDIPlugin()]

    @staticmethod
    def _patch_opentelemetry_middleware(config: AppConfig) -> AppConfig:
        return config


async def log_unhandled(exc: Exception, scope: Scope) -> None:
    """Litestar logs unhandled exceptions only in debug mode: a 500 must leave a traceback (a
    refusal the handlers answer, a GatewayError or an HTTPException below 500, leaves none)."""
    status = exc.status_code if isinstance(exc, HTTPException | GatewayError) else 500
    if status >= 500:
        log.error("unhandled error in %s %s", scope.get("method"), scope.get("path"), exc_info=exc)
