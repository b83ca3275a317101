"""Upstream providers: one adapter per dialect behind one small interface, and routing."""

from gateway.upstream.provider import Upstream, build_upstreams
from gateway.upstream.router import Deployment, Router

__all__ = ["Deployment", "Router", "Upstream", "build_upstreams"]
