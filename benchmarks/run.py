"""Gateway versus direct upstream: throughput, latency, CPU per request, memory.

``python -m benchmarks.run`` (``make bench``) starts the minimal upstream (benchmarks.upstream)
and the gateway (``python -m gateway serve`` with a temporary config pointing at it), each in
its own process, then drives load at both, non-streaming and streaming, with ``wrk`` when it is
on PATH or the built-in generator (benchmarks.loadgen) otherwise. CPU per request is the
serving process's utime+stime over the measured window divided by the requests completed in
it. Results: a Markdown table on stdout and in benchmarks/results/latest.md (raw numbers in
latest.json, process logs next to them).
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import http.client
import io
import json
import os
import pstats
import secrets
import select
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import IO, Any

from benchmarks import procstat, wrkdriver

REPO = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
PROFILE = RESULTS / "gateway.prof"
MODEL = "bench-model"
CHAT_PATH = "/v1/chat/completions"
MESSAGES = [{"role": "user", "content": "Say hello in a few words."}]

# DESIGN.md §8, per worker on a 2-core machine.
BUDGET_CPU_MS = 0.35
BUDGET_RPS = 3000.0
BUDGET_STREAMS = 2500.0
BUDGET_RSS_MB = 80.0
# Above this much CPU used by other processes during a window, the report says so.
NOISE_CORES = 0.10


class BenchError(Exception):
    """A failure worth one line (plus a log tail), not a traceback."""


# ---------------------------------------------------------------------------------------------
# Child processes


_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the child, before exec: get SIGTERM if the harness dies without cleaning up."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class Child:
    name: str
    proc: subprocess.Popen[bytes]
    stop_signal: signal.Signals
    grace: float


class Children:
    """Every process the harness starts; each leads its own process group, stopped by id."""

    def __init__(self) -> None:
        self._children: list[Child] = []

    def spawn(
        self,
        name: str,
        argv: list[str],
        *,
        stdin: int | None = subprocess.DEVNULL,
        stdout: int | IO[bytes] | None = None,
        stderr: int | IO[bytes] | None = None,
        env: dict[str, str] | None = None,
        stop_signal: signal.Signals = signal.SIGTERM,
        grace: float = 5.0,
    ) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(
            argv,
            stdin=stdin,
            stdout=stdout,
            stderr=stderr,
            env=env,
            cwd=REPO,
            # Own session: a Ctrl-C in the terminal reaches only the harness, which then stops
            # the children in order (the gateway first, so it can stop its redis-server).
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        self._children.append(Child(name, proc, stop_signal, grace))
        return proc

    def stop(self, proc: subprocess.Popen[bytes]) -> None:
        for child in list(self._children):
            if child.proc is proc:
                self._stop(child)
                self._children.remove(child)

    def stop_all(self) -> None:
        while self._children:
            self._stop(self._children.pop())

    @staticmethod
    def _stop(child: Child) -> None:
        proc = child.proc
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(child.stop_signal)
            try:
                proc.wait(child.grace)
            except subprocess.TimeoutExpired:
                print(f"  {child.name} (pid {proc.pid}) did not stop in {child.grace:.0f}s: killing it")
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(5)
        _sweep_group(proc.pid, child.name)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _sweep_group(pgid: int, name: str) -> None:
    """Whatever the child left behind in its process group (e.g. a redis-server): TERM, then KILL."""
    if not _group_alive(pgid):
        return
    print(f"  leftover processes in {name}'s group {pgid}: stopping them")
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGTERM)
    deadline = time.monotonic() + 3.0
    while time.monotonic() < deadline and _group_alive(pgid):
        time.sleep(0.02)
    if _group_alive(pgid):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)


def _read_line(proc: subprocess.Popen[bytes], deadline: float) -> str:
    """One line from the child's stdout, without blocking past ``deadline``."""
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    data = b""
    while b"\n" not in data:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise BenchError("timed out waiting for the child to report its port")
        ready, _, _ = select.select([fd], [], [], min(remaining, 0.2))
        if ready:
            chunk = os.read(fd, 4096)
            if not chunk:
                raise BenchError(f"the child exited (status {proc.wait(1)}) before reporting its port")
            data += chunk
    return data.split(b"\n", 1)[0].decode()


