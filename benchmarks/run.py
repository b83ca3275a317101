"""Gateway versus direct upstream, and the gateway's configurations against each other.

``python -m benchmarks.run`` (``make bench``) starts the minimal upstream (benchmarks.upstream)
and measures it directly, then, for each variant of the gateway's configuration (default,
limited key, policy and metrics off, traces on), starts the gateway (``python -m gateway serve``
with a temporary config pointing at the upstream, its own embedded Redis) and measures it; each
in its own process, non-streaming and streaming, with ``wrk`` when it is on PATH or the built-in
generator (benchmarks.loadgen) otherwise. CPU per request is the serving process's utime+stime
over the measured window divided by the requests completed in it. Results: Markdown tables on
stdout and in benchmarks/results/latest.md (raw numbers in latest.json, process logs next to
them).
"""

import argparse
import io
import json
import pstats
import secrets
import signal
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from benchmarks import paced, procstat, wrkdriver
from benchmarks.common import REPO, RESULTS, BenchError
from benchmarks.load import Load
from benchmarks.measure import (
    Gateway,
    Servers,
    close_variant,
    log_path,
    measure,
    measure_one_connection,
    measure_variant,
    open_variant,
    profile_path,
)
from benchmarks.probes import sanity
from benchmarks.processes import Children, start_listener, terminate_as_interrupt
from benchmarks.report import Run, VariantRun
from benchmarks.variants import VARIANTS, Variant, otel_missing, select_variants


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.split("\n\n")[0])
    p.add_argument("--connections", type=int, default=32, help="concurrent keep-alive connections (32)")
    p.add_argument("--duration", type=float, default=8.0, help="measured seconds per case (8)")
    p.add_argument("--warmup", type=float, default=2.0, help="unmeasured seconds before each case (2)")
    p.add_argument(
        "--mode", choices=("both", "non-streaming", "streaming"), default="both", help="which request kinds"
    )
    p.add_argument(
        "--variants",
        metavar="A,B,…",
        help="gateway configurations to measure, in this order: "
        + ", ".join(v.id for v in VARIANTS)
        + " (default: all; only default when --extra-config or --key is given)",
    )
    p.add_argument("--direct-only", action="store_true", help="measure only the upstream (no gateway)")
    p.add_argument(
        "--loadgen",
        choices=("auto", "wrk", "builtin"),
        default="auto",
        help="auto: wrk when it is on PATH, else the built-in generator",
    )
    p.add_argument("--wrk-threads", type=int, default=1, help="wrk threads (1)")
    p.add_argument(
        "--extra-config",
        type=Path,
        action="append",
        default=[],
        metavar="FILE",
        help="TOML appended to every variant's generated gateway config (repeatable)",
    )
    p.add_argument(
        "--key",
        metavar="SECRET",
        help="send this gateway key instead of the generated one (declare it with --extra-config, "
        "e.g. an [[auth.keys]] entry with limits and budgets so the policy runs its Redis script); "
        "the limited-key variant always sends its own key",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=procstat.cpu_count(),
        help="worker processes of the `workers` variant (default: the cores available, "
        f"{procstat.cpu_count()} here)",
    )
    p.add_argument(
        "--paced",
        default=",".join(str(n) for n in paced.CONCURRENCY),
        metavar="N,N,…",
        help="concurrent paced streams per paced-stream case, direct and gateway (default "
        + ",".join(str(n) for n in paced.CONCURRENCY)
        + "; none: skip the cases)",
    )
    p.add_argument(
        "--paced-rounds",
        type=int,
        default=paced.ROUNDS,
        help=f"paced streams per connection, one after the other ({paced.ROUNDS})",
    )
    p.add_argument(
        "--no-one-connection",
        dest="one_connection",
        action="store_false",
        help="skip the added-latency case at one connection",
    )
    p.add_argument(
        "--startup-timeout", type=float, default=60.0, help="seconds for the gateway to become healthy"
    )
    p.add_argument(
        "--request-timeout", type=float, default=30.0, help="a request slower than this is a failure"
    )
    p.add_argument(
        "--profile",
        action="store_true",
        help="run each gateway under cProfile (its CPU figures grow); top functions to "
        "results/gateway-<variant>-profile.txt",
    )
    p.add_argument(
        "--output", type=Path, default=RESULTS / "latest.md", help="where to write the Markdown report"
    )
    args = p.parse_args(argv)
    if args.connections < 1 or args.duration <= 0 or args.warmup < 0 or args.workers < 1:
        p.error("--connections must be ≥ 1, --duration > 0, --warmup ≥ 0, --workers ≥ 1")
    for path in args.extra_config:
        if not path.is_file():
            p.error(f"--extra-config {path}: no such file")
    try:
        args.paced_counts = [] if args.paced == "none" else [int(n) for n in args.paced.split(",") if n]
    except ValueError:
        p.error("--paced takes counts separated by commas, or none")
    if any(n < 1 for n in args.paced_counts) or args.paced_rounds < 1:
        p.error("--paced counts and --paced-rounds must be ≥ 1")
    args.variant_list = select_variants(
        args.variants, direct_only=args.direct_only, customised=bool(args.extra_config or args.key)
    )
    if isinstance(args.variant_list, str):
        p.error(args.variant_list)
    return args


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    RESULTS.mkdir(parents=True, exist_ok=True)
    generator = args.loadgen
    if generator == "auto":
        generator = "wrk" if wrkdriver.wrk_path() else "builtin"
    elif generator == "wrk" and not wrkdriver.wrk_path():
        print("--loadgen wrk: wrk is not on PATH", file=sys.stderr)
        return 2
    streams = {"both": [False, True], "non-streaming": [False], "streaming": [True]}[args.mode]
    generated_key = "sk-bench-" + secrets.token_hex(12)
    children = Children()
    exit_code = 0
    with (
        terminate_as_interrupt(),
        tempfile.TemporaryDirectory(prefix="gateway-bench-") as tmp,
        open(RESULTS / "upstream.log", "wb") as upstream_log,
    ):
        workdir = Path(tmp)
        load = Load(
            generator,
            args.connections,
            args.duration,
            args.warmup,
            args.request_timeout,
            args.wrk_threads,
            workdir,
            children,
        )
        run = Run(
            procstat.machine_summary(),
            load,
            datetime.now(UTC),
            _git_commit(),
            variants=[VariantRun(v, workers=v.workers or args.workers) for v in args.variant_list],
            extra_configs=[str(p) for p in args.extra_config],
            profiled=args.profile,
        )
        (RESULTS / "otlp-sink.log").unlink(missing_ok=True)
        print(f"machine: {run.machine}")
        print(f"load generator: {load.describe()}")
        if run.variants:
            print("gateway variants: " + ", ".join(v.title for v in run.variants))
        for vr in run.variants:
            missing = otel_missing() if vr.variant.traces else None
            if missing:
                vr.skipped = f"traces need the otel extra: {missing}"
                print(f"note: {vr.title} skipped: {vr.skipped}")
        todo = [vr for vr in run.variants if vr.skipped is None]
        try:
            upstream, upstream_port = start_listener(
                children, "upstream", "benchmarks.upstream", upstream_log
            )
            sanity(upstream_port, None, "upstream")
            servers = Servers(upstream.pid, upstream_port)
            print(f"upstream: pid {upstream.pid}, port {upstream_port}")
            first: Gateway | None = None
            if todo:
                # Started (and checked) before any load, so that a gateway that cannot serve
                # fails the run in seconds; it idles while the direct cases run.
                first = open_variant(children, args, workdir, servers, todo[0], generated_key)
            for stream in streams:
                run.cases.append(measure(run, servers, "direct", stream, None))
            if args.one_connection:
                run.one_connection["direct"] = measure_one_connection(run, servers, None)
            for count in args.paced_counts:
                run.paced.append(paced_case(children, args, servers, None, count, [upstream.pid]))
            for vr in todo:
                gateway = first if first is not None and first.run is vr else None
                try:
                    if gateway is None:
                        gateway = open_variant(children, args, workdir, servers, vr, generated_key)
                    measure_variant(run, servers, gateway, streams)
                    if vr is run.primary:
                        _extra_cases(run, children, args, servers, gateway)
                except BenchError as exc:
                    vr.error = str(exc)
                    exit_code = 1
                    print(
                        f"\nGATEWAY FAILURE ({vr.title}): {vr.error.removeprefix(vr.title + ': ')}",
                        file=sys.stderr,
                    )
                finally:
                    if gateway is not None:
                        close_variant(children, servers, gateway)
        except BenchError as exc:
            print(f"\nbenchmark failed: {exc}", file=sys.stderr)
            exit_code = 1
        except KeyboardInterrupt:
            print("\ninterrupted: stopping the processes", file=sys.stderr)
            exit_code = 130
        finally:
            previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
            try:
                children.stop_all()
            finally:
                signal.signal(signal.SIGINT, previous)
        if exit_code == 130 or not run.cases:
            return exit_code
        for vr in run.variants:
            if vr.ready_s is None:
                continue
            errors = _gateway_log_problems(log_path(vr.variant))
            if errors:
                run.notes.append(f"gateway ({vr.title}) log: {errors}")
            if args.profile:
                run.notes.append(_profile_summary(vr.variant))
        report = run.markdown() + run.details()
        print()
        print(report)
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(report)
        args.output.with_suffix(".json").write_text(json.dumps(run.as_json(), indent=2) + "\n")
        print(f"written: {args.output} (and {args.output.with_suffix('.json').name}); logs in {RESULTS}")
    return exit_code


