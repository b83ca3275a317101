"""Reports: usage per day from the rollups, the audit trail, and what a key sees of itself."""

from __future__ import annotations

import datetime as dt

from msgspec import UNSET

from gateway.errors.client import InvalidRequest
from gateway.policy.admin.base import AdminOps, store_errors_unavailable
from gateway.policy.admin.types import (
    AuditEntry,
    Listing,
    OrgUsageRow,
    SelfTeam,
    SelfView,
    UsageReport,
    UsageRow,
    UsageTotals,
    budgets_left,
)
from gateway.policy.authentication import Caller

# Rollup fields (``<scope>|<model>|<metric>``) by their short metric names.
METRICS = {
    "req": "requests",
    "in": "input_tokens",
    "cin": "cache_read_tokens",
    "cwr": "cache_write_tokens",
    "out": "output_tokens",
    "rsn": "reasoning_tokens",
    "nusd": "cost_nusd",
    "err": "errors",
}
GROUPS = ("key", "team", "model")
_MAX_DAYS = 400  # the rollups' TTL


def usage_days(start: str | None, end: str | None, now: float) -> list[str]:
    """The days from ``start`` to ``end`` (YYYYMMDD, both default to today, UTC), 400 at most."""
    today = f"{dt.datetime.fromtimestamp(now, dt.UTC).date():%Y%m%d}"
    try:
        first = dt.datetime.strptime(today if start is None else start, "%Y%m%d").date()
        last = dt.datetime.strptime(today if end is None else end, "%Y%m%d").date()
    except ValueError:
        raise InvalidRequest("from and to are dates as YYYYMMDD.", code="invalid_range") from None
    if last < first or (last - first).days > _MAX_DAYS:
        raise InvalidRequest("The range must be 1 to 400 days, from <= to.", code="invalid_range")
    return [f"{first + dt.timedelta(days=i):%Y%m%d}" for i in range((last - first).days + 1)]


def usage_report(per_day: dict[str, dict[str, int]], scope_prefix: str) -> UsageReport:
    """Rows per day and model of one scope's rollup fields (those starting ``scope_prefix``)."""
    rows: dict[tuple[str, str], UsageRow] = {}
    total = UsageTotals()
    for day, fields in per_day.items():
        for field, value in fields.items():
            if not field.startswith(scope_prefix):
                continue
            model, _, metric = field[len(scope_prefix) :].rpartition("|")
            name = METRICS.get(metric)
            if name is None:
                continue
            row = rows.get((day, model))
            if row is None:
                row = rows[(day, model)] = UsageRow(day=day, model=model)
            setattr(row, name, getattr(row, name) + value)
            setattr(total, name, getattr(total, name) + value)
    total.cost_usd = total.cost_nusd / 1e9
    data = sorted(rows.values(), key=lambda r: (r.day, r.model))
    for row in data:
        row.cost_usd = row.cost_nusd / 1e9
    return UsageReport(data=data, total=total)


class Reports(AdminOps):
    @store_errors_unavailable
    async def org_usage(
        self, group_by: str = "key", *, start: str | None = None, end: str | None = None
    ) -> Listing[OrgUsageRow]:
        """Org-wide usage per day and key, team or model, with the metrics that occurred."""
        if group_by not in GROUPS:
            raise InvalidRequest("group_by must be key, team or model.", param="group_by")
        per_day = await self.store.rollup_days(self.store.org_rollup, usage_days(start, end, self.now()))
        rows: dict[tuple[str, str], OrgUsageRow] = {}
        for day, fields in per_day.items():
            for field, value in fields.items():
                scope, _, metric = field.rpartition("|")
                kind, _, ident = scope.partition(":")
                if kind != group_by or metric not in METRICS:
                    continue
                row = rows.setdefault((day, ident), {"day": day, group_by: ident})
                name = METRICS[metric]
                count = row.get(name, 0)
                assert isinstance(count, int)
                row[name] = count + value
        return Listing(data=[rows[k] for k in sorted(rows)])

    @store_errors_unavailable
    async def team_usage(self, tid: str, *, start: str | None = None, end: str | None = None) -> UsageReport:
        days = usage_days(start, end, self.now())
        per_day = await self.store.rollup_days(lambda d: self.store.rollup(f"t:{tid}", d), days)
        return usage_report(per_day, f"t:{tid}|")

    @store_errors_unavailable
    async def audit_log(self, limit: int = 100) -> Listing[AuditEntry]:
        """The newest ``limit`` admin mutations, newest first."""
        entries = await self.store.read_audit(limit)
        return Listing(data=[AuditEntry(id=i, **e) for i, e in entries])

    @store_errors_unavailable
    async def self_view(self, caller: Caller) -> SelfView:
        """What the key of ``caller`` may read of itself (never another key)."""
        key, team = caller.key, caller.team
        spend = await self.store.spend_of(key.root, "key", key.id, self.now())
        team_view: SelfTeam | None = None
        if team is not None:
            team_spend = await self.store.spend_of(key.root, "team", team.id, self.now())
            team_view = SelfTeam(team.id, team.limits, budgets_left(team.budgets, team_spend))
        return SelfView(
            id=key.id,
            alias=key.alias,
            team_id=key.team_id,
            models=key.models,
            limits=key.limits,
            budgets=key.budgets,
            expires_at=key.expires_at,
            status=key.status,
            created_at=key.created_at,
            masked=key.masked,
            version=key.version,
            source=key.source,
            spend_usd={w: v / 1e9 for w, v in spend.items()},
            spend_nusd=spend,
            budgets_remaining_usd=budgets_left(key.budgets, spend),
            team=UNSET if team_view is None else team_view,
        )
