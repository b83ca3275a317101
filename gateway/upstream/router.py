"""Routing: a public model name to the deployments that serve it, in the order to try them.

Several ``[[models]]`` entries with one name are deployments of that model, tried in order;
each entry's ``fallbacks`` name other public models tried after all deployments failed. The
router also holds what routing consults about health: the deployments' circuit breakers
(:mod:`gateway.upstream.breaker`) and the health metrics streams report into.
"""

from __future__ import annotations

from collections.abc import Mapping

import msgspec

from gateway.config import ModelSettings, Settings, UpstreamApi, upstream_api
from gateway.upstream.breaker import Breakers
from gateway.upstream.health import NoMetrics
from gateway.upstream.provider import Upstream


class Deployment(msgspec.Struct, frozen=True):
    public_model: str
    upstream_model: str
    api: UpstreamApi
    provider: str
    index: int  # position among the deployments of its public model
    settings: ModelSettings


class Router:
    def __init__(
        self,
        settings: Settings,
        upstreams: Mapping[str, Upstream],
        *,
        breakers: Breakers | None = None,
        health: NoMetrics | None = None,
    ) -> None:
        self.upstreams = upstreams
        # Without breakers given (unit tests, tools), none: every deployment is always tried.
        self.breakers = breakers if breakers is not None else Breakers.none()
        self.health = health if health is not None else NoMetrics()
        by_name: dict[str, list[Deployment]] = {}
        fallbacks: dict[str, list[str]] = {}
        for m in settings.models:
            provider = settings.provider(m.provider)
            entries = by_name.setdefault(m.name, [])
            entries.append(
                Deployment(
                    public_model=m.name,
                    upstream_model=m.target_model,
                    api=upstream_api(m, provider),
                    provider=m.provider,
                    index=len(entries),
                    settings=m,
                )
            )
            for fb in m.fallbacks:
                if fb not in fallbacks.setdefault(m.name, []):
                    fallbacks[m.name].append(fb)
        self._deployments = {k: tuple(v) for k, v in by_name.items()}
        self._fallbacks = {k: tuple(v) for k, v in fallbacks.items()}
        self.models = tuple(self._deployments)

    def knows(self, model: str) -> bool:
        return model in self._deployments

    def deployments(self, model: str) -> tuple[Deployment, ...]:
        return self._deployments.get(model, ())

    def plan(self, model: str) -> list[Deployment]:
        """Every deployment to try for ``model``: its own, then its fallbacks' (no repeats)."""
        plan: list[Deployment] = []
        seen: set[str] = set()
        queue = [model]
        while queue:
            name = queue.pop(0)
            if name in seen:
                continue
            seen.add(name)
            plan.extend(self._deployments.get(name, ()))
            queue.extend(self._fallbacks.get(name, ()))
        return plan

    def upstream(self, deployment: Deployment) -> Upstream:
        return self.upstreams[deployment.provider]

    async def start(self) -> None:
        """Start the breakers' background view (the app's lifespan)."""
        await self.breakers.start()

    async def stop(self) -> None:
        await self.breakers.stop()
