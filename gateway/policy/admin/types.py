"""What the admin operations take and give: msgspec Structs that encode to the admin API's
JSON as they are (field order included)."""

from __future__ import annotations

from typing import Generic, TypeVar

import msgspec
from msgspec import UNSET, UnsetType

from gateway.config import Budget, Limits
from gateway.policy.records import KeyRecord, Status, TeamRecord

T = TypeVar("T")

# -- inputs --------------------------------------------------------------------------------------


class KeyCreate(msgspec.Struct, forbid_unknown_fields=True):
    alias: str | None = None
    team_id: str | None = None
    models: tuple[str, ...] | None = None
    limits: Limits = Limits()
    budgets: tuple[Budget, ...] = ()
    expires_at: float | None = None
    metadata: dict[str, str] = {}


class TeamCreate(msgspec.Struct, forbid_unknown_fields=True):
    id: str
    name: str | None = None
    models: tuple[str, ...] | None = None
    limits: Limits = Limits()
    budgets: tuple[Budget, ...] = ()
    metadata: dict[str, str] = {}


class Rotate(msgspec.Struct, forbid_unknown_fields=True):
    # None: the configured default_rotation_grace_seconds.
    grace_seconds: float | None = None


class ResetSpend(msgspec.Struct, forbid_unknown_fields=True):
    window: str = "total"


class KeyQuery(msgspec.Struct, frozen=True, kw_only=True):
    """A page of keys in creation order, after the ``cursor`` id; empty filters match all."""

    limit: int = 100
    cursor: str | None = None
    team_id: str | None = None
    status: str | None = None
    alias: str | None = None


# -- results -------------------------------------------------------------------------------------


class BudgetLeft(msgspec.Struct, frozen=True):
    window: str
    limit_usd: float
    remaining_usd: float


class KeyView(KeyRecord, frozen=True, kw_only=True):
    """A key as the admin API shows it: the record, its spend per window and what is left of
    each budget; ``key`` (the secret) only on creation and rotation."""

    object: str = "gateway.key"
    spend_usd: dict[str, float]
    spend_nusd: dict[str, int]
    budgets_remaining_usd: list[BudgetLeft]
    key: str | UnsetType = UNSET


class SelfTeam(msgspec.Struct, frozen=True):
    id: str
    limits: Limits
    budgets_remaining_usd: list[BudgetLeft]


class SelfView(msgspec.Struct, frozen=True, kw_only=True):
    """What a key may read of itself: its record without ``metadata`` and ``created_by``,
    its spend, and its team's limits and remaining budgets. Listed field by field, so a field
    added to the record is not shown to the key unless added here."""

    id: str
    alias: str | None
    team_id: str | None
    models: tuple[str, ...] | None
    limits: Limits
    budgets: tuple[Budget, ...]
    expires_at: float | None
    status: Status
    created_at: float
    masked: str
    version: int
    source: str
    object: str = "gateway.key"
    spend_usd: dict[str, float]
    spend_nusd: dict[str, int]
    budgets_remaining_usd: list[BudgetLeft]
    team: SelfTeam | UnsetType = UNSET


class TeamView(TeamRecord, frozen=True, kw_only=True):
    spend_nusd: dict[str, int]
    spend_usd: dict[str, float]


class Page(msgspec.Struct, Generic[T], kw_only=True):
    object: str = "list"
    data: list[T]
    next_cursor: str | None


class Listing(msgspec.Struct, Generic[T], kw_only=True):
    object: str = "list"
    data: list[T]


class Deleted(msgspec.Struct, frozen=True):
    id: str
    object: str
    deleted: bool = True


class UsageTotals(msgspec.Struct, kw_only=True):
    requests: int = 0
    input_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0
    cost_nusd: int = 0
    errors: int = 0
    cost_usd: float = 0.0


class UsageRow(msgspec.Struct, kw_only=True):
    day: str
    model: str
    requests: int = 0
    input_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0
    cost_nusd: int = 0
    errors: int = 0
    cost_usd: float = 0.0


class UsageReport(msgspec.Struct, kw_only=True):
    """One key's or team's usage per day and model, and the sum."""

    object: str = "list"
    data: list[UsageRow]
    total: UsageTotals


class AuditEntry(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    ts: str = ""
    actor: str = ""
    action: str = ""
    target: str = ""
    detail: str = ""  # the change as JSON text ("" for none)


# Org-wide usage rows carry the grouping as a field named after it ("key", "team" or
# "model") and only the metrics that occurred: plain mappings.
OrgUsageRow = dict[str, str | int]


def key_view(record: KeyRecord, spend: dict[str, int], secret: str | None = None) -> KeyView:
    return KeyView(
        **msgspec.structs.asdict(record),
        spend_usd={w: v / 1e9 for w, v in spend.items()},
        spend_nusd=spend,
        budgets_remaining_usd=budgets_left(record.budgets, spend),
        key=UNSET if secret is None else secret,
    )


def budgets_left(budgets: tuple[Budget, ...], spend: dict[str, int]) -> list[BudgetLeft]:
    return [BudgetLeft(b.window, b.limit_usd, max(0.0, b.limit_usd - spend[b.window] / 1e9)) for b in budgets]
