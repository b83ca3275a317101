"""Upstream providers: one adapter per dialect behind one small interface, and routing."""

from gateway.providers.routing import Deployment, Router
from gateway.providers.upstream import Upstream, build_upstreams

__all__ = ["Deployment", "Router", "Upstream", "build_upstreams"]
