"""The benchmark harness's pure parts: variant selection, the configs each variant generates (and
that the gateway accepts them), and the variants table. Nothing here starts a process or times."""

from __future__ import annotations

import tomllib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from gateway.config import load_settings

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def bench() -> Iterator[SimpleNamespace]:
    """The harness's names these tests use, from the modules that define them."""
    # benchmarks/ is a directory of the repository, not an installed package.
    with pytest.MonkeyPatch.context() as mp:
        mp.syspath_prepend(str(REPO))
        from benchmarks import load, processes, report, variants

        yield SimpleNamespace(
            BARE=variants.BARE,
            VARIANTS=variants.VARIANTS,
            gateway_config=variants.gateway_config,
            parse_variants=variants.parse_variants,
            select_variants=variants.select_variants,
            traces_config=variants.traces_config,
            variant_key=variants.variant_key,
            Case=load.Case,
            Load=load.Load,
            Children=processes.Children,
            Run=report.Run,
            VariantRun=report.VariantRun,
        )


def ids(variants: list[Any]) -> list[str]:
    return [v.id for v in variants]


# -- selection ------------------------------------------------------------------------------------


def test_every_variant_by_default_with_the_bare_proxy_among_them(bench: SimpleNamespace) -> None:
    every = ["default", "limited-key", "off", "traces", "workers"]
    assert ids(bench.parse_variants(None)) == every
    assert ids(bench.parse_variants("all")) == every
    assert bench.BARE in ids(bench.parse_variants(None))


def test_variants_in_the_order_given_once_each(bench: SimpleNamespace) -> None:
    assert ids(bench.parse_variants(" off , default,off,")) == ["off", "default"]
    assert ids(bench.parse_variants("traces")) == ["traces"]


@pytest.mark.parametrize("text", ["bogus", "default,Off", ",", ""])
def test_unknown_or_empty_variants_are_refused_naming_the_known_ones(
    bench: SimpleNamespace, text: str
) -> None:
    with pytest.raises(ValueError, match="default, limited-key, off, traces, workers"):
        bench.parse_variants(text)


def test_selection_with_extra_config_key_or_direct_only(bench: SimpleNamespace) -> None:
    select = bench.select_variants
    assert ids(select(None, direct_only=False, customised=False)) == [
        "default",
        "limited-key",
        "off",
        "traces",
        "workers",
    ]
    # --extra-config/--key alone: one gateway, as before there were variants.
    assert ids(select(None, direct_only=False, customised=True)) == ["default"]
    assert ids(select("default,off", direct_only=False, customised=True)) == ["default", "off"]
    assert select("default", direct_only=True, customised=False) == []
    error = select("nope", direct_only=False, customised=False)
    assert isinstance(error, str)
    assert error.startswith("--variants: unknown variant 'nope'")


def test_the_key_each_variant_sends(bench: SimpleNamespace) -> None:
    by_id = {v.id: v for v in bench.VARIANTS}
    limited_file = REPO / "benchmarks/configs/policy-limited-key.toml"
    declared = tomllib.loads(limited_file.read_text())["auth"]["keys"][0]
    assert bench.variant_key(by_id["limited-key"], "sk-gen", None) == declared["key"]
    assert bench.variant_key(by_id["limited-key"], "sk-gen", "sk-override") == declared["key"]
    assert bench.variant_key(by_id["default"], "sk-gen", None) == "sk-gen"
    assert bench.variant_key(by_id["off"], "sk-gen", "sk-override") == "sk-override"


# -- generated configs ------------------------------------------------------------------------------


def variant_config(
    bench: SimpleNamespace, variant: Any, tmp_path: Path, extra: list[Path] | None = None, workers: int = 1
) -> str:
    generated = bench.traces_config("http://127.0.0.1:4318/v1/traces") if variant.traces else ""
    text: str = bench.gateway_config(
        port=8000,
        upstream_port=9000,
        key="sk-bench-generated",
        data_dir=tmp_path / "redis",
        extra=[*variant.config_paths, *(extra or [])],
        generated=generated,
        workers=workers,
    )
    return text


