"""May this request run now: the model check, then one admission script call that checks
revocation, requests and tokens per minute, concurrency and budgets for the key and its team,
and writes the request's leases and budget hold only if every check passes.

A request is estimated at ``ceil(body bytes / 4)`` input tokens plus its ``max_tokens`` (or
``output_reserve_tokens``); the settlement corrects the token limiter by the real count. With
the policy disabled nothing is limited or recorded, but model allow-lists apply and a blocked
or deleted admin-created key is still refused on every replica.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from typing import Any

from gateway.clock import Clock
from gateway.config import Budget, Limits, Settings
from gateway.errors.client import GatewayError
from gateway.policy import errors
from gateway.policy.authentication import Authenticator, Caller
from gateway.policy.records import has_limits, model_allowed
from gateway.policy.refusals import denial, refusal, store_failed
from gateway.policy.settlement import Settlement
from gateway.policy.store import STORE_ERRORS
from gateway.policy.tickets import LeaseRenewal, Ticket
from gateway.policy.windows import WindowCache
from gateway.pricing import PriceTable, Usage

log = logging.getLogger("gateway.policy")
# Admission answers "stale" when the caller's cached record is older than Redis's; it is read
# again and admission retried, at most this many times in all.
_ATTEMPTS = 3
# After a store failure, admissions within this many seconds do not wait on Redis (answered at
# once as ``on_store_error`` says); then one of them tries Redis again.
STORE_RETRY_SECONDS = 1.0
RELEASE_RETRY = "policy_release_retry"


def may_use(caller: Caller, model: str) -> bool:
    """The key's and its team's allow-lists both admit ``model``."""
    return model_allowed(caller.key.models, model) and (
        caller.team is None or model_allowed(caller.team.models, model)
    )


def limit_headers(result: list[Any]) -> list[tuple[str, str]]:
    """OpenAI's ``x-ratelimit-*`` headers for the tightest requests and tokens limits."""
    out: list[tuple[str, str]] = []
    for limit, remaining, reset, kind in (
        (result[1], result[2], result[3], "requests"),
        (result[4], result[5], result[6], "tokens"),
    ):
        if int(limit) > 0:
            out += [
                (f"x-ratelimit-limit-{kind}", str(int(limit))),
                (f"x-ratelimit-remaining-{kind}", str(max(0, int(remaining)))),
                (f"x-ratelimit-reset-{kind}", errors.go_duration(int(reset) / 1000)),
            ]
    return out


class StoreCircuit:
    """Whether to try Redis: after a failure, nobody does for ``interval`` seconds; then one
    caller tries (the others keep skipping) until a call succeeds or fails again. During a
    stall each replica makes one attempt per interval instead of every request waiting for
    the command timeout."""

    __slots__ = ("_until", "clock", "interval")

    def __init__(self, clock: Clock, interval: float) -> None:
        self.clock = clock
        self.interval = interval
        self._until: float | None = None

    def skip(self) -> bool:
        until = self._until
        if until is None:
            return False
        now = self.clock.monotonic()
        if now < until:
            return True
        self._until = now + self.interval  # this caller tries; the others skip meanwhile
        return False

    def failed(self) -> None:
        self._until = self.clock.monotonic() + self.interval

    def succeeded(self) -> None:
        self._until = None


