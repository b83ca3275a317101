"""``/admin/v1/teams``: create, list, read, change, delete teams; their usage."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, delete, get, patch, post
from litestar.params import PathParameter

from gateway.api.admin.controller import (
    Actor,
    AdminController,
    Reporting,
    Teams,
    json_body,
    limit_param,
    typed_body,
)
from gateway.policy.admin import Deleted, Page, TeamCreate, TeamView, UsageReport
from gateway.policy.records import TeamRecord

TeamId = Annotated[str, PathParameter()]


class TeamsController(AdminController):
    path = "/admin/v1/teams"

    @post("/", status_code=201)
    async def create_team(self, request: Request[Any, Any, Any], teams: Teams, actor: Actor) -> TeamRecord:
        return await teams.create(await typed_body(request, TeamCreate), actor=actor)

    @get("/")
    async def list_teams(self, request: Request[Any, Any, Any], teams: Teams) -> Page[TeamRecord]:
        return await teams.listing(limit=limit_param(request), cursor=request.query_params.get("cursor"))

    @get("/{tid:str}")
    async def read_team(self, tid: TeamId, teams: Teams) -> TeamView:
        return await teams.read(tid)

    @patch("/{tid:str}")
    async def update_team(
        self, request: Request[Any, Any, Any], tid: TeamId, teams: Teams, actor: Actor
    ) -> TeamRecord:
        return await teams.update(tid, await json_body(request), actor=actor)

    @delete("/{tid:str}", status_code=200)
    async def delete_team(self, tid: TeamId, teams: Teams, actor: Actor) -> Deleted:
        return await teams.delete(tid, actor=actor)

    @get("/{tid:str}/usage")
    async def team_usage(
        self, request: Request[Any, Any, Any], tid: TeamId, reports: Reporting
    ) -> UsageReport:
        q = request.query_params
        return await reports.team_usage(tid, start=q.get("from"), end=q.get("to"))