def _log_tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# ---------------------------------------------------------------------------------------------
# A tiny blocking HTTP client for readiness and sanity checks


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes


def _http(
    port: int,
    method: str,
    path: str,
    *,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 10.0,
) -> Reply:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        data = resp.read()
        return Reply(resp.status, {k.lower(): v for k, v in resp.getheaders()}, data)
    finally:
        conn.close()


def _wait_healthy(port: int, proc: subprocess.Popen[bytes], log: Path, timeout: float) -> float:
    """Poll ``/healthz`` until 200; seconds it took. Fails fast if the process exits."""
    start = time.monotonic()
    deadline = start + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchError(
                f"the gateway exited with status {proc.returncode} before it was ready; log tail:\n"
                + _log_tail(log)
            )
        try:
            reply = _http(port, "GET", "/healthz", timeout=1.0)
            if reply.status == 200:
                return time.monotonic() - start
            last = f"status {reply.status}"
        except OSError as exc:
            last = repr(exc)
        time.sleep(0.05)
    raise BenchError(
        f"the gateway was not healthy within {timeout:.0f}s ({last}); log tail:\n{_log_tail(log)}"
    )


# ---------------------------------------------------------------------------------------------
# Requests


def _chat_body(stream: bool) -> str:
    payload: dict[str, Any] = {"model": MODEL, "messages": MESSAGES, "max_tokens": 16}
    if stream:
        payload["stream"] = True
        payload["stream_options"] = {"include_usage": True}
    return json.dumps(payload, separators=(",", ":"))


def _headers(key: str | None) -> list[tuple[str, str]]:
    headers = [("Content-Type", "application/json")]
    if key is not None:
        headers.append(("Authorization", f"Bearer {key}"))
    return headers


def _sanity(port: int, key: str | None, who: str) -> dict[str, str]:
    """One request of each kind before any load: a clear failure beats a table of errors."""
    extra: dict[str, str] = {}
    for stream in (False, True):
        reply = _http(port, "POST", CHAT_PATH, body=_chat_body(stream).encode(), headers=dict(_headers(key)))
        kind = "streaming" if stream else "non-streaming"
        if reply.status != 200:
            raise BenchError(f"{who} {kind} sanity request: status {reply.status}: {reply.body[:600]!r}")
        if stream:
            if b"data: [DONE]" not in reply.body or b'"error"' in reply.body:
                raise BenchError(f"{who} {kind} sanity request: unexpected stream: {reply.body[-600:]!r}")
        else:
            try:
                content = json.loads(reply.body)["choices"][0]["message"]["content"]
            except (ValueError, KeyError, IndexError, TypeError):
                raise BenchError(
                    f"{who} {kind} sanity request: unexpected body: {reply.body[:600]!r}"
                ) from None
            if not content:
                raise BenchError(f"{who} {kind} sanity request: empty content")
        for name, value in reply.headers.items():
            if name.startswith("x-gateway"):
                extra[f"{kind} {name}"] = value
    return extra


def _upstream_stats(port: int) -> dict[str, int]:
    stats: dict[str, int] = json.loads(_http(port, "GET", "/_bench/stats").body)
    return stats


# ---------------------------------------------------------------------------------------------
# Load


@dataclass
class Case:
    target: str  # "direct" | "gateway"
    stream: bool
    result: dict[str, Any] = field(default_factory=dict)
    server_cpu_ms: float | None = None  # per completed response
    upstream_cpu_ms: float | None = None
    redis_cpu_ms: float | None = None
    generator_cpu_ms: float | None = None
    upstream_calls_per_request: float | None = None
    rss_mb_after: float | None = None
    rss_mb_window: tuple[float, float] | None = None  # the gateway's RSS when the window opened/closed
    other_cores: float | None = None  # CPU used by processes outside the benchmark, in cores

    @property
    def label(self) -> str:
        return f"{self.target}, {'streaming' if self.stream else 'non-streaming'}"

    @property
    def rps(self) -> float:
        value: float = self.result.get("rps", 0.0)
        return value

    def latency(self, key: str) -> float | None:
        value: float | None = self.result.get("latency_ms", {}).get(key)
        return value

    @property
    def failures(self) -> int:
        return sum(self.result.get("errors", {}).values())


