"""``/admin/v1/usage`` and ``/admin/v1/audit`` (admin keys), ``/admin/v1/self`` (a key reads
its own limits and remaining budget, never another key's)."""

from __future__ import annotations

from typing import Any

from litestar import Request, get

from gateway.api.admin.controller import (
    AdminController,
    Policy,
    PolicyController,
    Reporting,
    limit_param,
    presented,
)
from gateway.policy.admin import AuditEntry, Listing, SelfView
from gateway.policy.admin.types import OrgUsageRow


class ReportsController(AdminController):
    path = "/admin/v1"

    @get("/usage")
    async def org_usage(self, request: Request[Any, Any, Any], reports: Reporting) -> Listing[OrgUsageRow]:
        q = request.query_params
        return await reports.org_usage(str(q.get("group_by") or "key"), start=q.get("from"), end=q.get("to"))

    @get("/audit")
    async def audit_log(self, request: Request[Any, Any, Any], reports: Reporting) -> Listing[AuditEntry]:
        return await reports.audit_log(limit_param(request))


class SelfController(PolicyController):
    """Inference keys, not admin keys: the caller's own view."""

    path = "/admin/v1/self"

    @get("/")
    async def read_self(
        self,
        request: Request[Any, Any, Any],
        policy: Policy,
        reports: Reporting,
    ) -> SelfView:
        caller = await policy.authenticate(presented(request), fresh=True)
        return await reports.self_view(caller)