@pytest.mark.parametrize("variant_id", ["default", "limited-key", "off", "traces"])
def test_the_gateway_accepts_every_variant_config(
    bench: SimpleNamespace, tmp_path: Path, variant_id: str
) -> None:
    variant = next(v for v in bench.VARIANTS if v.id == variant_id)
    path = tmp_path / "gateway.toml"
    path.write_text(variant_config(bench, variant, tmp_path))
    settings = load_settings(path, env={})
    policy_on = variant_id != "off"
    assert settings.policy.enabled is policy_on
    assert settings.telemetry.metrics is policy_on
    assert settings.telemetry.otel_traces is (variant_id == "traces")
    if variant_id == "traces":
        assert settings.telemetry.otel_sample_ratio == 1.0
        assert settings.telemetry.otel_endpoint == "http://127.0.0.1:4318/v1/traces"
    names = [k.name for k in settings.auth.keys]
    assert names == (["bench", "bench-limited"] if variant_id == "limited-key" else ["bench"])
    if variant_id == "limited-key":
        limited = settings.auth.keys[1]
        assert limited.limits is not None
        assert limited.limits.rpm and limited.limits.tpm and limited.limits.max_concurrency
        assert limited.budgets


def test_every_variant_runs_one_worker_but_workers_runs_the_number_asked(
    bench: SimpleNamespace, tmp_path: Path
) -> None:
    """One worker is the per-process reference (``gateway serve`` alone would start one per
    core); the ``workers`` variant is the default configuration with ``--workers`` of them."""
    for variant in bench.VARIANTS:
        path = tmp_path / f"{variant.id}.toml"
        workers = variant.workers or 2
        path.write_text(variant_config(bench, variant, tmp_path, workers=workers))
        settings = load_settings(path, env={})
        assert settings.server.workers == (1 if variant.id != "workers" else 2)
    several = next(v for v in bench.VARIANTS if v.id == "workers")
    assert several.workers is None and not several.configs and not several.traces


def test_an_extra_config_repeating_a_variant_table_is_invalid_toml(
    bench: SimpleNamespace, tmp_path: Path
) -> None:
    off = next(v for v in bench.VARIANTS if v.id == "off")
    text = variant_config(bench, off, tmp_path, extra=[REPO / "benchmarks/configs/policy-off.toml"])
    with pytest.raises(tomllib.TOMLDecodeError, match="policy"):
        tomllib.loads(text)


# -- the report -------------------------------------------------------------------------------------


def case(bench: SimpleNamespace, variant_id: str | None, stream: bool, cpu_ms: float, rps: float) -> Any:
    variant = next((v for v in bench.VARIANTS if v.id == variant_id), None)
    result = {
        "rps": rps,
        "ok": int(rps * 8),
        "completed": int(rps * 8),
        "latency_ms": {"p50": 5.0, "p90": 7.0, "p99": 9.5, "max": 20.0},
        "statuses": {"200": int(rps * 8)},
        "errors": {},
    }
    return bench.Case(
        "direct" if variant is None else "gateway",
        stream,
        variant,
        result=result,
        server_cpu_ms=cpu_ms,
        rss_mb_after=None if variant is None else 75.0,
    )


def make_run(bench: SimpleNamespace, variant_ids: list[str], *, skipped: dict[str, str] | None = None) -> Any:
    load = bench.Load("builtin", 32, 8.0, 2.0, 30.0, 1, Path("/tmp"), bench.Children())
    machine = {"cpu": "Test CPU", "nproc": 2, "python": "3.11", "kernel": "6.0"}
    run = bench.Run(machine, load, datetime(2026, 1, 1, tzinfo=UTC), "abc1234")
    cpu = {"default": 0.30, "limited-key": 0.55, "off": 0.20, "traces": 0.50}
    run.cases += [case(bench, None, False, 0.010, 90000.0), case(bench, None, True, 0.015, 40000.0)]
    for variant in bench.parse_variants(",".join(variant_ids)):
        vr = bench.VariantRun(variant, ready_s=0.8, rss_idle_mb=66.0, rss_peak_mb=86.0)
        vr.skipped = (skipped or {}).get(variant.id)
        run.variants.append(vr)
        if vr.skipped:
            continue
        for stream in (False, True):
            run.cases.append(
                case(bench, variant.id, stream, cpu[variant.id] + (0.1 if stream else 0.0), 3000.0)
            )
    return run


