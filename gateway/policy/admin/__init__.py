"""The admin operations on keys, teams, usage and the audit trail, without HTTP: plain async
methods taking the Structs of ``types`` and returning them, refusing with GatewayErrors (a
store failure is a 503 ``policy_store_unavailable``). ``actor`` is the admin key's name, as
the audit trail records it."""

from gateway.policy.admin.access import admin_name
from gateway.policy.admin.keys import KEY_FIELDS, KeyAdmin
from gateway.policy.admin.reports import Reports, usage_days
from gateway.policy.admin.teams import TEAM_FIELDS, TeamAdmin
from gateway.policy.admin.types import (
    AuditEntry,
    BudgetLeft,
    Deleted,
    KeyCreate,
    KeyQuery,
    KeyView,
    Listing,
    Page,
    ResetSpend,
    Rotate,
    SelfView,
    TeamCreate,
    TeamView,
    UsageReport,
)

__all__ = [
    "KEY_FIELDS",
    "TEAM_FIELDS",
    "AuditEntry",
    "BudgetLeft",
    "Deleted",
    "KeyAdmin",
    "KeyCreate",
    "KeyQuery",
    "KeyView",
    "Listing",
    "Page",
    "Reports",
    "ResetSpend",
    "Rotate",
    "SelfView",
    "TeamAdmin",
    "TeamCreate",
    "TeamView",
    "UsageReport",
    "admin_name",
    "usage_days",
]
