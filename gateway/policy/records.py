"""What the policy knows about keys and teams (stored in Redis as msgspec JSON)."""

from __future__ import annotations

from typing import Literal

import msgspec

from gateway.config import Budget, Limits

Status = Literal["active", "blocked"]


class KeyRecord(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    alias: str | None = None
    team_id: str | None = None
    # None: every model; []: none; entries may end in `*` (prefix match).
    models: tuple[str, ...] | None = None
    limits: Limits = Limits()
    budgets: tuple[Budget, ...] = ()
    expires_at: float | None = None
    status: Status = "active"
    metadata: dict[str, str] = {}
    created_at: float = 0.0
    created_by: str = ""
    masked: str = ""
    version: int = 1
    # "admin": created through the admin API (in Redis); "config": from the config file.
    source: Literal["admin", "config"] = "admin"

    @property
    def root(self) -> str:
        """The enforcement root: the hash tag of all per-request state of this key."""
        return f"t:{self.team_id}" if self.team_id else f"k:{self.id}"

    def state(self) -> str:
        return f"{self.status}:{self.version}"


class TeamRecord(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    name: str | None = None
    models: tuple[str, ...] | None = None
    limits: Limits = Limits()
    budgets: tuple[Budget, ...] = ()
    status: Status = "active"
    metadata: dict[str, str] = {}
    created_at: float = 0.0
    version: int = 1
    source: Literal["admin", "config"] = "admin"

    def state(self) -> str:
        return f"{self.status}:{self.version}"


def model_allowed(patterns: tuple[str, ...] | None, model: str) -> bool:
    if patterns is None:
        return True
    return any(p == model or (p.endswith("*") and model.startswith(p[:-1])) for p in patterns)


def has_limits(limits: Limits, budgets: tuple[Budget, ...]) -> bool:
    return bool(limits.rpm or limits.tpm or limits.max_concurrency or budgets)
