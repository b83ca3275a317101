"""Memory over a streaming soak: one worker's RSS idle, under many concurrent streams, and after.

``python -m benchmarks.soak`` (run by ``make bench`` after the main harness) measures two kinds
of streams, each on a fresh gateway (the default configuration: policy and metrics on, one
worker) in front of the bench upstream. It sends a few requests of each kind, lets the gateway
settle and reads its RSS (**idle**). Then the built-in load generator keeps ``--streams``
streams open at once for ``--duration`` seconds while the RSS is sampled every half second
(**under load**: the largest sample): **paced** streams (the upstream's ``bench-paced`` model, a
delta every 20 ms, 64 in all, about 1.3 s a stream, as a model generates) or **fast** ones (the
fast model's stream, sent again as soon as it ends: thousands of streams a minute). The load
stops; after ``--settle`` seconds the RSS is read again (**after**). The budget: idle at most
``BUDGET_RSS_MB`` (80 MB), after within 20 % of idle.

It prints the table and writes ``results/soak.md`` and ``results/soak.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from pathlib import Path
from typing import Any

from benchmarks.common import BUDGET_RSS_MB, CHAT_PATH, MESSAGES, MODEL, PACED_MODEL, RESULTS
from benchmarks.harness import run_guarded, run_load, start_gateway, start_upstream, write_report
from benchmarks.probes import request_headers, sanity
from benchmarks.processes import Children
from benchmarks.procstat import rss_kib

AFTER_BUDGET = 1.20  # after the soak: within 20 % of idle


def _stream_body(model: str) -> str:
    payload = {"model": model, "messages": MESSAGES, "stream": True}
    return json.dumps(payload, separators=(",", ":"))


def _mb(kib: int | None) -> float | None:
    return None if kib is None else kib / 1024


class Sampler:
    """The largest RSS of ``pid`` over the time it runs (sampled every ``interval`` seconds)."""

    def __init__(self, pid: int, interval: float = 0.5) -> None:
        self.pid = pid
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, rss_kib(self.pid) or 0)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)


def _warm(port: int, key: str) -> None:
    """A few requests of each kind, so that idle means "has served", not "never touched"."""
    for _ in range(3):
        sanity(port, key, "gateway")


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}"


def report(rows: list[dict[str, Any]]) -> str:
    first = rows[0]
    lines = [
        f"### Memory over a streaming soak ({first['streams']} concurrent streams for "
        f"{first['duration']:g} s, one worker, a fresh gateway per kind)",
        "",
        "| streams | idle RSS MB | RSS under load MB (peak) | RSS after MB | after / idle | "
        "streams completed | failures |",
        "|---|---|---|---|---|---|---|",
    ]
    verdicts = []
    for row in rows:
        idle, load, after = row["idle_mb"], row["load_mb"], row["after_mb"]
        ratio = after / idle if idle and after else None
        lines.append(
            f"| {row['kind']} | {_fmt(idle)} | {_fmt(load)} | {_fmt(after)} | "
            f"{'n/a' if ratio is None else f'{ratio:.2f}'} | {row['completed']:,} | {row['failures']} |"
        )
        verdicts.append(
            f"- {row['kind']}: idle at most {BUDGET_RSS_MB:g} MB "
            + ("met" if idle is not None and idle <= BUDGET_RSS_MB else "NOT met")
            + f"; after within {AFTER_BUDGET - 1:.0%} of idle "
            + ("met" if ratio is not None and ratio <= AFTER_BUDGET else "NOT met")
            + "."
        )
    lines += ["", *verdicts]
    return "\n".join(lines) + "\n"


def soak(children: Children, workdir: Path, kind: str, args: argparse.Namespace) -> dict[str, Any]:
    """One fresh gateway: idle, under ``kind`` streams, after."""
    try:
        _, upstream_port = start_upstream(children, "benchmarks.upstream", "soak-upstream.log")
        gateway = start_gateway(children, workdir, upstream_port, log=f"gateway-soak-{kind}.log")
        _warm(gateway.port, gateway.key)
        time.sleep(args.settle)
        idle = rss_kib(gateway.pid)
        print(
            f"- {kind}: idle {_fmt(_mb(idle))} MB; {args.streams} streams for {args.duration:g} s ...",
            flush=True,
        )
        with Sampler(gateway.pid) as sampler:
            result = run_load(
                children,
                gateway.port,
                path=CHAT_PATH,
                body=_stream_body(PACED_MODEL if kind == "paced" else MODEL),
                headers=request_headers(gateway.key),
                connections=args.streams,
                duration=args.duration,
                warmup=1.0,
                watch=[gateway.pid],
                stream=True,
                timeout=60.0,
            )
        time.sleep(args.settle)
        after = rss_kib(gateway.pid)
        return {
            "kind": kind,
            "streams": args.streams,
            "duration": args.duration,
            "idle_mb": _mb(idle),
            "load_mb": _mb(sampler.peak or None),
            "after_mb": _mb(after),
            "completed": int(result.get("completed", 0)),
            "failures": sum(result.get("errors", {}).values()),
            "errors": result.get("errors", {}),
        }
    finally:
        children.stop_all()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--streams", type=int, default=200, help="concurrent streams (200)")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of load (60)")
    parser.add_argument(
        "--kinds",
        default="paced,fast",
        help="paced (like a model generating) and/or fast (back to back, as fast as the upstream "
        "answers), each on its own gateway (default: paced,fast)",
    )
    parser.add_argument(
        "--settle", type=float, default=15.0, help="seconds idle before 'idle' and 'after' (15)"
    )
    args = parser.parse_args(argv)
    kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    if not kinds or set(kinds) - {"paced", "fast"}:
        parser.error("--kinds: paced, fast or both")
    rows = run_guarded("soak", lambda children, workdir: [soak(children, workdir, k, args) for k in kinds])
    if rows is None:
        return 1
    write_report("soak.md", [report(rows).rstrip("\n")])
    (RESULTS / "soak.json").write_text(json.dumps(rows, indent=2) + "\n")
    return 0 if all(not r["failures"] and r["completed"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
