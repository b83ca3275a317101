"""Everything a request handler needs, built once in the app lifespan and passed in."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import redis.asyncio as aioredis

from gateway.clock import Clock
from gateway.config import Settings
from gateway.policy.auth import KeyRing
from gateway.policy.engine import PolicyService
from gateway.telemetry.metrics import Metrics
from gateway.telemetry.tracing import Tracing
from gateway.upstream import Router, Upstream
from gateway.upstream.catalog import ModelCatalog

if TYPE_CHECKING:
    from gateway.chats.engine import ChatEngine


@dataclass(frozen=True, slots=True)
class Services:
    settings: Settings
    clock: Clock
    redis: aioredis.Redis
    upstreams: dict[str, Upstream]
    router: Router
    keys: KeyRing
    catalog: ModelCatalog
    policy: PolicyService
    metrics: Metrics
    chats: ChatEngine | None = None
    tracing: Tracing | None = None  # None unless [telemetry] otel_traces
