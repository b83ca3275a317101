"""The set-up the side benchmarks share (embeddings, messages, responses, cluster, soak, chain
depth): a bench upstream, a gateway with a generated config in front of it, a load run in its
own process with the gateway's CPU read from ``/proc`` over the measured window, a check that
nothing failed, and the Markdown table of the cases.

A side benchmark runs its cases one after the other on the same gateway
(:func:`run_guarded` stops every process it started, also on failure), and reports per case
req/s, p50/p99 and the gateway's CPU per response (:class:`Row`).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import secrets
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from benchmarks.common import RESULTS, BenchError
from benchmarks.load import Figures, per_request_ms
from benchmarks.probes import request_headers, wait_healthy
from benchmarks.processes import Children, free_port, run_client, start_listener
from benchmarks.report import fmt
from benchmarks.variants import gateway_config

T = TypeVar("T")


def new_key() -> str:
    """A gateway key for one run."""
    return "sk-bench-" + secrets.token_hex(12)


def case_parser(description: str | None) -> argparse.ArgumentParser:
    """The options of a side benchmark: ``--duration``, ``--warmup``, ``--connections``."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--duration", type=float, default=8.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--connections", type=int, default=32)
    return parser


def run_guarded(what: str, body: Callable[[Children, Path], T]) -> T | None:
    """``body`` with the processes it starts and a temporary directory for their files: the
    processes are stopped when it returns or fails, then the directory is removed; on a
    :class:`BenchError` one line on stderr and None."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f"gateway-bench-{what.replace(' ', '-')}-") as tmp:
        children = Children()
        try:
            return body(children, Path(tmp))
        except BenchError as exc:
            print(f"{what} benchmark failed: {exc}", file=sys.stderr)
            return None
        finally:
            children.stop_all()


def start_upstream(children: Children, module: str, log: str) -> tuple[subprocess.Popen[bytes], int]:
    """A bench upstream (``python -m module``), its stderr in ``results/<log>``; it and its port."""
    with open(RESULTS / log, "wb") as log_file:
        return start_listener(children, "upstream", module, log_file)


@dataclass(frozen=True)
class Gateway:
    proc: subprocess.Popen[bytes]
    port: int
    key: str  # the generated config's key

    @property
    def pid(self) -> int:
        return self.proc.pid


def start_gateway(
    children: Children,
    workdir: Path,
    upstream_port: int,
    *,
    log: str,
    key: str | None = None,
    extra: Sequence[Path] = (),
    toml: str = "",
    redis_url: str | None = None,
    name: str = "gateway",
) -> Gateway:
    """``gateway serve`` with the generated config (one worker; the ``extra`` files, then the
    ``toml`` text appended; the given Redis instead of the embedded one), its output in
    ``results/<log>``, its files in a new directory under ``workdir``; returned once
    ``/healthz`` answers."""
    workdir = Path(tempfile.mkdtemp(prefix="gateway-", dir=workdir))
    port = free_port()
    key = key or new_key()
    data_dir = workdir / "redis"
    text = gateway_config(
        port=port, upstream_port=upstream_port, key=key, data_dir=data_dir, extra=list(extra)
    )
    if redis_url is not None:
        text = text.replace(f"data_dir = {json.dumps(str(data_dir))}", f"url = {json.dumps(redis_url)}")
    config = workdir / "gateway.toml"
    config.write_text(text + toml)
    path = RESULTS / log
    with open(path, "wb") as log_file:
        proc = children.spawn(
            name,
            [sys.executable, "-m", "gateway", "serve", "--config", str(config)],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env=dict(os.environ, PYTHONUNBUFFERED="1"),
            grace=15.0,
        )
    wait_healthy(port, proc, path, 30.0)
    return Gateway(proc, port, key)


def run_load(
    children: Children,
    port: int,
    *,
    path: str,
    body: str,
    headers: list[tuple[str, str]],
    connections: int,
    duration: float,
    warmup: float,
    watch: list[int],
    stream: bool = False,
    timeout: float = 30.0,
    expect: str | None = None,
    reject: Sequence[str] = (),
) -> dict[str, Any]:
    """The built-in load generator (:mod:`benchmarks.loadgen`): ``connections`` keep-alive
    connections sending ``POST path`` back to back; its result (the CPU of ``watch`` included)."""
    spec: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": port,
        "method": "POST",
        "path": path,
        "headers": headers,
        "body": body,
        "connections": connections,
        "duration": duration,
        "warmup": warmup,
        "timeout": timeout,
        "stream": stream,
        "watch_pids": watch,
    }
    if expect is not None:
        spec["expect"] = expect
        spec["reject"] = list(reject)
    return run_client(
        children, "load generator", "benchmarks.loadgen", spec, warmup + duration + timeout + 60
    )


def post_once(port: int, path: str, body: str, headers: list[tuple[str, str]]) -> tuple[int, str]:
    """One ``POST path`` to the gateway before the load: its status and body."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request("POST", path, body=body, headers=dict(headers))
        reply = connection.getresponse()
        return reply.status, reply.read().decode()
    finally:
        connection.close()


