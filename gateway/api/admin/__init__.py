"""The management plane over HTTP: ``/admin/v1`` (keys, teams, usage, audit) for the config's
admin keys, and ``GET /admin/v1/self`` for an inference key reading its own limits. The
operations themselves live in :mod:`gateway.policy.admin`; these controllers only read the
request and hand over typed inputs."""

from gateway.api.admin.keys import KeysController
from gateway.api.admin.reports import ReportsController, SelfController
from gateway.api.admin.teams import TeamsController

ROUTES = [KeysController, TeamsController, ReportsController, SelfController]

__all__ = ["ROUTES", "KeysController", "ReportsController", "SelfController", "TeamsController"]
