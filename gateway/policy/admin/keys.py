"""Admin operations on keys created through the admin API (keys from the config file are
changed there: they answer 409 ``config_managed``).

A key's secret is shown once, when it is created or rotated; Redis holds only its digest. A
change bumps the key's version, which every admission compares, so it applies at once on
every replica.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec

from gateway.errors.client import Conflict, InvalidRequest, NotFound
from gateway.policy import keys as keyfmt
from gateway.policy.admin.base import AdminOps, checked_patch, patched, store_errors_unavailable
from gateway.policy.admin.reports import usage_days, usage_report
from gateway.policy.admin.types import (
    Deleted,
    KeyCreate,
    KeyQuery,
    KeyView,
    Page,
    ResetSpend,
    Rotate,
    UsageReport,
    check_key,
    key_view,
)
from gateway.policy.records import KeyRecord, Status
from gateway.policy.windows import window_ids

# The fields a PATCH may change (status has its own block/unblock operations).
KEY_FIELDS = frozenset({"alias", "team_id", "models", "limits", "budgets", "expires_at", "metadata"})


class KeyAdmin(AdminOps):
    async def view(self, record: KeyRecord, secret: str | None = None) -> KeyView:
        spend = await self.store.spend_of(record.root, "key", record.id, self.now())
        return key_view(record, spend, secret)

    async def find(self, kid: str) -> tuple[KeyRecord, dict[str, bytes]]:
        """The key's record and stored fields (404, or 409 for a key from the config file)."""
        loaded = await self.store.load_key(kid)
        if loaded is None:
            if any(c.key.id == kid for c in self.policy.config_keys.values()):
                raise Conflict("This key comes from the config file; change it there.", code="config_managed")
            raise NotFound(f"No key with id '{kid}'.", code="key_not_found")
        return loaded

    @store_errors_unavailable
    async def create(self, spec: KeyCreate, *, actor: str) -> KeyView:
        if spec.team_id is not None and await self.policy.team(spec.team_id, fresh=True) is None:
            raise InvalidRequest(f"No team with id '{spec.team_id}'.", param="team_id", code="team_not_found")
        kid = keyfmt.new_kid()
        if spec.alias is not None and not await self.store.claim_alias(spec.alias, kid):
            raise Conflict(f"A key with alias '{spec.alias}' exists.", param="alias", code="alias_taken")
        secret = keyfmt.new_key(kid)
        record = KeyRecord(
            id=kid,
            **msgspec.structs.asdict(spec),
            created_at=self.now(),
            created_by=actor,
            masked=keyfmt.masked(secret),
        )
        await self.store.save_key(record, hashes={"hash": self.policy.hasher.digest(secret)})
        await self.audit(actor, "key.create", kid, msgspec.to_builtins(spec))
        return await self.view(record, secret)

    @store_errors_unavailable
    async def listing(self, query: KeyQuery) -> Page[KeyRecord]:
        ids = await self.store.list_ids("keys", after=query.cursor, limit=query.limit)
        data: list[KeyRecord] = []
        for kid in ids:
            loaded = await self.store.load_key(kid)
            if loaded is None:
                continue
            record = loaded[0]
            if query.team_id and record.team_id != query.team_id:
                continue
            if query.status and record.status != query.status:
                continue
            if query.alias and record.alias != query.alias:
                continue
            data.append(record)
        return Page(data=data, next_cursor=ids[-1] if len(ids) == query.limit else None)

    @store_errors_unavailable
    async def read(self, kid: str) -> KeyView:
        record, _ = await self.find(kid)
        return await self.view(record)

    async def _change(
        self,
        kid: str,
        *,
        actor: str,
        action: str,
        change: Callable[[KeyRecord], KeyRecord],
        hashes: dict[str, str | bytes] | None = None,
        detail: object = None,
    ) -> KeyRecord:
        """Apply ``change`` to the stored key as a new version, drop this replica's cached copy,
        and audit it."""
        record, _ = await self.find(kid)
        updated = msgspec.structs.replace(change(record), version=record.version + 1)
        await self.store.save_key(updated, hashes=hashes, old_root=record.root)
        self.policy.invalidate(kid)
        await self.audit(actor, action, kid, detail)
        return updated

    @store_errors_unavailable
    async def update(self, kid: str, changes: object, *, actor: str) -> KeyView:
        """Apply a JSON merge patch of :data:`KEY_FIELDS` (the team is fixed at creation)."""
        patch: dict[str, Any] = checked_patch(changes, KEY_FIELDS)
        record, _ = await self.find(kid)
        candidate = patched(record, patch)  # refuses an invalid change before anything is written
        check_key(candidate)
        if candidate.team_id != record.team_id:
            # A key's limits, spend counters and usage rollups live under its team's hash tag;
            # moving it would silently reset its budgets and split its usage report.
            raise Conflict(
                "A key's team is fixed when the key is created; create a new key in the other team.",
                param="team_id",
                code="team_change_not_supported",
            )
        if candidate.alias != record.alias:
            if candidate.alias is not None and not await self.store.claim_alias(candidate.alias, kid):
                raise Conflict(
                    f"A key with alias '{candidate.alias}' exists.", param="alias", code="alias_taken"
                )
            if record.alias:
                await self.store.release_alias(record.alias, kid)
        updated = await self._change(
            kid, actor=actor, action="key.update", change=lambda r: patched(r, patch), detail=patch
        )
        return await self.view(updated)

    @store_errors_unavailable
    async def rotate(self, kid: str, spec: Rotate, *, actor: str) -> KeyView:
        """A new secret for the same key (id, settings and counters). The old one keeps working
        for ``grace_seconds`` (0: stops at once)."""
        grace = spec.grace_seconds
        if grace is None:
            grace = self.policy.config.default_rotation_grace_seconds
        if grace < 0:
            raise InvalidRequest("grace_seconds must not be negative.", param="grace_seconds")
        _, fields = await self.find(kid)
        secret = keyfmt.new_key(kid)
        hashes: dict[str, str | bytes] = {"hash": self.policy.hasher.digest(secret)}
        hashes["prev_hash"] = fields["hash"] if grace > 0 else b""
        hashes["prev_until"] = f"{self.now() + grace:.3f}" if grace > 0 else "0"
        updated = await self._change(
            kid,
            actor=actor,
            action="key.rotate",
            change=lambda r: msgspec.structs.replace(r, masked=keyfmt.masked(secret)),
            hashes=hashes,
            detail={"grace_seconds": grace},
        )
        return await self.view(updated, secret)

    @store_errors_unavailable
    async def set_status(self, kid: str, status: Status, *, actor: str) -> KeyView:
        """Block (``blocked``) or unblock (``active``) the key."""
        updated = await self._change(
            kid,
            actor=actor,
            action=f"key.{'block' if status == 'blocked' else 'unblock'}",
            change=lambda r: msgspec.structs.replace(r, status=status),
        )
        return await self.view(updated)

    @store_errors_unavailable
    async def delete(self, kid: str, *, actor: str) -> Deleted:
        record, _ = await self.find(kid)
        await self.store.delete_key(record)
        self.policy.invalidate(kid)
        await self.audit(actor, "key.delete", kid)
        return Deleted(kid, "gateway.key.deleted")

    @store_errors_unavailable
    async def reset_spend(self, kid: str, spec: ResetSpend, *, actor: str) -> KeyView:
        """Set the key's spend in the current ``window`` (day, week, month, total) to zero."""
        ids = window_ids(self.now())
        if spec.window not in ids:
            raise InvalidRequest("window must be day, week, month or total.", param="window")
        record, _ = await self.find(kid)
        await self.store.reset_spend(record.root, "key", kid, ids[spec.window][0])
        await self.audit(actor, "key.reset_spend", kid, {"window": spec.window})
        return await self.view(record)

    @store_errors_unavailable
    async def usage(self, kid: str, *, start: str | None = None, end: str | None = None) -> UsageReport:
        """The key's usage per day and model from ``start`` to ``end`` (YYYYMMDD, default today)."""
        record, _ = await self.find(kid)
        days = usage_days(start, end, self.now())
        per_day = await self.store.rollup_days(lambda d: self.store.rollup(record.root, d), days)
        return usage_report(per_day, f"k:{kid}|")