def test_variant_rows_compare_cpu_with_the_bare_proxy_in_the_same_mode(bench: SimpleNamespace) -> None:
    rows = make_run(bench, ["default", "limited-key", "off"]).variant_rows()
    got = {(r["variant"], r["mode"]): r for r in rows}
    assert [(r["variant"], r["mode"]) for r in rows] == [
        ("default", "non-streaming"),
        ("default", "streaming"),
        ("limited-key", "non-streaming"),
        ("limited-key", "streaming"),
        ("off", "non-streaming"),
        ("off", "streaming"),
    ]
    assert got["default", "non-streaming"]["cpu_ms_vs_bare"] == pytest.approx(0.10)
    assert got["default", "non-streaming"]["cpu_vs_bare"] == "+0.100 (+50%)"
    assert got["default", "streaming"]["cpu_vs_bare"] == "+0.100 (+33%)"
    assert got["limited-key", "non-streaming"]["cpu_vs_bare"] == "+0.350 (+175%)"
    assert got["off", "streaming"]["cpu_vs_bare"] == "reference"
    assert got["off", "streaming"]["cpu_ms_vs_bare"] == pytest.approx(0.0)


def test_without_the_bare_proxy_there_is_no_difference_to_state(bench: SimpleNamespace) -> None:
    rows = make_run(bench, ["default", "traces"]).variant_rows()
    assert {r["cpu_vs_bare"] for r in rows} == {"n/a"}
    assert {r["cpu_ms_vs_bare"] for r in rows} == {None}


def test_markdown_keeps_the_direct_comparison_for_default_and_adds_the_variants_table(
    bench: SimpleNamespace,
) -> None:
    run = make_run(bench, ["default", "limited-key", "off", "traces"], skipped={"traces": "no otel"})
    md = run.markdown()
    direct_table = md.split("### Gateway configurations")[0]
    assert "| gateway, non-streaming | 3,000 | 5.00 | 9.50 | 0.300 (gateway) | 0 |" in direct_table
    assert "limited key" not in direct_table
    assert "| gateway / direct |" in direct_table
    assert "Budget per worker (default variant): CPU/request 0.300ms (MISSED, ≤ 0.2ms)" in direct_table
    # Memory: idle against 80 MB, after the 32-connection load against 120 MB (the peak, which
    # comes from the paced-stream cases, is reported but is not that budget).
    assert "RSS idle 66 MB (ok, ≤ 80 MB); RSS under load 75 MB (ok, ≤ 120 MB)." in direct_table
    assert (
        "| variant | mode | req/s | p50 ms | p99 ms | gateway CPU ms/req | vs bare ms/req | RSS MB | failed |"
        in md
    )
    assert "| limited key | streaming | 3,000 | 5.00 | 9.50 | 0.650 | +0.350 (+117%) | 75 | 0 |" in md
    assert (
        "| policy and metrics off | non-streaming | 3,000 | 5.00 | 9.50 | 0.200 | reference | 75 | 0 |" in md
    )
    assert "- traces on: skipped: no otel" in md
    assert "| traces on |" not in md
    details = run.details()
    assert "| gateway (limited key), streaming | 24,000 |" in details


def test_markdown_without_default_compares_the_first_variant_and_states_no_budget(
    bench: SimpleNamespace,
) -> None:
    md = make_run(bench, ["off", "limited-key"]).markdown()
    direct_table = md.split("### Gateway configurations")[0]
    assert "| gateway (policy and metrics off) / direct |" in direct_table
    assert "| gateway (policy and metrics off), non-streaming |" in direct_table
    assert "Budget per worker" not in md


def test_a_single_variant_has_no_variants_table(bench: SimpleNamespace) -> None:
    md = make_run(bench, ["default"]).markdown()
    assert "### Gateway configurations" not in md
    assert "Budget per worker" in md


def test_json_has_every_variant_and_each_case_its_variant_and_difference(bench: SimpleNamespace) -> None:
    run = make_run(bench, ["default", "off", "traces"], skipped={"traces": "no otel"})
    run.variants[0].error = None
    data = run.as_json()
    assert data["gateway"]["variant"] == "default"
    assert [(v["variant"], v["skipped"]) for v in data["variants"]] == [
        ("default", None),
        ("off", None),
        ("traces", "no otel"),
    ]
    gateway_cases = [c for c in data["cases"] if c["variant"] is not None]
    assert [(c["variant"], c["mode"]) for c in gateway_cases] == [
        ("default", "non-streaming"),
        ("default", "streaming"),
        ("off", "non-streaming"),
        ("off", "streaming"),
    ]
    assert gateway_cases[0]["cpu_ms_per_request_vs_bare"] == pytest.approx(0.10)
    assert gateway_cases[2]["cpu_ms_per_request_vs_bare"] == pytest.approx(0.0)
    direct = [c for c in data["cases"] if c["variant"] is None]
    assert [c["case"] for c in direct] == ["direct, non-streaming", "direct, streaming"]
    assert all(c["cpu_ms_per_request_vs_bare"] is None for c in direct)


