"""Prometheus metrics, one registry per app (built in the lifespan, never module-level).

Names follow the OpenTelemetry GenAI conventions (v1.41-era names, Prometheus spelling) for the
``gen_ai_*`` families and ``gw_*`` for the gateway's own. Every label is bounded: models are the
configured public/upstream names, anything else becomes ``other``; no key, team or user ids.
Children are bound once per label set and cached, so an update costs well under a microsecond
plus one dict lookup.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

OTHER = "other"
DURATION_BUCKETS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)
TTFT_BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
TOKEN_BUCKETS = tuple(float(4**i) for i in range(14))  # 1 .. 67,108,864
OVERHEAD_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5)
ERROR_TYPES = frozenset(
    {
        "",
        "rate_limit",
        "insufficient_quota",
        "model_not_allowed",
        "authentication",
        "invalid_request",
        "store_unavailable",
        "upstream",
        "client_disconnect",
        "timeout",
        "internal",
    }
)
# The rest of the OpenAI surface (embeddings, the simple routes, files and batches).
OPENAI_ROUTES = (
    "/v1/embeddings",
    "/v1/completions",
    "/v1/moderations",
    "/v1/images/generations",
    "/v1/images/edits",
    "/v1/images/variations",
    "/v1/audio/transcriptions",
    "/v1/audio/translations",
    "/v1/audio/speech",
    "/v1/files",
    "/v1/files/{file_id}",
    "/v1/files/{file_id}/content",
    "/v1/batches",
    "/v1/batches/{batch_id}",
    "/v1/batches/{batch_id}/cancel",
)
# The Anthropic-compatible routes.
ANTHROPIC_ROUTES = ("/v1/messages", "/v1/messages/count_tokens")
ROUTES = frozenset({"/v1/chat/completions", "/v1/responses", "/v1/chats", *OPENAI_ROUTES, *ANTHROPIC_ROUTES})
# The GenAI operation name of a route's requests (metrics and attempt spans): "chat" unless
# listed. OpenTelemetry's own names where one applies, else the route's own.
OPERATIONS = {
    "/v1/embeddings": "embeddings",
    "/v1/completions": "text_completion",
    "/v1/moderations": "moderation",
    "/v1/images/generations": "image_generation",
    "/v1/images/edits": "image_edit",
    "/v1/images/variations": "image_variation",
    "/v1/audio/transcriptions": "transcription",
    "/v1/audio/translations": "translation",
    "/v1/audio/speech": "speech",
    **{route: "files" for route in OPENAI_ROUTES if route.startswith("/v1/files")},
    **{route: "batches" for route in OPENAI_ROUTES if route.startswith("/v1/batches")},
}


def operation_of(route: str) -> str:
    """The GenAI operation name of ``route``'s requests."""
    return OPERATIONS.get(route, "chat")


