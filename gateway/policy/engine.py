"""The policy service: who is calling, may they use this model, may this request run now —
and, when it is over, what it used and cost.

The hook every request path calls (Chat Completions, Responses, chats)::

    ticket = await services.policy.enter(scope, model=model, body_size=len(body),
                                         max_tokens=max_tokens, request_id=request_id,
                                         endpoint="/v1/responses")        # raises GatewayError
    try: ...
    finally: ticket.settle(status=status, usage=usage, provider=..., upstream_model=...)

``enter`` is ``authenticate`` + ``admit``; paths that must refuse a bad key before reading the
body call the two separately. ``settle`` never waits: it queues the request for the settler,
which writes batches to Redis off the request path. Calling it more than once is harmless.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import math
import time
from collections.abc import Sequence
from typing import Any

import msgspec
from redis.exceptions import NoScriptError, RedisError

from gateway.api.asgi_io import presented_key_from_scope
from gateway.clock import Clock, TimerHandle
from gateway.config import Budget, Limits, Settings
from gateway.errors.client import AuthenticationFailed, GatewayError, RateLimited
from gateway.policy import errors
from gateway.policy.auth import KeyRing, Principal
from gateway.policy.keys import KeyHasher, kid_of
from gateway.policy.records import KeyRecord, TeamRecord, has_limits, model_allowed
from gateway.policy.store import PolicyStore, window_ids, window_reset
from gateway.policy.usage import UsageEvent
from gateway.pricing import PriceTable, Usage
from gateway.telemetry.metrics import Metrics

log = logging.getLogger("gateway.policy")
LEASE_RENEW = "policy_lease_renew"
_ENCODER = msgspec.json.Encoder()
STORE_ERRORS = (RedisError, OSError)
_MISSING = (
    "You didn't provide an API key. You need to provide your API key in an Authorization header using "
    "Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
)


def _incorrect(presented: str) -> AuthenticationFailed:
    shown = presented[:3] + "*" * 4 + presented[-4:] if len(presented) > 8 else "*" * 4
    return AuthenticationFailed(f"Incorrect API key provided: {shown}.", code="invalid_api_key")


class Caller:
    """An authenticated key, its team, and the digest it was verified with."""

    __slots__ = ("digest", "key", "principal", "team")

    def __init__(self, key: KeyRecord, team: TeamRecord | None, digest: bytes) -> None:
        self.key = key
        self.team = team
        self.digest = digest
        self.principal = Principal(key.alias or key.id, key.id)

    def describe(self, scope: str) -> str:
        if scope == "team" and self.team is not None:
            return f"team '{self.team.name or self.team.id}'"
        return f"key '{self.key.alias or self.key.id}'"


class _Entry:
    __slots__ = ("fetched", "fields", "record")

    def __init__(self, record: KeyRecord, fields: dict[str, bytes], fetched: float) -> None:
        self.record = record
        self.fields = fields
        self.fetched = fetched


class _SettleItem:
    """One finished request, as the settler needs it."""

    __slots__ = (
        "cost",
        "delta",
        "event",
        "hold_member",
        "keys",
        "now_ms",
        "org_fields",
        "org_rollup",
        "request_id",
        "rollup",
        "tpm",
        "ttls",
    )

    def __init__(
        self,
        *,
        keys: tuple[str, ...],
        now_ms: str,
        request_id: str,
        hold_member: str,
        cost: int,
        delta: int,
        tpm: tuple[int, int],
        ttls: list[int],
        rollup: dict[str, int],
        org_rollup: str,
        org_fields: dict[str, int],
        event: bytes,
    ) -> None:
        self.keys = keys
        self.now_ms = now_ms
        self.request_id = request_id
        self.hold_member = hold_member
        self.cost = cost
        self.delta = delta
        self.tpm = tpm
        self.ttls = ttls
        self.rollup = rollup
        self.org_rollup = org_rollup
        self.org_fields = org_fields
        self.event = event


def _settle_args(group: Sequence[_SettleItem]) -> list[Any]:
    """``settle.lua`` arguments for requests that share every key: costs, token corrections and
    rollups are sums, so one call settles them all."""
    last = group[-1]
    rollup: dict[str, int] = {}
    for item in group:
        for field, value in item.rollup.items():
            rollup[field] = rollup.get(field, 0) + value
    args: list[Any] = [
        max(item.now_ms for item in group),
        sum(item.cost for item in group),
        sum(item.delta for item in group),
        last.tpm[0],
        last.tpm[1],
        "\t".join(item.request_id for item in group),
        "\t".join(item.hold_member for item in group if item.hold_member),
        len(last.ttls),
        *last.ttls,
    ]
    for field, value in rollup.items():
        args += [field, value]
    return args


class Ticket:
    """One admitted request. ``headers`` go on the answer; ``settle`` records the outcome."""

    __slots__ = (
        "_engine",
        "_renew_task",
        "_renewal",
        "_settled",
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
        engine: PolicyService | None,
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
        self._engine = engine
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
        if self._settled or self._engine is None:
            return
        self._settled = True
        if self._renewal is not None:
            self._renewal.cancel()
            self._renewal = None
        self._engine._settle(
            self, status, usage, error_type, provider, upstream_model, attempts, ttft_s, upstream_s
        )

    def _arm_renewal(self, interval: float) -> None:
        assert self._engine is not None
        self._renewal = self._engine.clock.call_later(interval, self._renew_due, name=LEASE_RENEW)

    def _renew_due(self) -> None:
        self._renewal = None
        if self._settled or self._engine is None:
            return
        self._renew_task = asyncio.get_running_loop().create_task(self._engine._renew(self))


class Settler:
    """Writes settlements in batches: whatever queued while the previous batch was in flight."""

    def __init__(self, store: PolicyStore, metrics: Metrics, batch_max: int) -> None:
        self._store = store
        self._metrics = metrics
        self._batch_max = batch_max
        self._queue: list[_SettleItem] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    def put(self, item: _SettleItem) -> None:
        self._queue.append(item)
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="policy-settler")

    async def stop(self) -> None:
        """Write what is queued, including a batch in flight (never cancelled mid-write)."""
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            await self._task
        while self._queue:
            await self._flush_some()

    async def _run(self) -> None:
        while not self._stopping:
            await self._wake.wait()
            self._wake.clear()
            while self._queue:
                await self._flush_some()

    async def _flush_some(self) -> None:
        batch = self._queue[: self._batch_max]
        del self._queue[: self._batch_max]
        try:
            await self._flush(batch)
        except STORE_ERRORS as exc:
            self._metrics.usage_write_failures.inc(len(batch))
            log.error("settlement of %d requests failed: %s", len(batch), exc)

    async def _flush(self, batch: Sequence[_SettleItem]) -> None:
        store = self._store
        script = store.settle_script
        pipe = store.redis.pipeline(transaction=False)
        # Requests of one key (and team, model and day) share every key of the settle script:
        # one call per such group. The org-wide rollups are summed over the whole batch.
        groups: dict[tuple[str, ...], list[_SettleItem]] = {}
        org: dict[str, dict[str, int]] = {}
        for item in batch:
            groups.setdefault(item.keys, []).append(item)
            sums = org.setdefault(item.org_rollup, {})
            for field, value in item.org_fields.items():
                sums[field] = sums.get(field, 0) + value
        calls = [(list(keys), _settle_args(group)) for keys, group in groups.items()]
        for keys, args in calls:
            pipe.evalsha(script.sha, len(keys), *keys, *args)
        for item in batch:
            pipe.xadd(store.usage_stream, {"e": item.event}, maxlen=store.usage_maxlen, approximate=True)
        for name, sums in org.items():
            for field, value in sums.items():
                pipe.hincrby(name, field, value)
            pipe.expire(name, 400 * 86400)
        results = await pipe.execute(raise_on_error=False)
        for (keys, args), outcome in zip(calls, results[: len(calls)], strict=True):
            if isinstance(outcome, NoScriptError):
                await script(store.redis, keys, args)
            elif isinstance(outcome, Exception):
                raise outcome
        self._metrics.settle_batch.observe(len(batch))


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
        self.settings = settings
        self.config = settings.policy
        self.clock = clock
        self.metrics = metrics
        self.enabled = settings.policy.enabled
        self.store = PolicyStore(
            redis,
            settings.redis.key_prefix,
            usage_maxlen=settings.policy.usage_stream_maxlen,
            audit_maxlen=settings.policy.audit_stream_maxlen,
        )
        self.prices = PriceTable(settings.prices)
        self.hasher = KeyHasher(pepper)
        self.keyring = keyring
        self.settler = Settler(self.store, metrics, settings.policy.settle_batch_max)
        self.config_teams = {
            t.id: TeamRecord(
                id=t.id, name=t.name, models=t.models, limits=t.limits, budgets=t.budgets, source="config"
            )
            for t in settings.teams
        }
        self.config_keys: dict[str, Caller] = {}
        for k in settings.auth.keys:
            kid = k.digest().hex()[:12]
            record = KeyRecord(
                id=kid,
                alias=k.name,
                team_id=k.team,
                models=k.models,
                limits=k.limits,
                budgets=k.budgets,
                source="config",
                masked=f"{k.name} (config)",
            )
            self.config_keys[k.name] = Caller(record, self.config_teams.get(k.team or ""), k.digest())
        self._config_by_kid = {c.key.id: c for c in self.config_keys.values()}
        # Public model names: a request for any other model is refused before admission, so a
        # typo neither spends a limit nor writes usage and rollups under an unbounded name.
        self.models = frozenset(m.name for m in settings.models)
        self._keys: dict[str, _Entry] = {}
        self._teams: dict[str, tuple[TeamRecord, float]] = {}
        self._lease_ms = int(settings.policy.lease_ttl_seconds * 1000)
        # Leases and holds of a running request are pushed forward this often, so the TTL only
        # has to outlive a crashed replica's requests, not the longest stream.
        self.renew_interval = settings.policy.lease_ttl_seconds / 4
        self._windows: tuple[int, dict[str, tuple[str, int]]] = (-1, {})

    async def start(self) -> None:
        with contextlib.suppress(*STORE_ERRORS):
            await self.store.redis.script_load(self.store.admit_script.source)
            await self.store.redis.script_load(self.store.settle_script.source)
        self.settler.start()

    async def stop(self) -> None:
        await self.settler.stop()

    # -- authentication --------------------------------------------------------------------------
    def invalidate(self, kid: str | None = None, team: str | None = None) -> None:
        if kid is not None:
            self._keys.pop(kid, None)
        if team is not None:
            self._teams.pop(team, None)

    async def _load_key(self, kid: str, *, fresh: bool) -> _Entry | None:
        mono = self.clock.monotonic()
        entry = self._keys.get(kid)
        if entry is not None and not fresh and mono - entry.fetched < self.config.cache_ttl_seconds:
            return entry
        loaded = await self.store.load_key(kid)
        if loaded is None:
            self._keys.pop(kid, None)
            return None
        if len(self._keys) >= 10_000:
            self._keys.clear()
        entry = self._keys[kid] = _Entry(loaded[0], loaded[1], mono)
        return entry

    async def team(self, tid: str | None, *, fresh: bool = False) -> TeamRecord | None:
        if tid is None:
            return None
        configured = self.config_teams.get(tid)
        if configured is not None:
            return configured
        mono = self.clock.monotonic()
        cached = self._teams.get(tid)
        if cached is not None and not fresh and mono - cached[1] < self.config.cache_ttl_seconds:
            return cached[0]
        team = await self.store.load_team(tid)
        if team is None:
            self._teams.pop(tid, None)
            return None
        if len(self._teams) >= 10_000:
            self._teams.clear()
        self._teams[tid] = (team, mono)
        return team

    async def authenticate(self, presented: str | None, *, fresh: bool = False) -> Caller:
        """The caller of ``presented``. A refusal based on a cached record is checked again
        against Redis first (another replica may have unblocked or rotated the key)."""
        try:
            return await self._authenticate(presented, fresh=fresh)
        except AuthenticationFailed:
            kid = kid_of(presented or "")
            if fresh or kid is None or kid not in self._keys:
                raise
            return await self._authenticate(presented, fresh=True)

    async def _authenticate(self, presented: str | None, *, fresh: bool) -> Caller:
        if not presented:
            raise AuthenticationFailed(_MISSING)
        kid = kid_of(presented)
        if kid is None:
            principal = self.keyring.authenticate(presented)
            return self.config_keys[principal.key_name]
        try:
            entry = await self._load_key(kid, fresh=fresh)
            if entry is None:
                raise _incorrect(presented)
            record = entry.record
            digest = self.hasher.digest(presented)
            ok = hmac.compare_digest(digest, entry.fields.get("hash", b""))
            if not ok and "prev_hash" in entry.fields:
                until = float(entry.fields.get("prev_until", b"0"))
                ok = self.clock.now() < until and hmac.compare_digest(digest, entry.fields["prev_hash"])
            if not ok:
                raise _incorrect(presented)
            team = await self.team(record.team_id, fresh=fresh)
        except STORE_ERRORS as exc:
            raise self._store_failed(exc, "auth") from None
        if record.status != "active" or (team is not None and team.status != "active"):
            self.metrics.decision("auth", "key", "denied")
            raise AuthenticationFailed("This API key has been blocked.", code="invalid_api_key")
        if record.expires_at is not None and self.clock.now() >= record.expires_at:
            self.metrics.decision("auth", "key", "denied")
            raise AuthenticationFailed("This API key has expired.", code="invalid_api_key")
        return Caller(record, team, digest)

    async def _reload(self, caller: Caller) -> Caller:
        """``caller`` read again from Redis (its cached copy may be stale): refused if the key
        was deleted, blocked, expired or rotated past its grace period since."""
        key = caller.key
        self.invalidate(key.id, key.team_id)
        fresh = await self._load_key(key.id, fresh=True)
        if fresh is None:
            raise AuthenticationFailed("This API key has been deleted.", code="invalid_api_key")
        digest = caller.digest
        fields = fresh.fields
        ok = hmac.compare_digest(digest, fields.get("hash", b"")) or (
            "prev_hash" in fields
            and self.clock.now() < float(fields.get("prev_until", b"0"))
            and hmac.compare_digest(digest, fields["prev_hash"])
        )
        if not ok:
            raise AuthenticationFailed("Incorrect API key provided.", code="invalid_api_key")
        team = await self.team(fresh.record.team_id, fresh=True)
        if fresh.record.status != "active" or (team is not None and team.status != "active"):
            self.metrics.decision("auth", "key", "denied")
            raise AuthenticationFailed("This API key has been blocked.", code="invalid_api_key")
        if fresh.record.expires_at is not None and self.clock.now() >= fresh.record.expires_at:
            self.metrics.decision("auth", "key", "denied")
            raise AuthenticationFailed("This API key has expired.", code="invalid_api_key")
        return Caller(fresh.record, team, digest)

    def _store_failed(self, exc: BaseException, op: str) -> GatewayError:
        decision = self.config.on_store_error
        self.metrics.store_error(decision if op == "admit" else "closed")
        log.error("policy store error during %s (%s): %s", op, decision, exc)
        return errors.store_unavailable()

    # -- admission -------------------------------------------------------------------------------
    @staticmethod
    def may_use(caller: Caller, model: str) -> bool:
        """The key's and its team's allow-lists both admit ``model``."""
        return model_allowed(caller.key.models, model) and (
            caller.team is None or model_allowed(caller.team.models, model)
        )

    def check_model(self, caller: Caller, model: str) -> None:
        if not self.may_use(caller, model):
            self.metrics.decision("model_access", "key", "denied")
            raise errors.model_not_allowed(model)

    async def enter(
        self,
        scope: Any,
        *,
        model: str,
        body_size: int,
        max_tokens: int | None,
        request_id: str,
        endpoint: str,
        started: float | None = None,
    ) -> Ticket:
        """Authenticate the request's key, check the model, admit it: the whole hook in one call."""
        caller = await self.authenticate(presented_key_from_scope(scope))
        return await self.admit(
            caller,
            model=model,
            body_size=body_size,
            max_tokens=max_tokens,
            request_id=request_id,
            endpoint=endpoint,
            started=started,
        )

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
        if model not in self.models:  # before the allow-list: a typo is a 404 for every key
            raise errors.model_not_found(model)
        self.check_model(caller, model)
        if not self.enabled:
            if caller.key.source == "admin":
                # No admission call to compare versions: read the key itself, so a block or a
                # deletion still applies on every replica at once.
                try:
                    caller = await self._reload(caller)
                except STORE_ERRORS as exc:
                    failure = self._store_failed(exc, "admit")
                    if self.config.on_store_error != "open":
                        raise failure from None
                self.check_model(caller, model)
            return Ticket(
                None, caller, request_id=request_id, model=model, endpoint=endpoint, started=started
            )
        out_reserve = max_tokens if max_tokens and max_tokens > 0 else self.config.output_reserve_tokens
        input_est = math.ceil(body_size / 4)
        estimate = input_est + out_reserve
        key, team = caller.key, caller.team
        limited = has_limits(key.limits, key.budgets) or (
            team is not None and has_limits(team.limits, team.budgets)
        )
        now_ms = "" if self.config.time_source == "redis" else str(int(self.clock.now() * 1000))
        ticket = Ticket(
            self,
            caller,
            request_id=request_id,
            model=model,
            endpoint=endpoint,
            started=started,
            estimate=estimate,
            now_ms=now_ms,
        )
        if key.source == "config" and not limited:
            return ticket  # nothing to enforce and nothing to revoke: no round trip
        hold = self.prices.hold(input_est, out_reserve, model) if self._budgets(caller) else 0
        for _ in range(3):
            try:
                result = await self._admit_once(ticket, hold)
            except STORE_ERRORS as exc:
                failure = self._store_failed(exc, "admit")
                if self.config.on_store_error == "open":
                    ticket.hold_member = ""
                    ticket.lease_keys = None
                    return ticket
                raise failure from None
            if result[0] != -1:
                break
            # The cached config is stale (updated, rotated, blocked, deleted): read it again.
            try:
                caller = await self._reload(caller)
            except STORE_ERRORS as exc:
                raise self._store_failed(exc, "admit") from None
            self.check_model(caller, model)
            ticket.caller = caller
            key, team = caller.key, caller.team
            hold = self.prices.hold(input_est, out_reserve, model) if self._budgets(caller) else 0
        else:
            raise errors.store_unavailable()
        if result[0] == 0:
            raise self._refusal(caller, result, estimate)
        self.metrics.decision("admission", "key", "allowed")
        ticket.headers = self._limit_headers(result)
        if ticket.lease_keys is not None:
            ticket._arm_renewal(self.renew_interval)
        return ticket

    def _window_ids(self, now: float) -> dict[str, tuple[str, int]]:
        """:func:`window_ids`, computed once per minute: windows start on minute boundaries, and
        counter TTLs (window end + 35 days) need no finer precision."""
        minute = int(now // 60)
        if self._windows[0] != minute:
            self._windows = (minute, window_ids(minute * 60.0))
        return self._windows[1]

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
        caller = self._config_by_kid.get(kid)
        if caller is None:
            entry = await self._load_key(kid, fresh=False)
            if entry is None:
                return
            caller = Caller(entry.record, await self.team(entry.record.team_id), b"")
        now_ms = "" if self.config.time_source == "redis" else str(int(self.clock.now() * 1000))
        ticket = Ticket(
            self,
            caller,
            request_id=request_id,
            model=model,
            endpoint=endpoint,
            started=time.perf_counter(),
            now_ms=now_ms,
        )
        ticket.stream = stream
        ticket.settle(
            status=status,
            usage=usage,
            error_type=error_type,
            provider=provider,
            upstream_model=upstream_model,
            attempts=attempts,
        )

    def _budgets(self, caller: Caller) -> bool:
        return bool(caller.key.budgets or (caller.team is not None and caller.team.budgets))

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
            self._lease_ms,
            ticket.estimate,
            hold,
        ]
        budgets: list[tuple[int, str, Budget]] = [(1, key.id, b) for b in key.budgets]
        if team is not None:
            budgets += [(2, team.id, b) for b in team.budgets]
        args.append(len(budgets))
        ids = self._window_ids(self.clock.now()) if budgets else {}
        for scope, ident, b in budgets:
            keys.append(s.spend(root, "key" if scope == 1 else "team", ident, ids[b.window][0]))
            args += [scope, round(b.limit_usd * 1e9)]
        ticket.hold_member = f"{ticket.request_id}:{hold}" if budgets and hold > 0 else ""
        leased = bool(kl.max_concurrency or tl.max_concurrency)
        ticket.lease_keys = keys[5:9] if leased or ticket.hold_member else None
        result: list[Any] = await s.admit_script(s.redis, keys, args)
        return result

    async def _renew(self, ticket: Ticket) -> None:
        """Push the expiry of a running request's leases and hold forward, then re-arm."""
        if ticket.lease_keys is None:
            return
        now_ms = "" if self.config.time_source == "redis" else str(int(self.clock.now() * 1000))
        args = [now_ms, ticket.request_id, ticket.hold_member, self._lease_ms]
        try:
            await self.store.renew_script(self.store.redis, ticket.lease_keys, args)
        except STORE_ERRORS as exc:
            log.error("lease renewal failed for %s: %s", ticket.request_id, exc)
        if not ticket._settled:
            ticket._arm_renewal(self.renew_interval)

    def _refusal(self, caller: Caller, result: list[Any], estimate: int) -> GatewayError:
        kind = bytes(result[1]).decode()
        scope = bytes(result[2]).decode()
        limit, used, retry_ms = int(result[3]), int(result[4]), int(result[5])
        who = caller.describe(scope)
        if kind == "rpm":
            self.metrics.decision("rpm", scope, "denied")
            return RateLimited(
                f"Rate limit reached for requests per min (RPM) on {who}: Limit {limit}, Used {used}, "
                f"Requested 1. Please try again in {retry_ms / 1000:g}s.",
                code="rate_limit_exceeded",
                headers={
                    **errors.retry_headers(retry_ms),
                    "x-ratelimit-limit-requests": str(limit),
                    "x-ratelimit-remaining-requests": "0",
                    "x-ratelimit-reset-requests": errors.go_duration(retry_ms / 1000),
                },
            )
        if kind == "tpm":
            self.metrics.decision("tpm", scope, "denied")
            return errors.TokensRateLimited(
                f"Rate limit reached for tokens per min (TPM) on {who}: Limit {limit}, Used {used}, "
                f"Requested {estimate}. Please try again in {retry_ms / 1000:g}s.",
                code="rate_limit_exceeded",
                headers={
                    **errors.retry_headers(retry_ms),
                    "x-ratelimit-limit-tokens": str(limit),
                    "x-ratelimit-remaining-tokens": "0",
                    "x-ratelimit-reset-tokens": errors.go_duration(retry_ms / 1000),
                },
            )
        if kind == "tpm_too_large":
            self.metrics.decision("tpm", scope, "denied")
            return errors.TokensRateLimited(
                f"Request too large for tokens per min (TPM) on {who}: Limit {limit}, Requested {estimate}. "
                "The input or output tokens must be reduced in order to run successfully.",
                code="rate_limit_exceeded",
                headers={"x-should-retry": "false"},
            )
        if kind == "concurrency":
            self.metrics.decision("concurrency", scope, "denied")
            return RateLimited(
                f"Too many concurrent requests on {who}: Limit {limit}. "
                "Please try again when one of them has finished.",
                code="concurrency_limit_exceeded",
                headers=errors.retry_headers(retry_ms),
            )
        self.metrics.decision("budget", scope, "denied")
        budgets = caller.key.budgets if scope == "key" else (caller.team.budgets if caller.team else ())
        index = int(result[6]) - 1
        if scope == "team":
            index -= len(caller.key.budgets)
        window = budgets[index].window if 0 <= index < len(budgets) else "total"
        reset = window_reset(self.clock.now(), window)
        when = f"; it resets at {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(reset))}" if reset else ""
        per = "in total" if window == "total" else f"per {window}"
        return errors.QuotaExceeded(
            f"You exceeded your current quota: the {who} budget of ${limit / 1e9:.2f} {per} is used up "
            f"(${used / 1e9:.6f} spent or held){when}.",
            code="insufficient_quota",
            headers={"x-should-retry": "false"},
        )

    @staticmethod
    def _limit_headers(result: list[Any]) -> list[tuple[str, str]]:
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

    # -- settlement ------------------------------------------------------------------------------
    def _settle(
        self,
        ticket: Ticket,
        status: int,
        usage: Usage | None,
        error_type: str | None,
        provider: str | None,
        upstream_model: str | None,
        attempts: int,
        ttft_s: float | None,
        upstream_s: float,
    ) -> None:
        caller = ticket.caller
        assert caller is not None
        duration = time.perf_counter() - ticket.started
        if usage is None:
            # Nothing reported (upstream error, disconnect before usage): the prompt is billed
            # only if an attempt reached the provider and the answer did not say otherwise.
            usage = Usage(source="estimated")
        model = ticket.model
        cost = self.prices.cost(usage, model, upstream_model or model)
        now = self.clock.now()
        key, team = caller.key, caller.team
        s, root = self.store, key.root
        ids = self._window_ids(now)
        day = ids["day"][0][1:]
        event = UsageEvent(
            ts=now,
            request_id=ticket.request_id,
            kid=key.id,
            team_id=key.team_id,
            endpoint=ticket.endpoint,
            model=model,
            upstream_model=upstream_model,
            provider=provider,
            stream=ticket.stream,
            status=status,
            error_type=error_type,
            attempts=attempts,
            input_tokens=usage.input_tokens,
            cache_read_tokens=usage.cache_read_tokens,
            cache_write_tokens=usage.cache_write_tokens,
            output_tokens=usage.output_tokens,
            reasoning_tokens=usage.reasoning_tokens,
            usage_source=usage.source,
            cost_nusd=cost,
            price_version=self.prices.version,
            ttft_ms=None if ttft_s is None else round(ttft_s * 1000, 3),
            duration_ms=round(duration * 1000, 3),
            overhead_ms=round(max(0.0, duration - upstream_s) * 1000, 3),
        )
        tid = team.id if team is not None else "-"
        spend_keys = [s.spend(root, "key", key.id, ids[w][0]) for w in ids]
        ttls = [ids[w][1] for w in ids]
        if team is not None:
            spend_keys += [s.spend(root, "team", tid, ids[w][0]) for w in ids]
            ttls += ttls
        delta = (
            usage.input_tokens + usage.output_tokens - ticket.estimate if usage.source == "reported" else 0
        )
        metrics = {
            "req": 1,
            "in": usage.input_tokens,
            "cin": usage.cache_read_tokens,
            "cwr": usage.cache_write_tokens,
            "out": usage.output_tokens,
            "rsn": usage.reasoning_tokens,
            "nusd": cost,
            "err": 1 if status >= 400 else 0,
        }
        rollup: dict[str, int] = {}
        scopes = [f"k:{key.id}"] + ([f"t:{tid}"] if team is not None else [])
        for scope in scopes:
            for name, value in metrics.items():
                if value or name == "req":
                    rollup[f"{scope}|{model}|{name}"] = value
        keys = (
            s.leases(root, "key", key.id),
            s.leases(root, "team", tid),
            s.holds(root, "key", key.id),
            s.holds(root, "team", tid),
            s.rl(root, "key", key.id, "tpm"),
            s.rl(root, "team", tid, "tpm"),
            s.rollup(root, day),
            *spend_keys,
        )
        org: dict[str, int] = {}
        for scope in [f"key:{key.id}", f"model:{model}"] + ([f"team:{tid}"] if team is not None else []):
            for name in ("req", "in", "out", "nusd", "err"):
                if metrics[name] or name == "req":
                    org[f"{scope}|{name}"] = metrics[name]
        if self.enabled:
            self.settler.put(
                _SettleItem(
                    keys=keys,
                    now_ms=ticket.now_ms and str(int(now * 1000)),
                    request_id=ticket.request_id,
                    hold_member=ticket.hold_member,
                    cost=cost,
                    delta=delta,
                    tpm=(key.limits.tpm or 0, (team.limits.tpm or 0) if team is not None else 0),
                    ttls=ttls,
                    rollup=rollup,
                    org_rollup=s.org_rollup(day),
                    org_fields=org,
                    event=_ENCODER.encode(event),
                )
            )
        self.metrics.usage(
            provider=provider or "",
            model=model,
            tokens={
                "input": usage.input_tokens,
                "cache_read": usage.cache_read_tokens,
                "cache_write": usage.cache_write_tokens,
                "output": usage.output_tokens,
                "reasoning": usage.reasoning_tokens,
            },
            cost_nusd=cost,
            estimated=usage.source != "reported" and status < 400,
        )
