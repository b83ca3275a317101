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
import os
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from benchmarks.common import BUDGET_RSS_MB, CHAT_PATH, MESSAGES, MODEL, PACED_MODEL, RESULTS, BenchError
from benchmarks.probes import request_headers, sanity, wait_healthy
from benchmarks.processes import Children, free_port, start_listener
from benchmarks.procstat import rss_kib
from benchmarks.variants import gateway_config

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


def _load(port: int, key: str, model: str, args: argparse.Namespace, watch: list[int]) -> dict[str, Any]:
    spec = {
        "host": "127.0.0.1",
        "port": port,
        "method": "POST",
        "path": CHAT_PATH,
        "headers": request_headers(key),
        "body": _stream_body(model),
        "connections": args.streams,
        "duration": args.duration,
        "warmup": 1.0,
        "timeout": 60.0,
        "stream": True,
        "watch_pids": watch,
    }
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.loadgen"],
        input=json.dumps(spec).encode(),
        capture_output=True,
        timeout=args.duration + 120,
        check=False,
    )
    if out.returncode != 0:
        raise BenchError(f"the load generator failed: {out.stderr.decode(errors='replace')}")
    result: dict[str, Any] = json.loads(out.stdout)
    return result


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


def soak(kind: str, args: argparse.Namespace) -> dict[str, Any]:
    """One fresh gateway: idle, under ``kind`` streams, after."""
    children = Children()
    key = "sk-bench-" + secrets.token_hex(12)
    try:
        with (
            tempfile.TemporaryDirectory(prefix="gateway-bench-soak-") as tmp,
            open(RESULTS / "soak-upstream.log", "wb") as upstream_log,
        ):
            _, upstream_port = start_listener(children, "upstream", "benchmarks.upstream", upstream_log)
            port = free_port()
            config = Path(tmp) / "gateway.toml"
            config.write_text(
                gateway_config(
                    port=port, upstream_port=upstream_port, key=key, data_dir=Path(tmp) / "redis", extra=[]
                )
            )
            log = RESULTS / f"gateway-soak-{kind}.log"
            with open(log, "wb") as log_file:
                gateway = children.spawn(
                    "gateway",
                    [sys.executable, "-m", "gateway", "serve", "--config", str(config)],
                    stdout=log_file,
                    stderr=subprocess.STDOUT,
                    env=dict(os.environ, PYTHONUNBUFFERED="1"),
                )
            wait_healthy(port, gateway, log, 30.0)
            _warm(port, key)
            time.sleep(args.settle)
            idle = rss_kib(gateway.pid)
            print(
                f"- {kind}: idle {_fmt(_mb(idle))} MB; {args.streams} streams for {args.duration:g} s ...",
                flush=True,
            )
            with Sampler(gateway.pid) as sampler:
                result = _load(port, key, PACED_MODEL if kind == "paced" else MODEL, args, [gateway.pid])
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
    RESULTS.mkdir(parents=True, exist_ok=True)
    try:
        rows = [soak(kind, args) for kind in kinds]
    except BenchError as exc:
        print(f"soak benchmark failed: {exc}", file=sys.stderr)
        return 1
    text = report(rows)
    print()
    print(text)
    (RESULTS / "soak.md").write_text(text)
    (RESULTS / "soak.json").write_text(json.dumps(rows, indent=2) + "\n")
    return 0 if all(not r["failures"] and r["completed"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
