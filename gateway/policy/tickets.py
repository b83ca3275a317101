"""An admitted request's ticket, and the renewal that keeps its leases alive while it runs.

Admission writes concurrency leases and budget holds with a short TTL, so a crashed replica's
requests stop counting soon. A running request pushes them forward every quarter TTL until
its ticket is settled; the TTL only has to outlive a crash, not the longest stream.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from typing import TYPE_CHECKING

from gateway.clock import Clock, TimerHandle
from gateway.policy.store import STORE_ERRORS, PolicyStore
from gateway.pricing import Usage

if TYPE_CHECKING:
    from gateway.policy.authentication import Caller
    from gateway.policy.settlement import Settlement

log = logging.getLogger("gateway.policy")
LEASE_RENEW = "policy_lease_renew"


class Ticket:
    """One admitted request. ``headers`` go on the answer; ``settle`` records the outcome."""

    __slots__ = (
        "_renew_task",
        "_renewal",
        "_settled",
        "_settlement",
        "caller",
        "endpoint",
        "estimate",
        "headers",
        "hold_member",
        "lease_keys",
        "model",
        "now_ms",
        "request_id",
        "started",
        "stream",
    )

    def __init__(
        self,
        settlement: Settlement | None,
        caller: Caller | None,
        *,
        request_id: str,
        model: str,
        endpoint: str,
        started: float,
        estimate: int = 0,
        hold_member: str = "",
        now_ms: str = "",
        headers: list[tuple[str, str]] | None = None,
    ) -> None:
        self._settlement = settlement  # None: nothing to record (the policy is off)
        self._settled = False
        self.caller = caller
        self.request_id = request_id
        self.model = model
        self.endpoint = endpoint
        self.started = started
        self.estimate = estimate
        self.hold_member = hold_member
        self.now_ms = now_ms
        self.headers = headers or []
        self.stream = False
        # Set when admission wrote leases or a hold: their four keys, renewed while running.
        self.lease_keys: list[str] | None = None
        self._renewal: TimerHandle | None = None
        self._renew_task: asyncio.Task[None] | None = None

    def settle(
        self,
        *,
        status: int,
        usage: Usage | None = None,
        error_type: str | None = None,
        provider: str | None = None,
        upstream_model: str | None = None,
        attempts: int = 0,
        ttft_s: float | None = None,
        upstream_s: float = 0.0,
    ) -> None:
        """Record the outcome (every exit path; idempotent; never blocks)."""
        if self._settled or self._settlement is None:
            return
        self._settled = True
        if self._renewal is not None:
            self._renewal.cancel()
            self._renewal = None
        self._settlement.record(
            self,
            status=status,
            usage=usage,
            error_type=error_type,
            provider=provider,
            upstream_model=upstream_model,
            attempts=attempts,
            ttft_s=ttft_s,
            upstream_s=upstream_s,
        )


class LeaseRenewal:
    """Pushes a running request's leases and hold forward every ``interval`` until it is
    settled (``renew.lua``: members already gone are not brought back)."""

    def __init__(
        self, store: PolicyStore, clock: Clock, *, lease_ms: int, interval: float, redis_time: bool
    ) -> None:
        self.store = store
        self.clock = clock
        self.lease_ms = lease_ms
        self.interval = interval
        self.redis_time = redis_time

    def keep(self, ticket: Ticket) -> None:
        """Arm the next renewal of ``ticket``'s leases."""
        ticket._renewal = self.clock.call_later(
            self.interval, functools.partial(self._due, ticket), name=LEASE_RENEW
        )

    def _due(self, ticket: Ticket) -> None:
        ticket._renewal = None
        if ticket._settled or ticket._settlement is None:
            return
        ticket._renew_task = asyncio.get_running_loop().create_task(self.renew(ticket))

    async def renew(self, ticket: Ticket) -> None:
        """Push the expiry of the ticket's leases and hold forward, then re-arm."""
        if ticket.lease_keys is None:
            return
        now_ms = "" if self.redis_time else str(int(self.clock.now() * 1000))
        args = [now_ms, ticket.request_id, ticket.hold_member, self.lease_ms]
        try:
            await self.store.renew(ticket.lease_keys, args)
        except STORE_ERRORS as exc:
            log.error("lease renewal failed for %s: %s", ticket.request_id, exc)
        if not ticket._settled:
            self.keep(ticket)
