"""The policy service: who is calling, may they use this model, may this request run now —
and, when it is over, what it used and cost.

Every request path calls::

    caller = await policy.authenticate(presented_key)          # raises GatewayError
    ticket = await policy.admit(caller, model=model, body_size=len(body),
                                max_tokens=max_tokens, request_id=request_id,
                                endpoint="/v1/responses")       # raises GatewayError
    try: ...
    finally: ticket.settle(status=status, usage=usage, provider=..., upstream_model=...)

``settle`` never waits: it queues the request for the settler, which writes batches to Redis
off the request path. Calling it more than once is harmless. The work is done by
``authentication``, ``admission`` (with ``refusals``), ``tickets`` and ``settlement``; this
class builds them from the settings and is what the rest of the gateway holds.
"""

from __future__ import annotations

import contextlib
from typing import Any

from gateway.clock import Clock
from gateway.config import Settings
from gateway.policy.admission import Admission, may_use
from gateway.policy.auth import KeyRing
from gateway.policy.authentication import Authenticator, Caller
from gateway.policy.keys import KeyHasher
from gateway.policy.records import TeamRecord
from gateway.policy.settlement import Settlement, Settler
from gateway.policy.store import STORE_ERRORS, PolicyStore, WindowCache
from gateway.policy.tickets import LEASE_RENEW, LeaseRenewal, Ticket
from gateway.pricing import PriceTable, Usage
from gateway.telemetry.metrics import Metrics

__all__ = ["LEASE_RENEW", "STORE_ERRORS", "Caller", "PolicyService", "Ticket"]


class PolicyService:
    def __init__(
        self,
        settings: Settings,
        redis: Any,
        clock: Clock,
        metrics: Metrics,
        *,
        keyring: KeyRing,
        pepper: str | None = None,
    ) -> None:
        config = settings.policy
        self.settings = settings
        self.config = config
        self.clock = clock
        self.metrics = metrics
        self.enabled = config.enabled
        self.store = PolicyStore(
            redis,
            settings.redis.key_prefix,
            usage_maxlen=config.usage_stream_maxlen,
            audit_maxlen=config.audit_stream_maxlen,
        )
        self.prices = PriceTable(settings.prices)
        self.hasher = KeyHasher(pepper)
        self.keyring = keyring
        self.auth = Authenticator(settings, self.store, clock, metrics, keyring=keyring, hasher=self.hasher)
        self.config_teams: dict[str, TeamRecord] = self.auth.config_teams
        self.config_keys: dict[str, Caller] = self.auth.config_keys
        self.models = frozenset(m.name for m in settings.models)
        windows = WindowCache()
        self.settler = Settler(self.store, metrics, config.settle_batch_max)
        settlement = Settlement(
            self.store, clock, metrics, self.prices, windows, self.settler, enabled=config.enabled
        )
        # Leases and holds of a running request are pushed forward this often, so the TTL only
        # has to outlive a crashed replica's requests, not the longest stream.
        self.renew_interval = config.lease_ttl_seconds / 4
        renewal = LeaseRenewal(
            self.store,
            clock,
            lease_ms=int(config.lease_ttl_seconds * 1000),
            interval=self.renew_interval,
            redis_time=config.time_source == "redis",
        )
        self.admission = Admission(
            settings,
            self.store,
            clock,
            metrics,
            auth=self.auth,
            prices=self.prices,
            windows=windows,
            settlement=settlement,
            renewal=renewal,
            models=self.models,
        )

    async def start(self) -> None:
        with contextlib.suppress(*STORE_ERRORS):
            await self.store.load_scripts()
        self.settler.start()

    async def stop(self) -> None:
        await self.settler.stop()

    # -- authentication --------------------------------------------------------------------------
    async def authenticate(self, presented: str | None, *, fresh: bool = False) -> Caller:
        """The caller of ``presented`` (401 or 503 as a GatewayError otherwise)."""
        return await self.auth.authenticate(presented, fresh=fresh)

    def invalidate(self, kid: str | None = None, team: str | None = None) -> None:
        self.auth.invalidate(kid, team)

    async def team(self, tid: str | None, *, fresh: bool = False) -> TeamRecord | None:
        return await self.auth.team(tid, fresh=fresh)

    # -- admission -------------------------------------------------------------------------------
    @staticmethod
    def may_use(caller: Caller, model: str) -> bool:
        """The key's and its team's allow-lists both admit ``model``."""
        return may_use(caller, model)

    def check_model(self, caller: Caller, model: str) -> None:
        self.admission.check_model(caller, model)

    async def admit(
        self,
        caller: Caller,
        *,
        model: str,
        body_size: int,
        max_tokens: int | None,
        request_id: str,
        endpoint: str,
        started: float | None = None,
    ) -> Ticket:
        """Admit the request or raise the refusal; the ticket's ``headers`` go on the answer."""
        return await self.admission.admit(
            caller,
            model=model,
            body_size=body_size,
            max_tokens=max_tokens,
            request_id=request_id,
            endpoint=endpoint,
            started=started,
        )

    async def charge(
        self,
        kid: str,
        *,
        model: str,
        usage: Usage | None,
        request_id: str,
        endpoint: str,
        provider: str | None = None,
        upstream_model: str | None = None,
        status: int = 200,
        error_type: str | None = None,
        stream: bool = True,
        attempts: int = 1,
    ) -> None:
        """Record usage that ran outside an admitted request (see ``Admission.charge``)."""
        await self.admission.charge(
            kid,
            model=model,
            usage=usage,
            request_id=request_id,
            endpoint=endpoint,
            provider=provider,
            upstream_model=upstream_model,
            status=status,
            error_type=error_type,
            stream=stream,
            attempts=attempts,
        )
