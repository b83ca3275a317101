"""The steps of a run: start a variant's gateway (and its OTLP sink), measure a case, stop it."""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks import procstat
from benchmarks.common import REPO, RESULTS, BenchError
from benchmarks.load import Case, Load, other_load, per_request_ms
from benchmarks.oneconn import one_connection_load
from benchmarks.probes import check_variant, sanity, sink_stats, timing_headers, upstream_stats, wait_healthy
from benchmarks.processes import Children, free_port, log_tail, start_listener
from benchmarks.report import Run, VariantRun, fmt
from benchmarks.variants import Variant, gateway_config, traces_config, variant_key


@dataclass
class Servers:
    upstream_pid: int
    upstream_port: int
    gateway_pid: int | None = None
    gateway_port: int | None = None
    worker_pids: list[int] = field(default_factory=list)  # with several workers: theirs
    sink_pid: int | None = None  # the OTLP sink, while a "traces on" gateway runs


@dataclass
class Gateway:
    """A variant's running gateway (and its OTLP sink)."""

    run: VariantRun
    proc: subprocess.Popen[bytes]
    port: int
    key: str
    log: Path
    sink: subprocess.Popen[bytes] | None = None
    sink_port: int | None = None


def worker_pids(gateway_pid: int) -> list[int]:
    """The gateway's worker processes (its children other than the embedded redis-server)."""
    return [
        pid for pid in procstat.children(gateway_pid) if not procstat.command_name(pid).startswith("redis")
    ]


def gateway_rss_kib(pids: list[int]) -> int | None:
    """The gateway's resident memory: one process's RSS; for several (a supervisor and its
    workers) the sum of their proportional set sizes, so that the pages they share count once."""
    values = (
        [procstat.rss_kib(pid) for pid in pids] if len(pids) == 1 else [procstat.pss_kib(p) for p in pids]
    )
    known = [v for v in values if v is not None]
    return sum(known) if known else None


def wait_workers(proc: subprocess.Popen[bytes], log: Path, count: int, timeout: float) -> list[int]:
    """Until ``count`` workers have started their app (each logs it once)."""
    deadline = time.monotonic() + timeout
    while True:
        started = log.read_bytes().count(b"Application startup complete")
        pids = worker_pids(proc.pid)
        if started >= count and len(pids) == count:
            return pids
        if proc.poll() is not None or time.monotonic() > deadline:
            raise BenchError(
                f"{count} workers did not all start within {timeout}s; log tail:\n" + log_tail(log)
            )
        time.sleep(0.05)


def log_path(variant: Variant) -> Path:
    return RESULTS / f"gateway-{variant.id}.log"


def profile_path(variant: Variant) -> Path:
    return RESULTS / f"gateway-{variant.id}.prof"


