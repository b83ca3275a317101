"""What the admin operations take and give: msgspec Structs that encode to the admin API's
JSON as they are (field order included)."""

from __future__ import annotations

import math
from typing import Generic, TypeVar

import msgspec
from msgspec import UNSET, UnsetType

from gateway.config import Budget, Limits
from gateway.errors.client import InvalidRequest
from gateway.policy.records import KeyRecord, Status, TeamRecord

T = TypeVar("T")

# -- bounds --------------------------------------------------------------------------------------
# Upper bounds of what an admin may set: far above any real use, low enough that every value
# stays exact in Redis's numbers and in nano-USD (64-bit) and that no setting means "forever".
MAX_LIMIT = 10**12  # rpm, tpm, max_concurrency
MAX_BUDGET_USD = 1e9  # nano-USD: 1e18 < 2**63
MAX_BUDGETS = 16
MAX_MODELS = 1000
MAX_METADATA = 64  # pairs
MAX_TEXT = 4096  # an alias, a team name, a model pattern, a metadata key or value
MAX_TIMESTAMP = 253402300799.0  # 9999-12-31T23:59:59Z
MAX_GRACE_SECONDS = 30 * 86400


def _refuse(param: str, rule: str) -> InvalidRequest:
    return InvalidRequest(f"Invalid '{param}': {rule}.", param=param, code="invalid_value")


def _text(param: str, value: str | None) -> None:
    if value is not None and len(value) > MAX_TEXT:
        raise _refuse(param, f"at most {MAX_TEXT} characters")


def check_bounds(
    *,
    limits: Limits,
    budgets: tuple[Budget, ...],
    models: tuple[str, ...] | None,
    metadata: dict[str, str],
    expires_at: float | None = None,
) -> None:
    """Refuse (400, naming the field) a setting beyond the bounds above."""
    for name in ("rpm", "tpm", "max_concurrency"):
        value = getattr(limits, name)
        if value is not None and value > MAX_LIMIT:
            raise _refuse(f"limits.{name}", f"at most {MAX_LIMIT}")
    if len(budgets) > MAX_BUDGETS:
        raise _refuse("budgets", f"at most {MAX_BUDGETS} budgets")
    for i, budget in enumerate(budgets):
        if not math.isfinite(budget.limit_usd) or budget.limit_usd > MAX_BUDGET_USD:
            raise _refuse(f"budgets[{i}].limit_usd", f"at most {MAX_BUDGET_USD:.0f}")
    if models is not None:
        if len(models) > MAX_MODELS:
            raise _refuse("models", f"at most {MAX_MODELS} entries")
        for i, model in enumerate(models):
            _text(f"models[{i}]", model)
    if len(metadata) > MAX_METADATA:
        raise _refuse("metadata", f"at most {MAX_METADATA} pairs")
    for key, value in metadata.items():
        _text("metadata", key)
        _text(f"metadata.{key[:64]}", value)
    if expires_at is not None and not 0 <= expires_at <= MAX_TIMESTAMP:
        raise _refuse("expires_at", f"a Unix time from 0 to {MAX_TIMESTAMP:.0f}")


def check_key(record: KeyRecord | KeyCreate) -> None:
    _text("alias", record.alias)
    check_bounds(
        limits=record.limits,
        budgets=record.budgets,
        models=record.models,
        metadata=record.metadata,
        expires_at=record.expires_at,
    )


def check_team(record: TeamRecord | TeamCreate) -> None:
    _text("id", record.id)
    _text("name", record.name)
    check_bounds(limits=record.limits, budgets=record.budgets, models=record.models, metadata=record.metadata)


# -- inputs --------------------------------------------------------------------------------------


class KeyCreate(msgspec.Struct, forbid_unknown_fields=True):
    alias: str | None = None
    team_id: str | None = None
    models: tuple[str, ...] | None = None
    limits: Limits = Limits()
    budgets: tuple[Budget, ...] = ()
    expires_at: float | None = None
    metadata: dict[str, str] = {}

    def __post_init__(self) -> None:
        check_key(self)


class TeamCreate(msgspec.Struct, forbid_unknown_fields=True):
    id: str
    name: str | None = None
    models: tuple[str, ...] | None = None
    limits: Limits = Limits()
    budgets: tuple[Budget, ...] = ()
    metadata: dict[str, str] = {}

    def __post_init__(self) -> None:
        check_team(self)


class Rotate(msgspec.Struct, forbid_unknown_fields=True):
    # None: the configured default_rotation_grace_seconds.
    grace_seconds: float | None = None

    def __post_init__(self) -> None:
        grace = self.grace_seconds
        if grace is not None and not grace <= MAX_GRACE_SECONDS:  # NaN fails too
            raise _refuse("grace_seconds", f"at most {MAX_GRACE_SECONDS} seconds")


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


class UsageRow(UsageTotals, kw_only=True):
    """One day's and one model's totals (its counters first, then ``day`` and ``model``)."""

    day: str
    model: str


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
