"""The report of a run: Markdown tables (summary, variants, details) and the raw JSON."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from benchmarks.common import (
    BUDGET_CPU_MS,
    BUDGET_RPS,
    BUDGET_RSS_LOAD_MB,
    BUDGET_RSS_MB,
    BUDGET_STREAMS,
    NOISE_CORES,
)
from benchmarks.load import Case, Load
from benchmarks.oneconn import one_connection_markdown
from benchmarks.paced import PacedCase, paced_markdown
from benchmarks.variants import BARE, VARIANTS, Variant


def fmt(value: float | None, digits: int = 2, suffix: str = "") -> str:
    if value is None:
        return "n/a"
    return f"{value:,.{digits}f}{suffix}"


def _ratio(a: float | None, b: float | None) -> str:
    if a is None or b is None or b == 0:
        return "n/a"
    return f"{a / b:.2f}×"  # noqa: RUF001


def _delta(value: float | None, reference: float | None) -> str:
    """``+0.052 (+24%)``: a CPU figure against the bare proxy's."""
    if value is None or reference is None:
        return "n/a"
    diff = value - reference
    percent = f" ({diff / reference * 100:+.0f}%)" if reference > 0 else ""
    return f"{diff:+.3f}{percent}"


@dataclass
class VariantRun:
    """One variant's gateway process: its figures, or why it was not measured."""

    variant: Variant
    key_source: str = "generated"  # "generated", "--key", or the file that declares it
    config_files: list[str] = field(default_factory=list)
    ready_s: float | None = None
    rss_idle_mb: float | None = None
    rss_end_mb: float | None = None
    rss_peak_mb: float | None = None
    headers: dict[str, str] = field(default_factory=dict)  # x-gateway-* of the sanity replies
    error: str | None = None  # failed to start or under load
    skipped: str | None = None  # not attempted
    otlp: dict[str, int] | None = None  # what the OTLP sink received ("traces on")
    requests_sent: int = 0  # to this gateway, warm-ups and sanity requests included
    workers: int = 1  # its worker processes

    @property
    def title(self) -> str:
        if self.variant.workers is None:
            return f"{self.workers} workers"
        return self.variant.title

    @property
    def spans_per_request(self) -> float | None:
        if self.otlp is None or not self.requests_sent:
            return None
        return self.otlp["spans"] / self.requests_sent


def _generator_cores(case: Case) -> float | None:
    window, cpu = case.result.get("window_s"), case.result.get("generator_cpu_s")
    return cpu / window if window and cpu is not None else None


def _rest_cores(case: Case) -> float | None:
    """The upstream's, the embedded Redis's and the sink's cores in ``case``'s window."""
    others = [int(pid) for pid in case.result.get("cpu_seconds", {}) if int(pid) not in case.server_pids]
    return case.cores(others) if others else None


def _reason(error: str) -> str:
    lines = [line for line in error.splitlines() if line.strip()]
    return lines[0] + (f" … {lines[-1].strip()}" if len(lines) > 1 else "")


