"""Everything a request handler needs, built once in the app lifespan and passed in.

The features sit above it (the chat engine is handed to the chats API on its own), so any
layer below the features may take ``Services``."""

from __future__ import annotations

from dataclasses import dataclass

import redis.asyncio as aioredis

from gateway.clock import Clock
from gateway.config import Settings
from gateway.policy.auth import KeyRing
from gateway.policy.engine import PolicyService
from gateway.telemetry.metrics import Metrics
from gateway.telemetry.tracing import Tracing
from gateway.upstream import Router, Upstream
from gateway.upstream.catalog import ModelCatalog


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
    tracing: Tracing | None = None  # None unless [telemetry] otel_traces