def _extra_cases(
    run: Run, children: Children, args: argparse.Namespace, servers: Servers, gateway: Gateway
) -> None:
    """The one-connection and paced-stream cases, through the gateway of the direct comparison."""
    if args.one_connection:
        run.one_connection["gateway"] = measure_one_connection(run, servers, gateway.key, gateway.run.variant)
    pids = [gateway.proc.pid, *servers.worker_pids]
    for count in args.paced_counts:
        run.paced.append(paced_case(children, args, servers, gateway.key, count, pids))


def paced_case(
    children: Children,
    args: argparse.Namespace,
    servers: Servers,
    key: str | None,
    count: int,
    pids: list[int],
) -> paced.PacedCase:
    target = "direct" if key is None else "gateway"
    port = servers.upstream_port if key is None else servers.gateway_port
    assert port is not None
    return paced.run_paced(
        children,
        port,
        key,
        target=target,
        streams=count,
        rounds=args.paced_rounds,
        server_pids=pids,
        timeout=args.request_timeout,
    )


def _profile_summary(variant: Variant) -> str:
    """A gateway's cProfile output as text: the top functions by own time and by cumulative time."""
    profile = profile_path(variant)
    if not profile.exists():
        return f"profile ({variant.title}): the gateway wrote no profile (it did not exit cleanly)"
    text = io.StringIO()
    stats = pstats.Stats(str(profile), stream=text)
    stats.strip_dirs().sort_stats("tottime").print_stats(30)
    stats.sort_stats("cumulative").print_stats(40)
    out = RESULTS / f"gateway-{variant.id}-profile.txt"
    out.write_text(text.getvalue())
    return f"gateway ({variant.title}) ran under cProfile (CPU figures inflated); top functions in {out}"


def _gateway_log_problems(path: Path) -> str:
    """A count of ERROR/Traceback lines in the gateway's log, with the first one."""
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    bad = [line for line in lines if " ERROR " in line or line.startswith("Traceback")]
    if not bad:
        return ""
    return f"{len(bad)} ERROR/Traceback lines, first: {bad[0][:300]}"


def _git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "gateway"],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
        return out + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


if __name__ == "__main__":
    sys.exit(main())