@dataclass
class Run:
    machine: dict[str, str | int]
    load: Load
    started: datetime
    commit: str
    cases: list[Case] = field(default_factory=list)
    variants: list[VariantRun] = field(default_factory=list)
    extra_configs: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    profiled: bool = False
    one_connection: dict[str, Case] = field(default_factory=dict)  # "direct", "gateway"
    paced: list[PacedCase] = field(default_factory=list)

    def find(self, target: str, stream: bool, variant: str = "default") -> Case | None:
        for case in self.cases:
            if case.target != target or case.stream != stream:
                continue
            if target == "direct" or (case.variant is not None and case.variant.id == variant):
                return case
        return None

    @property
    def primary(self) -> VariantRun | None:
        """The variant compared with the direct upstream: ``default`` when it ran, else the first."""
        tried = [v for v in self.variants if v.skipped is None]
        for v in tried:
            if v.variant.id == "default":
                return v
        return tried[0] if tried else None

    def variant_rows(self) -> list[dict[str, Any]]:
        """Per measured variant and mode: the figures of the variants table, and the CPU per
        request against the bare proxy's (``policy and metrics off``) in the same mode."""
        rows = []
        for v in self.variants:
            for stream in (False, True):
                case = self.find("gateway", stream, v.variant.id)
                if case is None:
                    continue
                bare = self.find("gateway", stream, BARE)
                reference = bare.server_cpu_ms if bare is not None else None
                rows.append(
                    {
                        "variant": v.variant.id,
                        "title": v.title,
                        "mode": case.mode,
                        "rps": case.rps,
                        "p50_ms": case.latency("p50"),
                        "p99_ms": case.latency("p99"),
                        "cpu_ms": case.server_cpu_ms,
                        "cpu_ms_vs_bare": (
                            case.server_cpu_ms - reference
                            if case.server_cpu_ms is not None and reference is not None
                            else None
                        ),
                        "cpu_vs_bare": "reference"
                        if v.variant.id == BARE
                        else _delta(case.server_cpu_ms, reference),
                        "rss_mb": case.rss_mb_after,
                        "failed": case.failures,
                    }
                )
        return rows

    def markdown(self) -> str:
        m, load = self.machine, self.load
        primary = self.primary
        config = ""
        if self.extra_configs:
            config = " Gateway config: generated + " + ", ".join(f"`{c}`" for c in self.extra_configs) + "."
        out = [
            "### Gateway vs direct upstream",
            "",
            f"{m['cpu']} (nproc {m['nproc']}), Python {m['python']}, Linux {m['kernel']}; "
            f"load: {load.describe()}, {load.connections} connections, {load.duration:g} s measured "
            f"after {load.warmup:g} s warm-up; commit {self.commit}, {self.started:%Y-%m-%d %H:%M} UTC."
            + config
            + (" **Gateway under cProfile: its CPU figures are inflated.**" if self.profiled else ""),
            "",
            "| case | req/s | p50 ms | p99 ms | server CPU ms/req | failed |",
            "|---|--:|--:|--:|--:|--:|",
        ]
        shown = [
            c
            for c in self.cases
            if c.target == "direct"
            or (primary is not None and c.variant is not None and c.variant.id == primary.variant.id)
        ]
        for case in shown:
            who = "gateway" if case.target == "gateway" else "upstream"
            out.append(
                f"| {case.label} | {fmt(case.rps, 0)} | {fmt(case.latency('p50'))} | "
                f"{fmt(case.latency('p99'))} | {fmt(case.server_cpu_ms, 3)} ({who}) | {case.failures} |"
            )
        ratios = []
        for stream in (False, True):
            if primary is None:
                break
            gw, direct = self.find("gateway", stream, primary.variant.id), self.find("direct", stream)
            if gw is None or direct is None:
                continue
            ratios.append(
                f"| {gw.mode} | {_ratio(gw.rps, direct.rps)} | "
                f"{_ratio(gw.latency('p50'), direct.latency('p50'))} | "
                f"{_ratio(gw.latency('p99'), direct.latency('p99'))} | {fmt(gw.server_cpu_ms, 3)} | "
                f"{fmt(gw.rss_mb_after, 0)} |"
            )
        if ratios:
            assert primary is not None
            who = "gateway" if primary.variant.id == "default" else f"gateway ({primary.title})"
            out += [
                "",
                f"| {who} / direct | throughput | p50 latency | p99 latency | gateway CPU ms/req | gateway RSS MB |",
                "|---|--:|--:|--:|--:|--:|",
                *ratios,
            ]
        if primary is not None and primary.error:
            out += ["", f"Gateway not measured: {_reason(primary.error)}"]
        out += ["", *self._budget_lines()]
        noisy = [c for c in self.cases if c.other_cores is not None and c.other_cores > NOISE_CORES]
        if noisy:
            worst = max(c.other_cores or 0.0 for c in noisy)
            out.append(
                f"Warning: other processes used up to {worst:.2f} cores during "
                + ", ".join(c.label for c in noisy)
                + "; throughput and latency there are disturbed."
            )
        single = one_connection_markdown(
            self.one_connection.get("direct"), self.one_connection.get("gateway")
        )
        if single:
            out += ["", *single]
        if self.paced:
            out += ["", *paced_markdown(self.paced)]
        if len(self.variants) > 1:
            out += ["", *self.variants_markdown()]
        workers = self.workers_markdown()
        if workers:
            out += ["", *workers]
        return "\n".join(out).rstrip() + "\n"

    def worker_rows(self) -> list[dict[str, Any]]:
        """Per mode: ``default`` (one worker) against the ``workers`` variant, and the cores each
        part of the run used in the measured window (all on the same machine)."""
        several = next((v for v in self.variants if v.variant.workers is None), None)
        rows: list[dict[str, Any]] = []
        if several is None:
            return rows
        for stream in (False, True):
            one, many = (
                self.find("gateway", stream, "default"),
                self.find("gateway", stream, several.variant.id),
            )
            if one is None or many is None:
                continue
            cores_1, cores_n = one.cores(one.server_pids), many.cores(many.server_pids)
            rest, generator = _rest_cores(many), _generator_cores(many)
            nproc = self.machine.get("nproc")
            # What N workers could reach on the cores the generator, upstream and Redis leave them,
            # if each of those cores served as many requests as the one worker's did.
            left = None
            if isinstance(nproc, int) and rest is not None and generator is not None:
                left = min(float(many.workers or nproc), nproc - rest - generator)
            rows.append(
                {
                    "mode": many.mode,
                    "workers": many.workers,
                    "rps_1": one.rps,
                    "rps_n": many.rps,
                    "ratio": many.rps / one.rps if one.rps else None,
                    "cpu_ms_1": one.server_cpu_ms,
                    "cpu_ms_n": many.server_cpu_ms,
                    "p99_1": one.latency("p99"),
                    "p99_n": many.latency("p99"),
                    "cores_gateway_1": cores_1,
                    "cores_gateway_n": cores_n,
                    "cores_rest_n": rest,
                    "generator_cores_n": generator,
                    "cores_left_n": left,
                    "ceiling": left / cores_1 if left is not None and cores_1 else None,
                    "per_core": (many.rps / cores_n) / (one.rps / cores_1)
                    if cores_1 and cores_n and one.rps
                    else None,
                }
            )
        return rows

    def workers_markdown(self) -> list[str]:
        rows = self.worker_rows()
        if not rows:
            return []
        n = rows[0]["workers"]
        nproc = self.machine.get("nproc")
        out = [
            f"### Workers: 1 against {n}",
            "",
            f"The default configuration with one worker (`default`) and with {n} workers, the load "
            f"generator, the upstream and the embedded Redis all on the same {nproc} cores: what they "
            "use is not available to the workers, so the ratio is bounded by the cores left to the "
            "gateway, not by the number of workers. Cores: CPU seconds ÷ the measured window. Ceiling: "
            "the ratio the workers would reach on the cores left to them (the machine's, less what the "
            "generator, upstream and Redis used) if each core served what the one worker's did; per "
            "core: req/s per gateway core, workers against one.",
            "",
            f"| mode | req/s, 1 worker | req/s, {n} workers | ratio | ceiling | per core | p99 ms 1 / {n} "
            f"| gateway CPU ms/req 1 / {n} | gateway cores 1 / {n} | generator cores ({n}) "
            f"| upstream + redis cores ({n}) |",
            "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
        ]
        for r in rows:
            ratio, ceiling, per_core = (
                "n/a" if r[k] is None else f"{r[k]:.2f}×"  # noqa: RUF001
                for k in ("ratio", "ceiling", "per_core")
            )
            out.append(
                f"| {r['mode']} | {fmt(r['rps_1'], 0)} | {fmt(r['rps_n'], 0)} | {ratio} | {ceiling} | {per_core} | "
                f"{fmt(r['p99_1'])} / {fmt(r['p99_n'])} | {fmt(r['cpu_ms_1'], 3)} / {fmt(r['cpu_ms_n'], 3)} | "
                f"{fmt(r['cores_gateway_1'])} / {fmt(r['cores_gateway_n'])} | {fmt(r['generator_cores_n'])} | "
                f"{fmt(r['cores_rest_n'])} |"
            )
        return out

    def variants_markdown(self) -> list[str]:
        bare = next((v.title for v in VARIANTS if v.id == BARE), BARE)
        out = [
            "### Gateway configurations",
            "",
            "Each variant is its own gateway process with a fresh embedded Redis. CPU ms/req: the "
            "gateway process's utime+stime over the measured window ÷ responses; "
            f"vs bare: the difference from `{bare}` (the bare proxy) in the same mode.",
            "",
            "| variant | mode | req/s | p50 ms | p99 ms | gateway CPU ms/req | vs bare ms/req | RSS MB | failed |",
            "|---|---|--:|--:|--:|--:|--:|--:|--:|",
        ]
        for row in self.variant_rows():
            out.append(
                f"| {row['title']} | {row['mode']} | {fmt(row['rps'], 0)} | {fmt(row['p50_ms'])} | "
                f"{fmt(row['p99_ms'])} | {fmt(row['cpu_ms'], 3)} | {row['cpu_vs_bare']} | "
                f"{fmt(row['rss_mb'], 0)} | {row['failed']} |"
            )
        out.append("")
        for v in self.variants:
            if v.skipped:
                out.append(f"- {v.title}: skipped: {v.skipped}")
            elif v.error:
                out.append(f"- {v.title}: not measured: {_reason(v.error).removeprefix(v.title + ': ')}")
            if v.otlp is not None:
                out.append(
                    f"- {v.title}: the OTLP sink received {v.otlp['spans']:,} spans in {v.otlp['posts']:,} "
                    f"posts ({v.otlp['bytes'] / 1e6:.1f} MB) for {v.requests_sent:,} requests sent "
                    f"({fmt(v.spans_per_request, 2)} spans/request; below 1.00 the exporter dropped spans)"
                )
        return out

    def _budget_lines(self) -> list[str]:
        primary = self.primary
        if primary is None or primary.variant.id != "default":
            return []
        plain, stream = self.find("gateway", False), self.find("gateway", True)
        if plain is None and stream is None:
            return []
        checks = []
        if plain is not None:
            checks.append(
                _check("CPU/request", plain.server_cpu_ms, BUDGET_CPU_MS, "ms", lower=True, digits=3)
            )
            checks.append(_check("req/s", plain.rps, BUDGET_RPS, "", lower=False, digits=0))
        if stream is not None:
            checks.append(_check("streams/s", stream.rps, BUDGET_STREAMS, "", lower=False, digits=0))
        checks.append(_check("RSS idle", primary.rss_idle_mb, BUDGET_RSS_MB, " MB", lower=True, digits=0))
        loaded = [c.rss_mb_after for c in (plain, stream) if c is not None and c.rss_mb_after is not None]
        checks.append(
            _check(
                "RSS under load", max(loaded, default=None), BUDGET_RSS_LOAD_MB, " MB", lower=True, digits=0
            )
        )
        return ["Budget per worker (default variant): " + "; ".join(checks) + "."]

    def details(self) -> str:
        out = ["", "#### Details", ""]
        out.append(
            "| case | ok | p90 ms | max ms | upstream CPU ms/req | redis CPU ms/req | generator CPU ms/req "
            "| upstream calls/req | other load (cores) | statuses |"
        )
        out.append("|---|--:|--:|--:|--:|--:|--:|--:|--:|---|")
        for c in self.cases:
            statuses = ", ".join(f"{k}: {v}" for k, v in c.result.get("statuses", {}).items()) or "n/a"
            out.append(
                f"| {c.label} | {c.result.get('ok', 0):,} | {fmt(c.latency('p90'))} | {fmt(c.latency('max'))} | "
                f"{fmt(c.upstream_cpu_ms, 3)} | {fmt(c.redis_cpu_ms, 3)} | {fmt(c.generator_cpu_ms, 3)} | "
                f"{fmt(c.upstream_calls_per_request, 2)} | {fmt(c.other_cores, 2)} | {statuses} |"
            )
        for c in self.cases:
            if c.result.get("errors"):
                out.append(f"- {c.label}: failures {c.result['errors']}")
                if c.result.get("sample_bad"):
                    out.append(f"  - first one: `{c.result['sample_bad'][:400]}`")
        for v in self.variants:
            if v.ready_s is None:
                continue
            who = "gateway" if v.variant.id == "default" else f"gateway ({v.title})"
            rss = [
                f"idle {fmt(v.rss_idle_mb, 1)} MB",
                *(_rss_line(c) for c in self.cases if c.variant is v.variant),
                f"peak (VmHWM) {fmt(v.rss_peak_mb, 1)} MB",
            ]
            config = ", ".join(v.config_files) if v.config_files else "generated only"
            out.append(
                f"- {who}: key {v.key_source}, config {config}; ready in {v.ready_s:.2f} s; RSS: "
                + ", ".join(rss)
            )
            if v.headers:
                out.append(
                    "  - timing headers (sanity request): "
                    + ", ".join(f"{k}={val}" for k, val in sorted(v.headers.items()))
                )
        out += [f"- {note}" for note in self.notes]
        return "\n".join(out) + "\n"

    def as_json(self) -> dict[str, Any]:
        primary = self.primary
        rows = {(r["variant"], r["mode"]): r for r in self.variant_rows()}

        def gateway(v: VariantRun) -> dict[str, Any]:
            return {
                "ready_s": v.ready_s,
                "rss_idle_mb": v.rss_idle_mb,
                "rss_end_mb": v.rss_end_mb,
                "rss_peak_mb": v.rss_peak_mb,
                "error": v.error,
            }

        return {
            "machine": self.machine,
            "generator": self.load.describe(),
            "connections": self.load.connections,
            "duration": self.load.duration,
            "warmup": self.load.warmup,
            "commit": self.commit,
            "started": self.started.isoformat(),
            "extra_configs": self.extra_configs,
            # The variant of the direct comparison (default when it ran), as before variants.
            "gateway": {"variant": primary.variant.id, **gateway(primary)} if primary is not None else None,
            "variants": [
                {
                    "variant": v.variant.id,
                    "title": v.title,
                    "key": v.key_source,
                    "config_files": v.config_files,
                    "skipped": v.skipped,
                    "otlp_sink": v.otlp,
                    "requests_sent": v.requests_sent,
                    "workers": v.workers,
                    **gateway(v),
                }
                for v in self.variants
            ],
            "workers": self.worker_rows(),
            "one_connection": {name: case.result for name, case in self.one_connection.items()},
            "paced": [
                {
                    "target": c.target,
                    "streams": c.streams,
                    "rounds": c.rounds,
                    "server_cpu_ms_per_stream": c.cpu_ms_per_stream(),
                    **c.result,
                }
                for c in self.paced
            ],
            "cases": [
                {
                    "case": c.label,
                    "variant": c.variant.id if c.variant is not None else None,
                    "mode": c.mode,
                    "server_cpu_ms_per_request": c.server_cpu_ms,
                    "cpu_ms_per_request_vs_bare": (
                        rows[(c.variant.id, c.mode)]["cpu_ms_vs_bare"] if c.variant is not None else None
                    ),
                    "upstream_cpu_ms_per_request": c.upstream_cpu_ms,
                    "redis_cpu_ms_per_request": c.redis_cpu_ms,
                    "upstream_calls_per_request": c.upstream_calls_per_request,
                    "rss_mb_after": c.rss_mb_after,
                    **c.result,
                }
                for c in self.cases
            ],
        }


def _rss_line(case: Case) -> str:
    line = f"after {case.mode} {fmt(case.rss_mb_after, 1)} MB"
    if case.rss_mb_window is not None:
        start, end = case.rss_mb_window
        line += f" ({start:.1f} → {end:.1f} MB over the measured window)"
    return line


def _check(name: str, value: float | None, budget: float, unit: str, *, lower: bool, digits: int) -> str:
    if value is None:
        return f"{name} n/a"
    ok = value <= budget if lower else value >= budget
    sign = "≤" if lower else "≥"
    return f"{name} {fmt(value, digits)}{unit} ({'ok' if ok else 'MISSED'}, {sign} {budget:,g}{unit})"
