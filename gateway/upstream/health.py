"""The metrics of upstream health: circuit breakers, dropped stream events, stream rescues.

One :class:`HealthMetrics` per app, registered on the app's Prometheus registry (labels are
configured provider and upstream model names, so they stay bounded). :class:`NoMetrics` is what
a router without a registry (tests, tools) records into.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from gateway.telemetry.series import Counter, Gauge

STATE_VALUES = {"closed": 0, "open": 1, "half_open": 2}


class NoMetrics:
    """Records nothing."""

    def malformed(self, provider: str) -> None:
        return None

    def rescue(self, provider: str, result: str) -> None:
        return None

    def breaker_state(self, provider: str, model: str, state: str) -> None:
        return None

    def breaker_opened(self, provider: str, model: str) -> None:
        return None

    def breaker_probe(self, provider: str, model: str, result: str) -> None:
        return None

    def breaker_skip(self, provider: str, model: str) -> None:
        return None

    def breaker_store(self, *, degraded: bool) -> None:
        return None


class HealthMetrics(NoMetrics):
    def __init__(self, registry: CollectorRegistry) -> None:
        r = registry
        deployment = ("provider", "model")
        self._malformed = Counter(
            r,
            "gw_stream_malformed_events",
            "Malformed upstream stream events dropped after the commit point.",
            ("provider",),
        )
        self._rescues = Counter(
            r,
            "gw_stream_rescues",
            "Broken committed streams: continued elsewhere (continued), not continued (no_candidate, "
            "not_continuable, refused, failed).",
            ("provider", "result"),
        )
        self._state = Gauge(
            r,
            "gw_breaker_state",
            "Circuit breaker per deployment as this process sees it: 0 closed, 1 open, 2 half-open.",
            deployment,
        )
        self._opens = Counter(r, "gw_breaker_opens", "Circuit breakers this process opened.", deployment)
        self._probes = Counter(
            r,
            "gw_breaker_probes",
            "Half-open probes this process sent, by outcome (started, success, failure).",
            (*deployment, "result"),
        )
        self._skips = Counter(
            r, "gw_breaker_skips", "Deployments routed around because their breaker was open.", deployment
        )
        self._store_errors = Counter(
            r, "gw_breaker_store_errors", "Breaker reads or writes that failed to reach Redis.", ()
        )
        self._degraded = Gauge(
            r,
            "gw_breaker_degraded",
            "1 while breakers run on per-process state because Redis is unreachable.",
            (),
        )

    def malformed(self, provider: str) -> None:
        self._malformed.labels(provider).inc()

    def rescue(self, provider: str, result: str) -> None:
        self._rescues.labels(provider, result).inc()

    def breaker_state(self, provider: str, model: str, state: str) -> None:
        self._state.labels(provider, model).set(STATE_VALUES[state])

    def breaker_opened(self, provider: str, model: str) -> None:
        self._opens.labels(provider, model).inc()

    def breaker_probe(self, provider: str, model: str, result: str) -> None:
        self._probes.labels(provider, model, result).inc()

    def breaker_skip(self, provider: str, model: str) -> None:
        self._skips.labels(provider, model).inc()

    def breaker_store(self, *, degraded: bool) -> None:
        if degraded:
            self._store_errors.inc()
        self._degraded.set(1 if degraded else 0)
