"""Who is calling: a presented key checked against the config's keys or the admin-created ones
in Redis, with their teams.

Admin-created keys and teams are cached for ``cache_ttl_seconds``, but a cached record is never
trusted on its own: every change (block, unblock, rotation, update, deletion) writes the key's
``<status>:<version>`` into its enforcement root's state hash, and each request compares the
cached versions with that hash before it does anything, so the change applies on every replica
from its next request. The comparison rides on the request's admission script where there is
one (``admit.lua``); a request that is not admitted (reads, deletions, listings, counts) reads
the two fields with one ``HMGET`` (:meth:`Authenticator.verify`). Keys from the config file
have nothing to revoke and are never checked.
"""

from __future__ import annotations

import hmac

from gateway.clock import Clock
from gateway.config import Settings
from gateway.errors.client import AuthenticationFailed
from gateway.policy.auth import MISSING_KEY, KeyRing, Principal, incorrect_key
from gateway.policy.keys import KeyHasher, kid_of
from gateway.policy.records import KeyRecord, TeamRecord
from gateway.policy.refusals import describe, store_failed
from gateway.policy.store import STORE_ERRORS, PolicyStore
from gateway.telemetry.metrics import Metrics

# Cached records beyond this many are dropped all at once (a flood of distinct keys must not
# grow the process).
_CACHE_MAX = 10_000


class Caller:
    """An authenticated key, its team, and the digest it was verified with. ``checked``: its
    records are known current (read from Redis for this request, or the config file's); an
    unchecked caller came from the cache and goes through :meth:`Authenticator.verify` or an
    admission before it may do anything."""

    __slots__ = ("checked", "digest", "key", "principal", "team")

    def __init__(
        self, key: KeyRecord, team: TeamRecord | None, digest: bytes, *, checked: bool = True
    ) -> None:
        self.key = key
        self.team = team
        self.digest = digest
        self.checked = checked
        self.principal = Principal(key.alias or key.id, key.id)

    def describe(self, scope: str) -> str:
        return describe(self.key, self.team, scope)


class _Entry:
    __slots__ = ("fetched", "fields", "record")

    def __init__(self, record: KeyRecord, fields: dict[str, bytes], fetched: float) -> None:
        self.record = record
        self.fields = fields
        self.fetched = fetched


def config_teams(settings: Settings) -> dict[str, TeamRecord]:
    return {
        t.id: TeamRecord(
            id=t.id, name=t.name, models=t.models, limits=t.limits, budgets=t.budgets, source="config"
        )
        for t in settings.teams
    }


def config_callers(settings: Settings, teams: dict[str, TeamRecord]) -> dict[str, Caller]:
    """The config file's keys by name, as callers (their id: the digest's first 12 hex digits)."""
    callers: dict[str, Caller] = {}
    for k in settings.auth.keys:
        record = KeyRecord(
            id=k.digest().hex()[:12],
            alias=k.name,
            team_id=k.team,
            models=k.models,
            limits=k.limits,
            budgets=k.budgets,
            source="config",
            masked=f"{k.name} (config)",
        )
        callers[k.name] = Caller(record, teams.get(k.team or ""), k.digest())
    return callers