@dataclass(frozen=True)
class Row(Figures):
    """A measured case: its load's result and the gateway's CPU ms per response."""

    title: str
    result: dict[str, Any]
    cpu_ms: float | None


def measure(title: str, pid: int, args: argparse.Namespace, load: Callable[[], dict[str, Any]]) -> Row:
    """Run ``load`` (announced with ``args.warmup`` and ``args.duration``); a case with a failed
    or no response is an error."""
    print(f"- {title}: {args.warmup:g} s warm-up + {args.duration:g} s ...", flush=True)
    return checked(title, load(), pid)


def checked(title: str, result: dict[str, Any], pid: int) -> Row:
    failed = sum(result.get("errors", {}).values())
    if failed or not result.get("completed"):
        raise BenchError(f"{title}: {failed} failures {result.get('errors')}")
    return Row(title, result, per_request_ms(result, pid))


@dataclass(frozen=True)
class Session:
    """A gateway under test and the run's options (``--duration``, ``--warmup``,
    ``--connections``): measures its cases one after the other, the CPU of ``watch`` read."""

    children: Children
    gateway: Gateway
    args: argparse.Namespace
    watch: list[int]

    def http(
        self,
        title: str,
        path: str,
        body: str,
        headers: list[tuple[str, str]] | None = None,
        *,
        stream: bool = False,
        expect: str | None = None,
        reject: Sequence[str] = (),
    ) -> Row:
        """``POST path`` from the built-in load generator (``headers``: JSON, the gateway's key)."""
        args = self.args
        return measure(
            title,
            self.gateway.pid,
            args,
            lambda: run_load(
                self.children,
                self.gateway.port,
                path=path,
                body=body,
                headers=headers if headers is not None else request_headers(self.gateway.key),
                connections=args.connections,
                duration=args.duration,
                warmup=args.warmup,
                watch=self.watch,
                stream=stream,
                expect=expect,
                reject=reject,
            ),
        )


def run_cases(
    what: str,
    args: argparse.Namespace,
    upstream: str,
    cases: Callable[[Session], T],
    toml: Callable[[int], str] | None = None,
) -> T | None:
    """The bench upstream ``upstream`` (a module; its log ``results/<what>-upstream.log``) and a
    gateway in front of it (``results/gateway-<what>.log``; ``toml``: config appended, given the
    upstream's port), both watched, for ``cases``; then everything stopped (:func:`run_guarded`)."""

    def body(children: Children, workdir: Path) -> T:
        proc, port = start_upstream(children, upstream, f"{what}-upstream.log")
        extra = toml(port) if toml is not None else ""
        gateway = start_gateway(children, workdir, port, log=f"gateway-{what}.log", toml=extra)
        return cases(Session(children, gateway, args, [gateway.pid, proc.pid]))

    return run_guarded(what, body)


Column = tuple[str, Callable[[Row], str]]
RPS: Column = ("req/s", lambda row: f"{row.rps:,.0f}")
P50: Column = ("p50 ms", lambda row: fmt(row.latency("p50")))
P99: Column = ("p99 ms", lambda row: fmt(row.latency("p99")))
CPU: Column = ("gateway CPU ms/req", lambda row: fmt(row.cpu_ms, 3))
CASE: Column = ("case", lambda row: row.title)
CASE_COLUMNS: tuple[Column, ...] = (CASE, RPS, P50, P99, CPU)


def table(heading: str, rows: Sequence[Row], columns: Sequence[Column] = CASE_COLUMNS) -> list[str]:
    """A Markdown heading and a table with a line per row."""
    lines = [heading, "", "| " + " | ".join(name for name, _ in columns) + " |"]
    lines.append("|" + "---|" * len(columns))
    lines += ["| " + " | ".join(cell(row) for _, cell in columns) + " |" for row in rows]
    return lines


def write_report(name: str, lines: Sequence[str]) -> str:
    """Print the report and write it to ``results/<name>``."""
    report = "\n".join(lines) + "\n"
    print()
    print(report)
    (RESULTS / name).write_text(report)
    return report