def open_variant(
    children: Children,
    args: argparse.Namespace,
    workdir: Path,
    servers: Servers,
    vr: VariantRun,
    generated_key: str,
) -> Gateway:
    """Start the variant's gateway (and sink), wait until healthy, check it serves as configured.

    On failure whatever it started is stopped again, so that the next variant runs alone."""
    variant = vr.variant
    key = variant_key(variant, generated_key, args.key)
    vr.key_source = variant.key_from or ("--key" if args.key else "generated")
    extra = [*variant.config_paths, *args.extra_config]
    vr.config_files = [str(p.relative_to(REPO)) if p.is_relative_to(REPO) else str(p) for p in extra]
    sink: subprocess.Popen[bytes] | None = None
    sink_port: int | None = None
    generated = ""
    if variant.traces:
        with open(RESULTS / "otlp-sink.log", "ab") as sink_log:
            sink, sink_port = start_listener(children, "otlp sink", "benchmarks.otlpsink", sink_log)
        servers.sink_pid = sink.pid
        generated = traces_config(f"http://127.0.0.1:{sink_port}/v1/traces")
        vr.config_files.insert(0, "(generated [telemetry] section: traces to the sink)")
    gateway: Gateway | None = None
    try:
        port = free_port()
        home = workdir / variant.id
        home.mkdir()
        text = gateway_config(
            port=port,
            upstream_port=servers.upstream_port,
            key=generated_key,
            data_dir=home / "redis",
            extra=extra,
            generated=generated,
            workers=vr.workers,
        )
        try:
            tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise BenchError(
                f"{vr.title}: the gateway config is not valid TOML ({exc}); does an --extra-config "
                f"file repeat a table the variant sets ({', '.join(variant.configs) or 'telemetry'})?"
            ) from None
        config = home / "gateway.toml"
        config.write_text(text)
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        profiler = ["-m", "cProfile", "-o", str(profile_path(variant))] if args.profile else []
        if args.profile:
            profile_path(variant).unlink(missing_ok=True)
        log = log_path(variant)
        with open(log, "wb") as log_file:
            proc = children.spawn(
                f"gateway ({vr.title})",
                [sys.executable, *profiler, "-m", "gateway", "serve", "--config", str(config)],
                stdout=log_file,
                stderr=subprocess.STDOUT,
                env=env,
                # SIGINT: uvicorn shuts down gracefully, then re-raises it, which cProfile survives
                # (a re-raised SIGTERM would kill the process before the profile is written).
                stop_signal=signal.SIGINT,
                grace=15.0,
            )
        gateway = Gateway(vr, proc, port, key, log, sink, sink_port)
        vr.ready_s = wait_healthy(port, proc, log, args.startup_timeout)
        workers = wait_workers(proc, log, vr.workers, args.startup_timeout) if vr.workers > 1 else []
        idle = gateway_rss_kib([proc.pid, *workers])
        vr.rss_idle_mb = idle / 1024 if idle is not None else None
        print(
            f"gateway ({vr.title}): pid {proc.pid}, port {port}, healthy after {vr.ready_s:.2f} s", flush=True
        )
        headers = sanity(port, key, f"gateway ({vr.title})")
        check_variant(port, variant, headers)
    except BaseException:
        if gateway is not None:
            close_variant(children, servers, gateway)
        elif sink is not None:
            children.stop(sink)
            servers.sink_pid = None
        raise
    vr.headers = timing_headers(headers)
    vr.requests_sent = 2
    servers.gateway_pid, servers.gateway_port, servers.worker_pids = proc.pid, port, workers
    return gateway


def close_variant(children: Children, servers: Servers, gateway: Gateway) -> None:
    """Record the gateway's memory, stop it, then collect what its sink received and stop that."""
    vr = gateway.run
    if gateway.proc.poll() is None:
        pids = [gateway.proc.pid, *servers.worker_pids]
        end = gateway_rss_kib(pids)
        peaks = [v for v in (procstat.peak_rss_kib(pid) for pid in pids) if v is not None]
        vr.rss_end_mb = end / 1024 if end is not None else None
        # Several processes: the largest one's high-water mark (their sum would count shared pages twice).
        vr.rss_peak_mb = max(peaks) / 1024 if peaks else None
    children.stop(gateway.proc)
    servers.gateway_pid = servers.gateway_port = None
    servers.worker_pids = []
    if gateway.sink is not None:
        assert gateway.sink_port is not None
        # After the gateway stopped: its span processor flushes what it still held on shutdown.
        with contextlib.suppress(OSError, ValueError):
            vr.otlp = sink_stats(gateway.sink_port)
        children.stop(gateway.sink)
        servers.sink_pid = None


def measure_one_connection(
    run: Run, servers: Servers, key: str | None, variant: Variant | None = None
) -> Case:
    """The non-streaming case at one connection (the added-latency case)."""
    target = "direct" if key is None else "gateway"
    return measure(run, servers, target, False, key, variant, load=one_connection_load(run.load))