def test_a_variant_that_failed_is_listed_with_its_reason_once(bench: SimpleNamespace) -> None:
    run = make_run(bench, ["default", "off", "limited-key"], skipped={"limited-key": "x"})
    run.variants[2].skipped = None
    run.variants[
        2
    ].error = "limited key: the gateway exited with status 1 before it was ready; log tail:\nboom\nlast line"
    md = run.markdown()
    assert (
        "- limited key: not measured: the gateway exited with status 1 before it was ready; log tail: … last line"
        in md
    )
    assert "| limited key |" not in md


def test_the_workers_table_puts_one_worker_beside_several_with_the_cores_each_part_used(
    bench: SimpleNamespace,
) -> None:
    run = make_run(bench, ["default"])
    several = next(v for v in bench.VARIANTS if v.id == "workers")
    run.variants.append(bench.VariantRun(several, ready_s=0.9, workers=2))
    for stream in (False, True):
        one = run.find("gateway", stream, "default")
        one.server_pids = [100]
        one.result.update(window_s=8.0, cpu_seconds={"100": 8.0, "200": 1.0}, generator_cpu_s=0.8)
        many = case(bench, "workers", stream, 0.31, 5400.0)
        many.workers = 2
        many.server_pids = [300, 301, 302]
        many.result.update(
            window_s=8.0,
            cpu_seconds={"300": 0.0, "301": 6.0, "302": 6.4, "200": 1.6},
            generator_cpu_s=1.6,
        )
        run.cases.append(many)
    [plain, stream] = run.worker_rows()
    assert plain["ratio"] == pytest.approx(1.8)
    assert plain["cores_gateway_1"] == pytest.approx(1.0)
    assert plain["cores_gateway_n"] == pytest.approx(1.55)
    assert plain["generator_cores_n"] == pytest.approx(0.2)
    assert plain["cores_rest_n"] == pytest.approx(0.2)
    md = run.markdown()
    assert "### Workers: 1 against 2" in md
    assert (
        "| non-streaming | 3,000 | 5,400 | 1.80× | 1.60× | 1.16× | 9.50 / 9.50 | 0.300 / 0.310 | 1.00 / 1.55 "  # noqa: RUF001
        "| 0.20 | 0.20 |" in md
    )
    assert "| gateway (2 workers), streaming | 43,200 |" in run.details()
    assert run.as_json()["workers"][1]["mode"] == "streaming"


def test_the_workers_table_states_the_ceiling_the_other_processes_leave(bench: SimpleNamespace) -> None:
    """Two workers on 2 cores with 0.45 cores taken by the generator, upstream and Redis can reach
    at most 1.55 cores' worth: the table says so beside the ratio, and the req/s per core."""
    run = make_run(bench, ["default"])
    run.variants.append(bench.VariantRun(next(v for v in bench.VARIANTS if v.id == "workers"), workers=2))
    one = run.find("gateway", False, "default")
    one.server_pids = [10]
    one.result.update(window_s=8.0, cpu_seconds={"10": 8.0, "20": 2.0}, rps=5000.0, generator_cpu_s=0.8)
    many = case(bench, "workers", False, 0.19, 7000.0)
    many.server_pids, many.workers = [11, 12], 2
    many.result.update(window_s=8.0, cpu_seconds={"11": 6.0, "12": 6.0, "20": 2.8}, generator_cpu_s=0.8)
    run.cases.append(many)
    [row] = run.worker_rows()
    assert row["ratio"] == pytest.approx(1.4)
    assert row["cores_left_n"] == pytest.approx(2 - 0.35 - 0.1)
    assert row["ceiling"] == pytest.approx(1.55)
    assert row["per_core"] == pytest.approx((7000 / 1.5) / 5000)
    table = "\n".join(run.workers_markdown())
    assert "| non-streaming | 5,000 | 7,000 | 1.40× | 1.55× | 0.93× |" in table  # noqa: RUF001
