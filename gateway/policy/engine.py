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
from gateway.policy.store import STORE_ERRORS, PolicyStore
from gateway.policy.tickets import LEASE_RENEW, LeaseRenewal, Ticket
from gateway.policy.windows import WindowCache
from gateway.pricing import PriceTable
from gateway.redis.multiplexed import MultiplexedRedis
from gateway.telemetry.metrics import Metrics

__all__ = ["LEASE_RENEW", "STORE_ERRORS", "Caller", "PolicyService", "Ticket"]


class PolicyService:
    """The policy's parts built from the settings, and its operations as the gateway calls them:

    - ``authenticate(presented, fresh=False) -> Caller``, ``invalidate(kid=, team=)``,
      ``team(tid, fresh=False)`` (:class:`Authenticator`);
    - ``admit(caller, model=, body_size=, max_tokens=, request_id=, endpoint=, started=)
      -> Ticket``, ``charge(kid, model=, usage=, request_id=, endpoint=, ...)``,
      ``check_model(caller, model)``, ``may_use(caller, model)`` (:class:`Admission`).
    """

    def __init__(
        self,
        settings: Settings,
        redis: Any,
        clock: Clock,
        metrics: Metrics,
        *,
        keyring: KeyRing,
        pepper: str | None = None,
        admission_redis: MultiplexedRedis | None = None,
        settlement_redis: MultiplexedRedis | None = None,
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
            admission_redis=admission_redis,
            settlement_redis=settlement_redis,
        )
        self.prices = PriceTable(settings.prices)
        self.hasher = KeyHasher(pepper)
        self.keyring = keyring
        self.authenticator = Authenticator(
            settings, self.store, clock, metrics, keyring=keyring, hasher=self.hasher
        )
        self.config_teams: dict[str, TeamRecord] = self.authenticator.config_teams
        self.config_keys: dict[str, Caller] = self.authenticator.config_keys
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
            auth=self.authenticator,
            prices=self.prices,
            windows=windows,
            settlement=settlement,
            renewal=renewal,
            models=self.models,
        )
        self.authenticate = self.authenticator.authenticate
        self.invalidate = self.authenticator.invalidate
        self.team = self.authenticator.team
        self.admit = self.admission.admit
        self.charge = self.admission.charge
        self.check_model = self.admission.check_model
        self.may_use = may_use

    async def start(self) -> None:
        with contextlib.suppress(*STORE_ERRORS):
            await self.store.load_scripts()
        self.settler.start()

    async def stop(self) -> None:
        await self.admission.stop()
        await self.settler.stop()