def measure(
    run: Run,
    servers: Servers,
    target: str,
    stream: bool,
    key: str | None,
    variant: Variant | None = None,
    workers: int = 1,
    *,
    load: Load | None = None,
) -> Case:
    case = Case(target, stream, variant, workers=workers)
    if target == "gateway":
        assert servers.gateway_pid is not None
        assert servers.gateway_port is not None
        server_pid, port = servers.gateway_pid, servers.gateway_port
        redis_pids = [
            pid for pid in procstat.children(server_pid) if procstat.command_name(pid).startswith("redis")
        ]
        server_pids = [server_pid, *servers.worker_pids]
    else:
        server_pid, port, redis_pids = servers.upstream_pid, servers.upstream_port, []
        server_pids = [server_pid]
    sink = [servers.sink_pid] if target == "gateway" and servers.sink_pid is not None else []
    watch = sorted({*server_pids, servers.upstream_pid, *redis_pids, *sink})
    counter = "streams" if stream else "completions"
    load = load or run.load
    at = (
        f" at {load.connections} connection{'s' if load.connections > 1 else ''}"
        if load is not run.load
        else ""
    )
    print(f"- {case.label}{at}: {load.warmup:g} s warm-up + {load.duration:g} s ...", flush=True)
    before = upstream_stats(servers.upstream_port)[counter]
    result = load.run(port, key=key, stream=stream, watch=watch)
    after = upstream_stats(servers.upstream_port)[counter]
    case.result = result
    case.server_pids = server_pids
    # With several workers: the supervisor's and every worker's CPU.
    shares = [per_request_ms(result, pid) for pid in server_pids]
    case.server_cpu_ms = sum(v for v in shares if v is not None) if shares[0] is not None else None
    if target == "gateway":
        case.upstream_cpu_ms = per_request_ms(result, servers.upstream_pid)
        redis = [v for v in (per_request_ms(result, pid) for pid in redis_pids) if v is not None]
        case.redis_cpu_ms = sum(redis) if redis else None
        # Requests cut off at the end were sent too (most reached the upstream): count them, so
        # that one upstream call per request reads 1.00 and retries or duplicates show above it.
        sent = result.get("total_completed", 0) + result.get("in_flight_at_end", 0)
        if sent:
            case.upstream_calls_per_request = (after - before) / sent
    if result.get("generator_cpu_s") is not None and result["completed"]:
        case.generator_cpu_ms = result["generator_cpu_s"] / result["completed"] * 1000
    case.other_cores = other_load(result)
    if servers.gateway_pid is not None:
        rss = gateway_rss_kib([servers.gateway_pid, *servers.worker_pids])
        case.rss_mb_after = rss / 1024 if rss is not None else None
    if target == "gateway":
        start, end = result.get("rss_kib", {}).get(str(server_pid), [None, None])
        if len(server_pids) == 1 and start is not None and end is not None:
            case.rss_mb_window = (start / 1024, end / 1024)
    print(
        f"  {case.rps:,.0f} req/s, p50 {fmt(case.latency('p50'))} ms, p99 {fmt(case.latency('p99'))} ms, "
        f"server CPU {fmt(case.server_cpu_ms, 3)} ms/req, failures {case.failures}"
        + (f" {result['errors']}" if case.failures else ""),
        flush=True,
    )
    return case


def measure_variant(run: Run, servers: Servers, gateway: Gateway, streams: list[bool]) -> None:
    vr = gateway.run
    for stream in streams:
        case = measure(run, servers, "gateway", stream, gateway.key, vr.variant, vr.workers)
        run.cases.append(case)
        vr.requests_sent += case.result.get("total_completed", 0) + case.result.get("in_flight_at_end", 0)
        if gateway.proc.poll() is not None:
            raise BenchError(
                f"the gateway exited with status {gateway.proc.returncode} under load; log tail:\n"
                + log_tail(gateway.log)
            )
