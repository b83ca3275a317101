"""Added latency at one connection: the same non-streaming request, one at a time, to the
upstream directly and through the gateway; the difference of their p50 and p99 is what the
gateway adds to a request when nothing queues."""

from __future__ import annotations

from dataclasses import replace

from benchmarks.load import Case, Load

# The budget: what the gateway may add at p99 over the direct upstream.
BUDGET_ADDED_P99_MS = 0.4


def one_connection_load(load: Load) -> Load:
    """The run's load with one connection (the built-in generator measures each request)."""
    return replace(load, connections=1, generator="builtin")


def one_connection_markdown(direct: Case | None, gateway: Case | None) -> list[str]:
    if direct is None or gateway is None:
        return []
    rows = []
    for name, case in (("direct", direct), ("gateway", gateway)):
        rows.append(
            f"| {name} | {fmt(case.rps, 0)} | {fmt(case.latency('p50'), 3)} | {fmt(case.latency('p90'), 3)} | "
            f"{fmt(case.latency('p99'), 3)} | {fmt(case.server_cpu_ms, 3)} | {case.failures} |"
        )
    added = {q: _minus(gateway.latency(q), direct.latency(q)) for q in ("p50", "p90", "p99")}
    p99 = added["p99"]
    verdict = "n/a" if p99 is None else ("ok" if p99 <= BUDGET_ADDED_P99_MS else "MISSED")
    rows.append(
        f"| **added by the gateway** | | **{fmt(added['p50'], 3)}** | {fmt(added['p90'], 3)} | "
        f"**{fmt(added['p99'], 3)}** | | |"
    )
    return [
        "### Added latency at one connection",
        "",
        "Non-streaming, one request at a time on one keep-alive connection (built-in generator), "
        "the upstream directly and the gateway (default configuration).",
        "",
        "| target | req/s | p50 ms | p90 ms | p99 ms | server CPU ms/req | failed |",
        "|---|--:|--:|--:|--:|--:|--:|",
        *rows,
        "",
        f"Added p99 {fmt(p99, 3)} ms ({verdict}, ≤ {BUDGET_ADDED_P99_MS:g} ms).",
    ]


def fmt(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:,.{digits}f}"


def _minus(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b