@dataclass
class Load:
    generator: str  # "wrk" | "builtin"
    connections: int
    duration: float
    warmup: float
    timeout: float
    wrk_threads: int
    workdir: Path
    children: Children

    def describe(self) -> str:
        if self.generator == "wrk":
            return f"{wrkdriver.wrk_version()} (-t{self.wrk_threads})"
        return "built-in (asyncio + uvloop, separate process)"

    def run(self, port: int, *, key: str | None, stream: bool, watch: list[int]) -> dict[str, Any]:
        if self.generator == "wrk":
            return self._run_wrk(port, key=key, stream=stream, watch=watch)
        return self._run_builtin(port, key=key, stream=stream, watch=watch)

    def _run_builtin(self, port: int, *, key: str | None, stream: bool, watch: list[int]) -> dict[str, Any]:
        spec = {
            "host": "127.0.0.1",
            "port": port,
            "method": "POST",
            "path": CHAT_PATH,
            "headers": _headers(key),
            "body": _chat_body(stream),
            "connections": self.connections,
            "duration": self.duration,
            "warmup": self.warmup,
            "timeout": self.timeout,
            "stream": stream,
            "watch_pids": watch,
        }
        proc = self.children.spawn(
            "load generator",
            [sys.executable, "-m", "benchmarks.loadgen"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            grace=3.0,
        )
        try:
            out, err = proc.communicate(
                json.dumps(spec).encode(), timeout=self.warmup + self.duration + self.timeout + 30
            )
        except subprocess.TimeoutExpired:
            raise BenchError("the load generator did not finish in time") from None
        finally:
            self.children.stop(proc)
        if proc.returncode != 0:
            raise BenchError(
                f"the load generator failed ({proc.returncode}):\n{err.decode(errors='replace')}"
            )
        result: dict[str, Any] = json.loads(out)
        return result

    def _run_wrk(self, port: int, *, key: str | None, stream: bool, watch: list[int]) -> dict[str, Any]:
        script = self.workdir / f"wrk-{'stream' if stream else 'plain'}.lua"
        wrkdriver.write_script(script, body=_chat_body(stream), headers=_headers(key), stream=stream)
        url = f"http://127.0.0.1:{port}{CHAT_PATH}"

        def once(seconds: float) -> dict[str, Any]:
            argv = wrkdriver.wrk_command(
                url,
                script,
                connections=self.connections,
                seconds=seconds,
                threads=self.wrk_threads,
                timeout=self.timeout,
            )
            proc = self.children.spawn("wrk", argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, grace=3.0)
            try:
                out, err = proc.communicate(timeout=seconds + self.timeout + 30)
            except subprocess.TimeoutExpired:
                raise BenchError("wrk did not finish in time") from None
            finally:
                self.children.stop(proc)
            if proc.returncode != 0:
                raise BenchError(f"wrk failed ({proc.returncode}):\n{err.decode(errors='replace')}")
            return wrkdriver.parse_output(out.decode(errors="replace"))

        warm_requests = 0
        if self.warmup > 0:
            warm_requests = int(once(self.warmup)["requests"])
        busy_before = procstat.busy_ticks()
        before = procstat.cpu_ticks_many(watch)
        rss_before = {pid: procstat.rss_kib(pid) for pid in watch}
        t0, times0 = time.perf_counter(), os.times()
        raw = once(self.duration)
        t1, times1 = time.perf_counter(), os.times()
        # wrk is the only child reaped in between: its CPU shows in the children's times.
        wrk_cpu = (times1.children_user - times0.children_user) + (
            times1.children_system - times0.children_system
        )
        after = procstat.cpu_ticks_many(watch)
        busy = (procstat.busy_ticks() - busy_before) / procstat.CLK_TCK
        rss = {str(pid): [rss_before[pid], procstat.rss_kib(pid)] for pid in watch}
        window = raw["duration_us"] / 1e6
        failed_status = int(raw["status"])
        bad_body = int(raw["bad_body"])
        ok = int(raw["requests"]) - failed_status - bad_body
        errors = {name: int(raw[name]) for name in ("connect", "read", "write", "timeout") if int(raw[name])}
        if failed_status:
            errors["status >= 400"] = failed_status
        if bad_body:
            errors["stream without [DONE] or with an error event"] = bad_body
        cpu: dict[str, float | None] = {}
        for pid in watch:
            b, a = before.get(pid), after.get(pid)
            cpu[str(pid)] = None if a is None or b is None else (a - b) / procstat.CLK_TCK
        return {
            "generator": "wrk",
            "window_s": window,
            "cpu_window_s": t1 - t0,
            "ok": ok,
            "completed": int(raw["requests"]),
            "rps": ok / window if window > 0 else 0.0,
            "latency_ms": {
                "p50": raw["p50_us"] / 1000,
                "p90": raw["p90_us"] / 1000,
                "p99": raw["p99_us"] / 1000,
                "max": raw["max_us"] / 1000,
                "mean": raw["mean_us"] / 1000,
            },
            "statuses": {},
            "errors": errors,
            "sample_bad": None,
            "bytes_read": int(raw["bytes"]),
            "cpu_seconds": cpu,
            "rss_kib": rss,
            "machine_busy_s": busy,
            "generator_cpu_s": wrk_cpu,
            # Each wrk run ends with up to one request in flight per connection.
            "in_flight_at_end": self.connections * (2 if self.warmup > 0 else 1),
            "total_completed": warm_requests + int(raw["requests"]),
        }


def _other_load(result: dict[str, Any]) -> float | None:
    """Cores' worth of CPU that neither the watched processes nor the generator used."""
    busy, window = result.get("machine_busy_s"), result.get("window_s")
    if busy is None or not window:
        return None
    ours = sum(v for v in result["cpu_seconds"].values() if v is not None)
    ours += result.get("generator_cpu_s") or 0.0
    other: float = max(0.0, busy - ours) / window
    return other


def _per_request_ms(result: dict[str, Any], pid: int | None) -> float | None:
    if pid is None:
        return None
    seconds = result["cpu_seconds"].get(str(pid))
    done = result["completed"]
    if seconds is None or not done:
        return None
    value: float = seconds / done * 1000
    return value


# ---------------------------------------------------------------------------------------------
# The gateway's configuration


def gateway_config(*, port: int, upstream_port: int, key: str, data_dir: Path, extra: list[Path]) -> str:
    text = f"""# Written by benchmarks/run.py for one run.
[server]
host = "127.0.0.1"
port = {port}

[redis]
data_dir = {json.dumps(str(data_dir))}
key_prefix = "bench:"

[[auth.keys]]
name = "bench"
key = {json.dumps(key)}

[[providers]]
name = "bench"
kind = "openai-compatible"
base_url = "http://127.0.0.1:{upstream_port}/v1"
api_key = "sk-bench-upstream"

[[models]]
name = {json.dumps(MODEL)}
provider = "bench"
"""
    for path in extra:
        text += f"\n# --- from {path}\n" + path.read_text()
        if not text.endswith("\n"):
            text += "\n"
    return text


# ---------------------------------------------------------------------------------------------
# Report


def _fmt(value: float | None, digits: int = 2, suffix: str = "") -> str:
    if value is None:
        return "n/a"
    return f"{value:,.{digits}f}{suffix}"


def _ratio(a: float | None, b: float | None) -> str:
    if a is None or b is None or b == 0:
        return "n/a"
    return f"{a / b:.2f}×"  # noqa: RUF001


@dataclass
class Run:
    machine: dict[str, str | int]
    load: Load
    started: datetime
    commit: str
    cases: list[Case] = field(default_factory=list)
    gateway_rss_idle_mb: float | None = None
    gateway_rss_end_mb: float | None = None
    gateway_rss_peak_mb: float | None = None
    gateway_ready_s: float | None = None
    gateway_headers: dict[str, str] = field(default_factory=dict)
    gateway_error: str | None = None
    notes: list[str] = field(default_factory=list)
    profiled: bool = False

    def find(self, target: str, stream: bool) -> Case | None:
        for case in self.cases:
            if case.target == target and case.stream == stream:
                return case
        return None

    def markdown(self) -> str:
        m, load = self.machine, self.load
        out = [
            "### Gateway vs direct upstream",
            "",
            f"{m['cpu']} (nproc {m['nproc']}), Python {m['python']}, Linux {m['kernel']}; "
            f"load: {load.describe()}, {load.connections} connections, {load.duration:g} s measured "
            f"after {load.warmup:g} s warm-up; commit {self.commit}, {self.started:%Y-%m-%d %H:%M} UTC."
            + (" **Gateway under cProfile: its CPU figures are inflated.**" if self.profiled else ""),
            "",
            "| case | req/s | p50 ms | p99 ms | server CPU ms/req | failed |",
            "|---|--:|--:|--:|--:|--:|",
        ]
        for case in self.cases:
            who = "gateway" if case.target == "gateway" else "upstream"
            out.append(
                f"| {case.label} | {_fmt(case.rps, 0)} | {_fmt(case.latency('p50'))} | "
                f"{_fmt(case.latency('p99'))} | {_fmt(case.server_cpu_ms, 3)} ({who}) | {case.failures} |"
            )
        ratios = []
        for stream in (False, True):
            gw, direct = self.find("gateway", stream), self.find("direct", stream)
            if gw is None or direct is None:
                continue
            ratios.append(
                f"| {'streaming' if stream else 'non-streaming'} | {_ratio(gw.rps, direct.rps)} | "
                f"{_ratio(gw.latency('p50'), direct.latency('p50'))} | "
                f"{_ratio(gw.latency('p99'), direct.latency('p99'))} | {_fmt(gw.server_cpu_ms, 3)} | "
                f"{_fmt(gw.rss_mb_after, 0)} |"
            )
        if ratios:
            out += [
                "",
                "| gateway / direct | throughput | p50 latency | p99 latency | gateway CPU ms/req | gateway RSS MB |",
                "|---|--:|--:|--:|--:|--:|",
                *ratios,
            ]
        if self.gateway_error:
            lines = [line for line in self.gateway_error.splitlines() if line.strip()]
            reason = lines[0] + (f" … {lines[-1].strip()}" if len(lines) > 1 else "")
            out += ["", f"Gateway not measured: {reason}"]
        out += ["", *self._budget_lines()]
        noisy = [c for c in self.cases if c.other_cores is not None and c.other_cores > NOISE_CORES]
        if noisy:
            worst = max(c.other_cores or 0.0 for c in noisy)
            out.append(
                f"Warning: other processes used up to {worst:.2f} cores during "
                + ", ".join(c.label for c in noisy)
                + "; throughput and latency there are disturbed."
            )
        return "\n".join(out).rstrip() + "\n"

    def _budget_lines(self) -> list[str]:
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
        checks.append(_check("RSS", self.gateway_rss_peak_mb, BUDGET_RSS_MB, " MB", lower=True, digits=0))
        return ["DESIGN §8 budget (per worker): " + "; ".join(checks) + "."]

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
                f"| {c.label} | {c.result.get('ok', 0):,} | {_fmt(c.latency('p90'))} | {_fmt(c.latency('max'))} | "
                f"{_fmt(c.upstream_cpu_ms, 3)} | {_fmt(c.redis_cpu_ms, 3)} | {_fmt(c.generator_cpu_ms, 3)} | "
                f"{_fmt(c.upstream_calls_per_request, 2)} | {_fmt(c.other_cores, 2)} | {statuses} |"
            )
        for c in self.cases:
            if c.result.get("errors"):
                out.append(f"- {c.label}: failures {c.result['errors']}")
                if c.result.get("sample_bad"):
                    out.append(f"  - first one: `{c.result['sample_bad'][:400]}`")
        if self.gateway_ready_s is not None:
            rss = [
                f"idle {_fmt(self.gateway_rss_idle_mb, 1)} MB",
                *(_rss_line(c) for c in self.cases if c.target == "gateway"),
                f"peak (VmHWM) {_fmt(self.gateway_rss_peak_mb, 1)} MB",
            ]
            out.append(f"- gateway ready in {self.gateway_ready_s:.2f} s; RSS: " + ", ".join(rss))
        if self.gateway_headers:
            out.append(
                "- gateway timing headers (sanity request): "
                + ", ".join(f"{k}={v}" for k, v in sorted(self.gateway_headers.items()))
            )
        out += [f"- {note}" for note in self.notes]
        return "\n".join(out) + "\n"

    def as_json(self) -> dict[str, Any]:
        return {
            "machine": self.machine,
            "generator": self.load.describe(),
            "connections": self.load.connections,
            "duration": self.load.duration,
            "warmup": self.load.warmup,
            "commit": self.commit,
            "started": self.started.isoformat(),
            "gateway": {
                "ready_s": self.gateway_ready_s,
                "rss_idle_mb": self.gateway_rss_idle_mb,
                "rss_end_mb": self.gateway_rss_end_mb,
                "rss_peak_mb": self.gateway_rss_peak_mb,
                "error": self.gateway_error,
            },
            "cases": [
                {
                    "case": c.label,
                    "server_cpu_ms_per_request": c.server_cpu_ms,
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
    line = f"after {case.label} {_fmt(case.rss_mb_after, 1)} MB"
    if case.rss_mb_window is not None:
        start, end = case.rss_mb_window
        line += f" ({start:.1f} → {end:.1f} MB over the measured window)"
    return line


def _check(name: str, value: float | None, budget: float, unit: str, *, lower: bool, digits: int) -> str:
    if value is None:
        return f"{name} n/a"
    ok = value <= budget if lower else value >= budget
    sign = "≤" if lower else "≥"
    return f"{name} {_fmt(value, digits)}{unit} ({'ok' if ok else 'MISSED'}, {sign} {budget:,g}{unit})"


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


# ---------------------------------------------------------------------------------------------
# Main


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.split("\n\n")[0])
    p.add_argument("--connections", type=int, default=32, help="concurrent keep-alive connections (32)")
    p.add_argument("--duration", type=float, default=10.0, help="measured seconds per case (10)")
    p.add_argument("--warmup", type=float, default=2.0, help="unmeasured seconds before each case (2)")
    p.add_argument(
        "--mode", choices=("both", "non-streaming", "streaming"), default="both", help="which request kinds"
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
        help="TOML appended to the gateway's generated config (repeatable)",
    )
    p.add_argument(
        "--key",
        metavar="SECRET",
        help="send this gateway key instead of the generated one (declare it with --extra-config, "
        "e.g. an [[auth.keys]] entry with limits and budgets so the policy runs its Redis script)",
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
        help="run the gateway under cProfile (its CPU figures grow); top functions to results/gateway-profile.txt",
    )
    p.add_argument(
        "--output", type=Path, default=RESULTS / "latest.md", help="where to write the Markdown report"
    )
    args = p.parse_args(argv)
    if args.connections < 1 or args.duration <= 0 or args.warmup < 0:
        p.error("--connections must be ≥ 1, --duration > 0, --warmup ≥ 0")
    for path in args.extra_config:
        if not path.is_file():
            p.error(f"--extra-config {path}: no such file")
    return args


@contextlib.contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    """SIGINT/SIGTERM/SIGHUP unwind as KeyboardInterrupt, so the ``finally`` blocks stop the children."""

    def handler(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    previous: dict[signal.Signals, Callable[[int, FrameType | None], Any] | int | None] = {}
    for sig in (signal.SIGTERM, signal.SIGHUP):
        previous[sig] = signal.signal(sig, handler)
    # Also when started in the background by a shell, which leaves SIGINT ignored.
    previous[signal.SIGINT] = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _start_upstream(children: Children, log: IO[bytes]) -> tuple[subprocess.Popen[bytes], int]:
    proc = children.spawn(
        "upstream",
        [sys.executable, "-m", "benchmarks.upstream", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=log,
    )
    line = _read_line(proc, time.monotonic() + 15)
    if not line.startswith("listening "):
        raise BenchError(f"unexpected upstream banner: {line!r}")
    return proc, int(line.rsplit(":", 1)[1])


def _start_gateway(
    children: Children,
    args: argparse.Namespace,
    workdir: Path,
    upstream_port: int,
    key: str,
    log_path: Path,
    log: IO[bytes],
) -> tuple[subprocess.Popen[bytes], int, float]:
    port = _free_port()
    config = workdir / "gateway.toml"
    config.write_text(
        gateway_config(
            port=port,
            upstream_port=upstream_port,
            key=key,
            data_dir=workdir / "redis",
            extra=args.extra_config,
        )
    )
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    profiler = ["-m", "cProfile", "-o", str(PROFILE)] if args.profile else []
    proc = children.spawn(
        "gateway",
        [sys.executable, *profiler, "-m", "gateway", "serve", "--config", str(config)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        # SIGINT: uvicorn shuts down gracefully, then re-raises it, which cProfile survives (a
        # re-raised SIGTERM would kill the process before the profile is written).
        stop_signal=signal.SIGINT,
        grace=15.0,
    )
    ready = _wait_healthy(port, proc, log_path, args.startup_timeout)
    return proc, port, ready


@dataclass
class Servers:
    upstream_pid: int
    upstream_port: int
    gateway_pid: int | None = None
    gateway_port: int | None = None


def _measure(run: Run, servers: Servers, target: str, stream: bool, key: str | None) -> Case:
    case = Case(target, stream)
    if target == "gateway":
        assert servers.gateway_pid is not None
        assert servers.gateway_port is not None
        server_pid, port = servers.gateway_pid, servers.gateway_port
        redis_pids = [
            pid for pid in procstat.children(server_pid) if procstat.command_name(pid).startswith("redis")
        ]
    else:
        server_pid, port, redis_pids = servers.upstream_pid, servers.upstream_port, []
    watch = sorted({server_pid, servers.upstream_pid, *redis_pids})
    counter = "streams" if stream else "completions"
    print(f"- {case.label}: {run.load.warmup:g} s warm-up + {run.load.duration:g} s ...", flush=True)
    before = _upstream_stats(servers.upstream_port)[counter]
    result = run.load.run(port, key=key, stream=stream, watch=watch)
    after = _upstream_stats(servers.upstream_port)[counter]
    case.result = result
    case.server_cpu_ms = _per_request_ms(result, server_pid)
    if target == "gateway":
        case.upstream_cpu_ms = _per_request_ms(result, servers.upstream_pid)
        redis = [v for v in (_per_request_ms(result, pid) for pid in redis_pids) if v is not None]
        case.redis_cpu_ms = sum(redis) if redis else None
        # Requests cut off at the end were sent too (most reached the upstream): count them, so
        # that one upstream call per request reads 1.00 and retries or duplicates show above it.
        sent = result.get("total_completed", 0) + result.get("in_flight_at_end", 0)
        if sent:
            case.upstream_calls_per_request = (after - before) / sent
    if result.get("generator_cpu_s") is not None and result["completed"]:
        case.generator_cpu_ms = result["generator_cpu_s"] / result["completed"] * 1000
    case.other_cores = _other_load(result)
    if servers.gateway_pid is not None:
        rss = procstat.rss_kib(servers.gateway_pid)
        case.rss_mb_after = rss / 1024 if rss is not None else None
    if target == "gateway":
        start, end = result.get("rss_kib", {}).get(str(server_pid), [None, None])
        if start is not None and end is not None:
            case.rss_mb_window = (start / 1024, end / 1024)
    print(
        f"  {case.rps:,.0f} req/s, p50 {_fmt(case.latency('p50'))} ms, p99 {_fmt(case.latency('p99'))} ms, "
        f"server CPU {_fmt(case.server_cpu_ms, 3)} ms/req, failures {case.failures}"
        + (f" {result['errors']}" if case.failures else ""),
        flush=True,
    )
    return case


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
    key = args.key or "sk-bench-" + secrets.token_hex(12)
    children = Children()
    exit_code = 0
    with (
        _terminate_as_interrupt(),
        tempfile.TemporaryDirectory(prefix="gateway-bench-") as tmp,
        open(RESULTS / "upstream.log", "wb") as upstream_log,
        open(RESULTS / "gateway.log", "wb") as gateway_log,
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
        run = Run(procstat.machine_summary(), load, datetime.now(UTC), _git_commit(), profiled=args.profile)
        if args.profile:
            PROFILE.unlink(missing_ok=True)
        print(f"machine: {run.machine}")
        print(f"load generator: {load.describe()}")
        try:
            upstream, upstream_port = _start_upstream(children, upstream_log)
            _sanity(upstream_port, None, "upstream")
            servers = Servers(upstream.pid, upstream_port)
            print(f"upstream: pid {upstream.pid}, port {upstream_port}")
            gateway: subprocess.Popen[bytes] | None = None
            if not args.direct_only:
                # Started (and checked) before any load, so that a gateway that cannot serve
                # fails the run in seconds; it idles while the direct cases run.
                gateway, port, ready = _start_gateway(
                    children, args, workdir, upstream_port, key, RESULTS / "gateway.log", gateway_log
                )
                run.gateway_ready_s = ready
                idle = procstat.rss_kib(gateway.pid)
                run.gateway_rss_idle_mb = idle / 1024 if idle is not None else None
                print(f"gateway: pid {gateway.pid}, port {port}, healthy after {ready:.2f} s")
                run.gateway_headers = _sanity(port, key, "gateway")
                servers.gateway_pid, servers.gateway_port = gateway.pid, port
            for stream in streams:
                run.cases.append(_measure(run, servers, "direct", stream, None))
            if gateway is not None:
                try:
                    for stream in streams:
                        run.cases.append(_measure(run, servers, "gateway", stream, key))
                        if gateway.poll() is not None:
                            raise BenchError(
                                f"the gateway exited with status {gateway.returncode} under load; log tail:\n"
                                + _log_tail(RESULTS / "gateway.log")
                            )
                    end, peak = procstat.rss_kib(gateway.pid), procstat.peak_rss_kib(gateway.pid)
                    run.gateway_rss_end_mb = end / 1024 if end is not None else None
                    run.gateway_rss_peak_mb = peak / 1024 if peak is not None else None
                except BenchError as exc:
                    run.gateway_error = str(exc)
                    exit_code = 1
                    print(f"\nGATEWAY FAILURE: {exc}", file=sys.stderr)
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
        errors = _gateway_log_problems(RESULTS / "gateway.log")
        if errors:
            run.notes.append(f"gateway log: {errors}")
        if args.profile:
            run.notes.append(_profile_summary())
        table = run.markdown()
        report = table + run.details()
        print()
        print(report)
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(report)
        args.output.with_suffix(".json").write_text(json.dumps(run.as_json(), indent=2) + "\n")
        print(f"written: {args.output} (and {args.output.with_suffix('.json').name}); logs in {RESULTS}")
    return exit_code


def _profile_summary() -> str:
    """The gateway's cProfile output as text: the top functions by own time and by cumulative time."""
    if not PROFILE.exists():
        return "profile: the gateway wrote no profile (it did not exit cleanly)"
    text = io.StringIO()
    stats = pstats.Stats(str(PROFILE), stream=text)
    stats.strip_dirs().sort_stats("tottime").print_stats(30)
    stats.sort_stats("cumulative").print_stats(40)
    out = RESULTS / "gateway-profile.txt"
    out.write_text(text.getvalue())
    return f"gateway ran under cProfile (CPU figures inflated); top functions in {out}"


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


if __name__ == "__main__":
    sys.exit(main())
