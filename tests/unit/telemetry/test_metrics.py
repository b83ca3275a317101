"""What one answered request, its attempts and its usage leave in the registry."""

from __future__ import annotations

from time import perf_counter

from gateway.telemetry.metrics import Metrics
from gateway.upstream.failover import AttemptRecord, Trace

ROUTE = "/v1/chat/completions"
MODEL = "gpt-4o-mini"


def _metrics() -> Metrics:
    return Metrics([MODEL], ["openai"])


def _sample(m: Metrics, name: str, **labels: str) -> float | None:
    return m.registry.get_sample_value(name, labels)


def _trace() -> Trace:
    trace = Trace()
    trace.attempts += [
        AttemptRecord(
            provider="openai", deployment=0, upstream_model=MODEL, number=1, upstream_ms=300.0, kind="timeout"
        ),
        AttemptRecord(provider="elsewhere", deployment=1, upstream_model=MODEL, number=1, upstream_ms=100.0),
    ]
    trace.upstream_s, trace.backoff_s = 0.4, 0.05
    return trace


def test_an_answer_counts_its_request_duration_overhead_and_attempts() -> None:
    m = _metrics()
    m.finished(
        route=ROUTE, model=MODEL, status=200, error_type="", started=perf_counter() - 0.5, trace=_trace()
    )
    assert _sample(m, "gw_requests_total", route=ROUTE, model=MODEL, status_class="2xx", error_type="") == 1
    duration = {"gen_ai_operation_name": "chat", "gen_ai_request_model": MODEL, "error_type": ""}
    assert _sample(m, "gen_ai_server_request_duration_seconds_bucket", **duration, le="0.32") == 0
    assert _sample(m, "gen_ai_server_request_duration_seconds_bucket", **duration, le="0.64") == 1
    # 0.5 s in all, 0.45 s of it upstream and in backoff: the gateway's own 0.05 s and a little.
    assert _sample(m, "gw_overhead_seconds_bucket", route=ROUTE, le="0.05") == 0
    assert _sample(m, "gw_overhead_seconds_bucket", route=ROUTE, le="0.1") == 1
    failed = {"gen_ai_provider_name": "openai", "gen_ai_request_model": MODEL, "error_type": "upstream"}
    assert _sample(m, "gen_ai_client_operation_duration_seconds_sum", **failed) == 0.3
    other = {"gen_ai_provider_name": "other", "gen_ai_request_model": MODEL, "error_type": ""}
    assert _sample(m, "gen_ai_client_operation_duration_seconds_sum", **other) == 0.1
    # Not streamed: no time-to-first-token series at all.
    assert b"gen_ai_server_time_to_first_token_seconds_count" not in m.exposition()


def test_answers_of_one_kind_share_their_series_and_unknown_labels_become_other() -> None:
    m = _metrics()
    for route, model, status, error_type in [
        (ROUTE, MODEL, 200, ""),
        (ROUTE, MODEL, 204, ""),
        ("/v1/unknown", "junk", 503, "something new"),
        ("/v1/elsewhere", None, 599, "upstream"),
    ]:
        m.request(
            route=route,
            model=model,
            status=status,
            error_type=error_type,
            duration_s=0.1,
            overhead_s=0.001,
            ttft_s=0.05,
        )
    assert _sample(m, "gw_requests_total", route=ROUTE, model=MODEL, status_class="2xx", error_type="") == 2
    assert (
        _sample(
            m, "gw_requests_total", route="other", model="other", status_class="5xx", error_type="upstream"
        )
        == 2
    )
    ttft = {"gen_ai_operation_name": "chat", "gen_ai_request_model": MODEL}
    assert _sample(m, "gen_ai_server_time_to_first_token_seconds_count", **ttft) == 2


def test_usage_counts_the_token_kinds_that_occurred_and_the_cost() -> None:
    m = _metrics()
    tokens = {"input": 1200, "cache_read": 0, "output": 300, "reasoning": 0}
    m.usage(provider="openai", model=MODEL, tokens=tokens, cost_nusd=0, estimated=False)
    labels = {"provider": "openai", "model": MODEL}
    exposed = m.exposition()
    assert b'type="cache_read"' not in exposed and b"gw_cost_usd_total{" not in exposed
    m.usage(provider="openai", model=MODEL, tokens=tokens, cost_nusd=1_500_000_000, estimated=True)
    assert _sample(m, "gw_tokens_total", type="input", **labels) == 2400
    assert _sample(m, "gw_tokens_total", type="output", **labels) == 600
    assert _sample(m, "gw_tokens_total", type="cache_read", **labels) is None
    assert _sample(m, "gw_cost_usd_total", **labels) == 1.5
    assert _sample(m, "gw_usage_estimated_total") == 1
    usage = {"gen_ai_provider_name": "openai", "gen_ai_request_model": MODEL}
    assert (
        _sample(m, "gen_ai_client_token_usage_bucket", gen_ai_token_type="input", **usage, le="1024.0") == 0
    )
    assert (
        _sample(m, "gen_ai_client_token_usage_bucket", gen_ai_token_type="input", **usage, le="4096.0") == 2
    )
    assert _sample(m, "gen_ai_client_token_usage_sum", gen_ai_token_type="output", **usage) == 600


def test_requests_in_flight_per_route_and_other() -> None:
    m = _metrics()
    m.in_flight(ROUTE).inc()
    m.in_flight("/v1/unknown").inc()
    m.in_flight("/v1/unknown/too").inc()
    m.in_flight(ROUTE).dec()
    assert _sample(m, "gw_inflight_requests", route=ROUTE) == 0
    assert _sample(m, "gw_inflight_requests", route="other") == 2
    assert _sample(m, "gw_inflight_requests", route="/v1/responses") == 0