class Metrics:
    def __init__(self, models: Iterable[str], providers: Iterable[str]) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self._models = frozenset(models)
        self._providers = frozenset(providers)
        r = self.registry
        self.server_duration = Histogram(
            "gen_ai_server_request_duration_seconds",
            "Time from request to the end of the response, at the gateway's edge.",
            ["gen_ai_operation_name", "gen_ai_request_model", "error_type"],
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self.server_ttft = Histogram(
            "gen_ai_server_time_to_first_token_seconds",
            "Time to the first content byte sent to a streaming client.",
            ["gen_ai_operation_name", "gen_ai_request_model"],
            buckets=TTFT_BUCKETS,
            registry=r,
        )
        self.client_duration = Histogram(
            "gen_ai_client_operation_duration_seconds",
            "Duration of one upstream attempt.",
            ["gen_ai_provider_name", "gen_ai_request_model", "error_type"],
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self.token_usage = Histogram(
            "gen_ai_client_token_usage",
            "Tokens per request, by type.",
            ["gen_ai_token_type", "gen_ai_provider_name", "gen_ai_request_model"],
            buckets=TOKEN_BUCKETS,
            registry=r,
        )
        self.tokens = Counter("gw_tokens", "Tokens, by type.", ["type", "provider", "model"], registry=r)
        self.cost = Counter(
            "gw_cost_usd", "Cost in USD from the price table.", ["provider", "model"], registry=r
        )
        self.requests = Counter(
            "gw_requests", "Requests answered.", ["route", "model", "status_class", "error_type"], registry=r
        )
        self.overhead = Histogram(
            "gw_overhead_seconds",
            "Gateway time per request, excluding upstream and backoff time.",
            ["route"],
            buckets=OVERHEAD_BUCKETS,
            registry=r,
        )
        self.decisions = Counter(
            "gw_policy_decisions", "Policy decisions.", ["limit", "scope", "result"], registry=r
        )
        self.store_errors = Counter(
            "gw_policy_store_errors",
            "Policy store (Redis) errors, by what was decided.",
            ["decision"],
            registry=r,
        )
        self.usage_estimated = Counter(
            "gw_usage_estimated", "Requests whose usage was estimated.", registry=r
        )
        self.usage_write_failures = Counter(
            "gw_usage_write_failures", "Usage events that could not be written.", registry=r
        )
        self.settle_batch = Histogram(
            "gw_settlement_batch_size",
            "Requests per settlement pipeline.",
            buckets=(1, 2, 5, 10, 20, 50, 100, 200),
            registry=r,
        )
        self.inflight = Gauge("gw_inflight_requests", "Requests in flight.", ["route"], registry=r)
        self._children: dict[tuple[Any, ...], Any] = {}
        for decision in ("closed", "open"):
            self.store_errors.labels(decision)
        self._inflight = {route: self.inflight.labels(route) for route in ROUTES}

    # -- bounded labels --------------------------------------------------------------------------
    def model(self, name: str | None) -> str:
        return name if name in self._models else OTHER

    def provider(self, name: str | None) -> str:
        return name if name in self._providers else OTHER

    def _child(self, metric: Any, *labels: str) -> Any:
        key = (id(metric), *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    # -- updates -------------------------------------------------------------------------------
    def decision(self, limit: str, scope: str, result: str) -> None:
        self._child(self.decisions, limit, scope, result).inc()

    def in_flight(self, route: str) -> Any:
        """The bound ``gw_inflight_requests`` gauge of a route (``inc()`` on entry, ``dec()`` on exit)."""
        return self._inflight.get(route) or self._child(self.inflight, OTHER)

    def store_error(self, decision: str) -> None:
        self._child(self.store_errors, decision).inc()

    def request(
        self,
        *,
        route: str,
        model: str | None,
        status: int,
        error_type: str,
        duration_s: float,
        overhead_s: float,
        ttft_s: float | None,
    ) -> None:
        route = route if route in ROUTES else OTHER
        m = self.model(model)
        e = error_type if error_type in ERROR_TYPES else "upstream"
        self._child(self.requests, route, m, f"{status // 100}xx", e).inc()
        operation = operation_of(route)
        self._child(self.server_duration, operation, m, e).observe(duration_s)
        self._child(self.overhead, route).observe(overhead_s)
        if ttft_s is not None:
            self._child(self.server_ttft, operation, m).observe(ttft_s)

    def finished(
        self,
        *,
        route: str,
        model: str | None,
        status: int,
        error_type: str,
        started: float,
        trace: Any,
        ttft_s: float | None = None,
    ) -> None:
        """One answered request and its upstream attempts (``trace``: a proxy ``Trace``)."""
        total = time.perf_counter() - started
        waited = trace.upstream_s + trace.backoff_s
        self.request(
            route=route,
            model=model,
            status=status,
            error_type=error_type,
            duration_s=total,
            overhead_s=max(0.0, total - waited),
            ttft_s=ttft_s,
        )
        for attempt in trace.attempts:
            self.attempt(
                provider=attempt.provider,
                model=attempt.upstream_model,
                error_type="" if attempt.kind is None else "upstream",
                duration_s=attempt.upstream_ms / 1000,
            )

    def attempt(self, *, provider: str, model: str, error_type: str, duration_s: float) -> None:
        e = error_type if error_type in ERROR_TYPES else "upstream"
        self._child(self.client_duration, self.provider(provider), self.model(model), e).observe(duration_s)

    def usage(
        self, *, provider: str, model: str, tokens: dict[str, int], cost_nusd: int, estimated: bool
    ) -> None:
        p, m = self.provider(provider), self.model(model)
        for kind, n in tokens.items():
            if n:
                self._child(self.tokens, kind, p, m).inc(n)
        self._child(self.token_usage, "input", p, m).observe(tokens.get("input", 0))
        self._child(self.token_usage, "output", p, m).observe(tokens.get("output", 0))
        if cost_nusd:
            self._child(self.cost, p, m).inc(cost_nusd / 1e9)
        if estimated:
            self.usage_estimated.inc()

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class _Idle:
    """A gauge that counts nothing (``inc``/``dec`` of the disabled metrics)."""

    __slots__ = ()

    def inc(self, amount: float = 1) -> None:
        return None

    def dec(self, amount: float = 1) -> None:
        return None


class DisabledMetrics(Metrics):
    """``[telemetry] metrics = false``: the request path records nothing (``/metrics`` is 404).

    The registry still exists, so code that holds a metric object keeps working; only the per-request
    updates are skipped, which is what turning metrics off is for.
    """

    _IDLE = _Idle()

    def decision(self, limit: str, scope: str, result: str) -> None:
        return None

    def in_flight(self, route: str) -> Any:
        return self._IDLE

    def store_error(self, decision: str) -> None:
        return None

    def request(
        self,
        *,
        route: str,
        model: str | None,
        status: int,
        error_type: str,
        duration_s: float,
        overhead_s: float,
        ttft_s: float | None,
    ) -> None:
        return None

    def finished(
        self,
        *,
        route: str,
        model: str | None,
        status: int,
        error_type: str,
        started: float,
        trace: Any,
        ttft_s: float | None = None,
    ) -> None:
        return None

    def attempt(self, *, provider: str, model: str, error_type: str, duration_s: float) -> None:
        return None

    def usage(
        self, *, provider: str, model: str, tokens: dict[str, int], cost_nusd: int, estimated: bool
    ) -> None:
        return None