class Admission:
    def __init__(
        self,
        settings: Settings,
        *,
        auth: Authenticator,
        prices: PriceTable,
        windows: WindowCache,
        settlement: Settlement,
        renewal: LeaseRenewal,
        models: frozenset[str],
    ) -> None:
        self.config = config = settings.policy
        self.enabled = config.enabled
        # The store, clock and metrics of the authentication: one set for the policy's parts.
        self.store, self.clock, self.metrics = auth.store, auth.clock, auth.metrics
        self.auth = auth
        self.prices = prices
        self.windows = windows
        self.settlement = settlement
        self.renewal = renewal
        # Public model names: a request for any other model is refused before admission, so a
        # typo neither spends a limit nor writes usage and rollups under an unbounded name.
        self.models = models
        self.lease_ms = int(config.lease_ttl_seconds * 1000)
        # With on_store_error "open", a request during a Redis outage is let through at once
        # instead of after the command timeout (closed: each waits, and gets its 503).
        self.fail_open = config.on_store_error == "open"
        self.circuit = StoreCircuit(self.clock, STORE_RETRY_SECONDS)
        # Releases of admissions that timed out, until Redis takes them.
        self._releases: set[asyncio.Task[None]] = set()

    def check_model(self, caller: Caller, model: str) -> None:
        """Refuse a model the key's or its team's allow-list excludes; ``""`` (a request that
        names no model: a file or batch operation) passes."""
        if model and not may_use(caller, model):
            self.metrics.decision("model_access", "key", "denied")
            raise errors.model_not_allowed(model)

    def _now_ms(self) -> str:
        """The admission time to pass the scripts ("": they read Redis's clock)."""
        return "" if self.config.time_source == "redis" else str(int(self.clock.now() * 1000))

    def _ticket(
        self, caller: Caller, request_id: str, model: str, endpoint: str, started: float, *, estimate: int = 0
    ) -> Ticket:
        """A ticket this admission's settlement settles, stamped with the admission time."""
        return Ticket(
            self.settlement,
            caller,
            request_id=request_id,
            model=model,
            endpoint=endpoint,
            started=started,
            estimate=estimate,
            now_ms=self._now_ms(),
        )

    def _store_failed(self, exc: BaseException) -> GatewayError:
        return store_failed(self.metrics, self.config.on_store_error, exc, "admit")

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
        started = time.perf_counter() if started is None else started
        if model and model not in self.models:  # before the allow-list: a typo is a 404 for every key
            raise errors.model_not_found(model)
        self.check_model(caller, model)
        if not self.enabled:
            return await self._admit_unlimited(caller, model, request_id, endpoint, started)
        out_reserve = max_tokens if max_tokens and max_tokens > 0 else self.config.output_reserve_tokens
        input_est = math.ceil(body_size / 4)
        estimate = input_est + out_reserve
        key, team = caller.key, caller.team
        limited = has_limits(key.limits, key.budgets) or (
            team is not None and has_limits(team.limits, team.budgets)
        )
        ticket = self._ticket(caller, request_id, model, endpoint, started, estimate=estimate)
        if key.source == "config" and not limited:
            return ticket  # nothing to enforce and nothing to revoke: no round trip
        for _ in range(_ATTEMPTS):
            hold = self.prices.hold(input_est, out_reserve, model) if _has_budgets(caller) else 0
            if self.fail_open and self.circuit.skip():  # Redis failed just now: not waited for again
                self.metrics.store_error("open")
                return self._unadmitted(ticket, errors.store_unavailable())
            try:
                result = await self._admit_once(ticket, hold)
            except STORE_ERRORS as exc:
                self.circuit.failed()
                self._release_later(ticket)
                return self._unadmitted(ticket, self._store_failed(exc))
            self.circuit.succeeded()
            if result[0] == -2:  # given up already (cannot happen to a live request id)
                raise errors.store_unavailable()
            if result[0] != -1:
                break
            # The cached config is stale (updated, rotated, blocked, deleted): read it again.
            try:
                caller = await self.auth.reload(caller)
            except STORE_ERRORS as exc:
                raise self._store_failed(exc) from None
            self.check_model(caller, model)
            ticket.caller = caller
        else:
            raise errors.store_unavailable()
        if result[0] == 0:
            assert ticket.caller is not None
            found = denial(
                result, ticket.caller.key, ticket.caller.team, requested=estimate, now=self.clock.now()
            )
            raise refusal(found, self.metrics)
        assert ticket.caller is not None
        ticket.caller.checked = True  # the script compared its versions with Redis's
        self.metrics.decision("admission", "key", "allowed")
        ticket.headers = limit_headers(result)
        if ticket.lease_keys is not None:
            self.renewal.keep(ticket)
        return ticket

    def _unadmitted(self, ticket: Ticket, failure: GatewayError) -> Ticket:
        """A request whose admission Redis did not answer: let through unlimited when
        ``on_store_error`` is "open" (nothing was written for it), else refused."""
        if self.config.on_store_error != "open":
            raise failure from None
        ticket.hold_member = ""
        ticket.lease_keys = None
        return ticket

    def _release_later(self, ticket: Ticket) -> None:
        """Give up the admission of ``ticket`` in Redis once Redis answers again: the script
        may still run (sent before the stall, run when it ends) and hold a concurrency slot
        and a budget hold nobody would release."""
        assert ticket.caller is not None
        key, team = ticket.caller.key, ticket.caller.team
        s, root = self.store, key.root
        tid = team.id if team is not None else "-"
        keys = [
            s.gone(root, ticket.request_id),
            s.leases(root, "key", key.id),
            s.leases(root, "team", tid),
            s.holds(root, "key", key.id),
            s.holds(root, "team", tid),
        ]
        args = [ticket.request_id, ticket.hold_member, self.lease_ms]
        task = asyncio.get_running_loop().create_task(self._release(keys, args), name="policy-release")
        self._releases.add(task)
        task.add_done_callback(self._releases.discard)

    async def _release(self, keys: list[str], args: list[Any]) -> None:
        """Send the release until Redis takes it (one try per circuit interval), for at most
        the lease TTL: a lease nobody renews is gone by then anyway."""
        deadline = self.clock.monotonic() + self.lease_ms / 1000
        while True:
            if not self.circuit.skip():
                try:
                    await self.store.release(keys, args)
                except STORE_ERRORS as exc:
                    self.circuit.failed()
                    log.warning("release of %s failed, trying again: %s", args[0], exc)
                else:
                    self.circuit.succeeded()
                    return
            if self.clock.monotonic() >= deadline:
                log.error("release of %s given up: Redis did not answer for the lease TTL", args[0])
                return
            await self.clock.sleep(self.circuit.interval, name=RELEASE_RETRY)

    async def stop(self) -> None:
        """Cancel the releases still waiting for Redis (their leases expire with their TTL)."""
        for task in list(self._releases):
            task.cancel()
        for task in list(self._releases):
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _admit_unlimited(
        self, caller: Caller, model: str, request_id: str, endpoint: str, started: float
    ) -> Ticket:
        """Admission with the policy off: nothing to count, nothing to settle."""
        if not caller.checked:
            # No admission script to compare versions: compare them here (one HMGET), so a
            # block, rotation or deletion still applies on every replica at once.
            try:
                caller = await self.auth.verify(caller)
            except STORE_ERRORS as exc:
                failure = self._store_failed(exc)
                if self.config.on_store_error != "open":
                    raise failure from None
            self.check_model(caller, model)
        return Ticket(None, caller, request_id=request_id, model=model, endpoint=endpoint, started=started)

    async def _admit_once(self, ticket: Ticket, hold: int) -> list[Any]:
        assert ticket.caller is not None
        key, team = ticket.caller.key, ticket.caller.team
        s, root = self.store, key.root
        tid = team.id if team is not None else "-"
        kl = key.limits
        tl = team.limits if team is not None else Limits()
        keys = [
            s.state(root),
            s.rl(root, "key", key.id, "rpm"),
            s.rl(root, "key", key.id, "tpm"),
            s.rl(root, "team", tid, "rpm"),
            s.rl(root, "team", tid, "tpm"),
            s.leases(root, "key", key.id),
            s.leases(root, "team", tid),
            s.holds(root, "key", key.id),
            s.holds(root, "team", tid),
            s.gone(root, ticket.request_id),
        ]
        team_state = "-" if team is None or team.source == "config" else team.state()
        args: list[Any] = [
            ticket.now_ms,
            ticket.request_id,
            key.id,
            "" if key.source == "config" else key.state(),
            team_state,
            kl.rpm or 0,
            kl.tpm or 0,
            tl.rpm or 0,
            tl.tpm or 0,
            kl.max_concurrency or 0,
            tl.max_concurrency or 0,
            self.lease_ms,
            ticket.estimate,
            hold,
        ]
        budgets: list[tuple[int, str, Budget]] = [(1, key.id, b) for b in key.budgets]
        if team is not None:
            budgets += [(2, team.id, b) for b in team.budgets]
        args.append(len(budgets))
        ids = self.windows.at(self.clock.now()) if budgets else {}
        for scope, ident, b in budgets:
            keys.append(s.spend(root, "key" if scope == 1 else "team", ident, ids[b.window][0]))
            args += [scope, round(b.limit_usd * 1e9)]
        ticket.hold_member = f"{ticket.request_id}:{hold}" if budgets and hold > 0 else ""
        leased = bool(kl.max_concurrency or tl.max_concurrency)
        ticket.lease_keys = keys[5:9] if leased or ticket.hold_member else None
        return await s.admit(keys, args)

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
        """Record usage that ran outside an admitted request (a chat turn's step in a worker,
        possibly on another replica): cost to the budgets and rollups, tokens to the TPM
        limiter, one usage event. ``kid`` is the key id (``Principal.key_id``). A key that no
        longer exists is not charged."""
        caller = await self.auth.caller_of(kid)
        if caller is None:
            return
        ticket = self._ticket(caller, request_id, model, endpoint, time.perf_counter())
        ticket.stream = stream
        ticket.settle(
            status=status,
            usage=usage,
            error_type=error_type,
            provider=provider,
            upstream_model=upstream_model,
            attempts=attempts,
        )


def _has_budgets(caller: Caller) -> bool:
    return bool(caller.key.budgets or (caller.team is not None and caller.team.budgets))
