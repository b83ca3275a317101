"""Admin operations on teams: a team's limits, budgets and allow-list apply to all its keys
together, and blocking it refuses every one of them. Teams from the config file are listed
and read here but changed in the file (409 ``config_managed``)."""

from __future__ import annotations

from typing import Any

import msgspec

from gateway.errors.client import Conflict, InvalidRequest, NotFound
from gateway.policy.admin.base import AdminOps, checked_patch, patched, store_errors_unavailable
from gateway.policy.admin.types import Deleted, Page, TeamCreate, TeamView, check_team
from gateway.policy.records import TeamRecord

TEAM_FIELDS = frozenset({"name", "models", "limits", "budgets", "metadata", "status"})
# A team id is part of Redis key names and rollup fields: none of their separators.
_ID_FORBIDDEN = "{}:| "


class TeamAdmin(AdminOps):
    async def find(self, tid: str) -> TeamRecord:
        """The admin-created team (404, or 409 for a team from the config file)."""
        if tid in self.policy.config_teams:
            raise Conflict("This team comes from the config file; change it there.", code="config_managed")
        team = await self.store.load_team(tid)
        if team is None:
            raise NotFound(f"No team with id '{tid}'.", code="team_not_found")
        return team

    @store_errors_unavailable
    async def create(self, spec: TeamCreate, *, actor: str) -> TeamRecord:
        if not spec.id or len(spec.id) > 64 or any(c in spec.id for c in _ID_FORBIDDEN):
            raise InvalidRequest("id must be 1-64 characters without {, }, :, | or spaces.", param="id")
        if spec.id in self.policy.config_teams or await self.store.load_team(spec.id) is not None:
            raise Conflict(f"A team with id '{spec.id}' exists.", param="id", code="team_exists")
        record = TeamRecord(**msgspec.structs.asdict(spec), created_at=self.now())
        await self.store.save_team(record)
        await self.audit(actor, "team.create", spec.id, msgspec.to_builtins(spec))
        return record

    @store_errors_unavailable
    async def listing(self, *, limit: int = 100, cursor: str | None = None) -> Page[TeamRecord]:
        """Teams in creation order; the first page (no cursor) starts with the config's teams."""
        ids = await self.store.list_ids("teams", after=cursor, limit=limit)
        data = list(self.policy.config_teams.values()) if cursor is None else []
        for tid in ids:
            team = await self.store.load_team(tid)
            if team is not None:
                data.append(team)
        return Page(data=data, next_cursor=ids[-1] if len(ids) == limit else None)

    @store_errors_unavailable
    async def read(self, tid: str) -> TeamView:
        team = self.policy.config_teams.get(tid) or await self.find(tid)
        spend = await self.store.spend_of(f"t:{tid}", "team", tid, self.now())
        return TeamView(
            **msgspec.structs.asdict(team), spend_nusd=spend, spend_usd={w: v / 1e9 for w, v in spend.items()}
        )

    @store_errors_unavailable
    async def update(self, tid: str, changes: object, *, actor: str) -> TeamRecord:
        """Apply a JSON merge patch of :data:`TEAM_FIELDS`; a new version applies at once."""
        patch: dict[str, Any] = checked_patch(changes, TEAM_FIELDS)
        team = await self.find(tid)
        updated = msgspec.structs.replace(patched(team, patch), version=team.version + 1)
        check_team(updated)
        await self.store.save_team(updated)
        self.policy.invalidate(team=tid)
        await self.audit(actor, "team.update", tid, patch)
        return updated

    @store_errors_unavailable
    async def delete(self, tid: str, *, actor: str) -> Deleted:
        """Delete an empty team (409 ``team_not_empty`` while it has keys)."""
        await self.find(tid)
        if await self.store.key_ids_of_team(tid):
            raise Conflict("The team still has keys; delete or move them first.", code="team_not_empty")
        await self.store.delete_team(tid)
        self.policy.invalidate(team=tid)
        await self.audit(actor, "team.delete", tid)
        return Deleted(tid, "gateway.team.deleted")
