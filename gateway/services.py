"""Everything a request handler needs, built once in the app lifespan and passed in.

The features sit above it (the chat engine is handed to the chats API on its own), so any
layer below the features may take ``Services``."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass, field

import redis.asyncio as aioredis

from gateway.clock import Clock
from gateway.config import Settings
from gateway.errors import ClassifiedError, ErrorKind
from gateway.errors.client import ServiceUnavailable
from gateway.policy.auth import KeyRing
from gateway.policy.engine import PolicyService
from gateway.telemetry.metrics import Metrics
from gateway.telemetry.tracing import Tracing
from gateway.upstream import Router, Upstream
from gateway.upstream.catalog import ModelCatalog

SHUTDOWN_CODE = "gateway_shutdown"
SHUTDOWN_MESSAGE = "The gateway is shutting down and ended this request before it completed. Retry it."


class Draining:
    """The end of a graceful shutdown's drain, as the requests still running learn it.

    On SIGTERM the server stops accepting and gives the requests in flight ``drain_seconds``
    to finish. Those still running then are handed to :meth:`end`: each one's task is
    cancelled and remembered, so that the request can tell this cancellation from any other
    (a client gone) with :meth:`absorb` and end itself properly: a stream with its dialect's
    in-band error and its proper end (its record written, for a stored response), an answer
    not started yet with a 503.
    """

    __slots__ = ("_ended", "over")

    def __init__(self) -> None:
        self.over = False
        self._ended: set[asyncio.Task[object]] = set()

    def end(self, tasks: Iterable[asyncio.Task[object]]) -> int:
        """Cancel ``tasks`` as ended by the drain; how many were still running."""
        self.over = True
        ended = 0
        for task in tasks:
            if not task.done():
                self._ended.add(task)
                task.cancel()
                ended += 1
        return ended

    def absorb(self) -> bool:
        """After a CancelledError: True (and the cancellation undone) if the drain's end
        caused it, in the current task."""
        task = asyncio.current_task()
        if task is None or task not in self._ended:
            return False
        self._ended.discard(task)
        task.uncancel()
        return True

    @staticmethod
    def stream_error(provider: str) -> ClassifiedError:
        """The in-band error of a stream the drain ended (retryable; not the upstream's fault:
        no breaker counts it, no rescue continues it)."""
        return ClassifiedError(
            kind=ErrorKind.OVERLOADED,
            provider=provider,
            retryable=True,
            failover=False,
            message=SHUTDOWN_MESSAGE,
            retry_message=SHUTDOWN_MESSAGE,
            code=SHUTDOWN_CODE,
        )

    @staticmethod
    def refusal() -> ServiceUnavailable:
        """The answer of a request the drain ended before its answer started."""
        return ServiceUnavailable(SHUTDOWN_MESSAGE, code=SHUTDOWN_CODE, headers={"retry-after": "1"})


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
    draining: Draining = field(default_factory=Draining)