class Authenticator:
    def __init__(
        self,
        settings: Settings,
        store: PolicyStore,
        clock: Clock,
        metrics: Metrics,
        *,
        keyring: KeyRing,
        hasher: KeyHasher,
    ) -> None:
        self.store = store
        self.clock = clock
        self.metrics = metrics
        self.keyring = keyring
        self.hasher = hasher
        self.cache_ttl = settings.policy.cache_ttl_seconds
        self.on_store_error = settings.policy.on_store_error
        self.config_teams = config_teams(settings)
        self.config_keys = config_callers(settings, self.config_teams)
        self.config_by_kid = {c.key.id: c for c in self.config_keys.values()}
        self._keys: dict[str, _Entry] = {}
        self._teams: dict[str, tuple[TeamRecord, float]] = {}

    def invalidate(self, kid: str | None = None, team: str | None = None) -> None:
        """Forget the cached key and/or team (this replica changed them)."""
        if kid is not None:
            self._keys.pop(kid, None)
        if team is not None:
            self._teams.pop(team, None)

    def cached(self, kid: str) -> bool:
        return kid in self._keys

    async def load_key(self, kid: str, *, fresh: bool) -> _Entry | None:
        return (await self._lookup(kid, fresh=fresh))[0]

    async def _lookup(self, kid: str, *, fresh: bool) -> tuple[_Entry | None, bool]:
        """The key's entry, and whether it was read from Redis just now (not the cache)."""
        mono = self.clock.monotonic()
        entry = self._keys.get(kid)
        if entry is not None and not fresh and mono - entry.fetched < self.cache_ttl:
            return entry, False
        loaded = await self.store.load_key(kid)
        if loaded is None:
            self._keys.pop(kid, None)
            return None, True
        if len(self._keys) >= _CACHE_MAX:
            self._keys.clear()
        entry = self._keys[kid] = _Entry(loaded[0], loaded[1], mono)
        return entry, True

    async def team(self, tid: str | None, *, fresh: bool = False) -> TeamRecord | None:
        if tid is None:
            return None
        configured = self.config_teams.get(tid)
        if configured is not None:
            return configured
        mono = self.clock.monotonic()
        cached = self._teams.get(tid)
        if cached is not None and not fresh and mono - cached[1] < self.cache_ttl:
            return cached[0]
        team = await self.store.load_team(tid)
        if team is None:
            self._teams.pop(tid, None)
            return None
        if len(self._teams) >= _CACHE_MAX:
            self._teams.clear()
        self._teams[tid] = (team, mono)
        return team

    async def caller_of(self, kid: str) -> Caller | None:
        """The key with id ``kid`` as a caller (no digest: nothing was presented), or None if
        it no longer exists."""
        caller = self.config_by_kid.get(kid)
        if caller is not None:
            return caller
        entry = await self.load_key(kid, fresh=False)
        if entry is None:
            return None
        return Caller(entry.record, await self.team(entry.record.team_id), b"")

    async def authenticate(
        self, presented: str | None, *, fresh: bool = False, verify: bool = True
    ) -> Caller:
        """The caller of ``presented``. A refusal based on a cached record is checked again
        against Redis first (another replica may have unblocked or rotated the key). With
        ``verify`` a cached admin-created key is checked against its current version
        (:meth:`verify`); without it the caller may come back unchecked, for an admission
        to check."""
        try:
            caller = await self._authenticate(presented, fresh=fresh)
        except AuthenticationFailed:
            kid = kid_of(presented or "")
            if fresh or kid is None or kid not in self._keys:
                raise
            return await self._authenticate(presented, fresh=True)
        if verify and not caller.checked:
            try:
                return await self.verify(caller)
            except STORE_ERRORS as exc:
                raise store_failed(self.metrics, self.on_store_error, exc, "auth") from None
        return caller

    async def verify(self, caller: Caller) -> Caller:
        """``caller``, known current: its key's and admin-created team's versions compared with
        those in Redis (one ``HMGET``); read again (or refused) when either changed. A store
        failure is raised as it is (``STORE_ERRORS``)."""
        if caller.checked:
            return caller
        key, team = caller.key, caller.team
        got = await self.store.redis.hmget(self.store.state(key.root), [key.id, "team"])
        if got[0] != key.state().encode() or (
            team is not None and team.source == "admin" and got[1] != team.state().encode()
        ):
            return await self.reload(caller)
        caller.checked = True
        return caller

    async def _authenticate(self, presented: str | None, *, fresh: bool) -> Caller:
        if not presented:
            raise AuthenticationFailed(MISSING_KEY)
        kid = kid_of(presented)
        if kid is None:
            principal = self.keyring.authenticate(presented)
            return self.config_keys[principal.key_name]
        try:
            entry, checked = await self._lookup(kid, fresh=fresh)
            if entry is None:
                raise incorrect_key(presented)
            digest = self.hasher.digest(presented)
            if not self._matches(digest, entry.fields):
                raise incorrect_key(presented)
            team = await self.team(entry.record.team_id, fresh=fresh or checked)
        except STORE_ERRORS as exc:
            raise store_failed(self.metrics, self.on_store_error, exc, "auth") from None
        self._check_active(entry.record, team)
        return Caller(entry.record, team, digest, checked=checked)

    async def reload(self, caller: Caller) -> Caller:
        """``caller`` read again from Redis (its cached copy may be stale): refused if the key
        was deleted, blocked, expired or rotated past its grace period since."""
        key = caller.key
        self.invalidate(key.id, key.team_id)
        fresh = await self.load_key(key.id, fresh=True)
        if fresh is None:
            raise AuthenticationFailed("This API key has been deleted.", code="invalid_api_key")
        if not self._matches(caller.digest, fresh.fields):
            raise AuthenticationFailed("Incorrect API key provided.", code="invalid_api_key")
        team = await self.team(fresh.record.team_id, fresh=True)
        self._check_active(fresh.record, team)
        return Caller(fresh.record, team, caller.digest)

    def _matches(self, digest: bytes, fields: dict[str, bytes]) -> bool:
        """The digest is the key's, or its previous one within the rotation grace period."""
        if hmac.compare_digest(digest, fields.get("hash", b"")):
            return True
        return (
            "prev_hash" in fields
            and self.clock.now() < float(fields.get("prev_until", b"0"))
            and hmac.compare_digest(digest, fields["prev_hash"])
        )

    def _check_active(self, record: KeyRecord, team: TeamRecord | None) -> None:
        if record.status != "active" or (team is not None and team.status != "active"):
            self.metrics.decision("auth", "key", "denied")
            raise AuthenticationFailed("This API key has been blocked.", code="invalid_api_key")
        if record.expires_at is not None and self.clock.now() >= record.expires_at:
            self.metrics.decision("auth", "key", "denied")
            raise AuthenticationFailed("This API key has expired.", code="invalid_api_key")
