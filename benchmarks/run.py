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
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import IO, Any

from benchmarks import procstat, wrkdriver

REPO = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
CONFIGS = Path(__file__).resolve().parent / "configs"
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
# Variants: the gateway configurations one run compares


@dataclass(frozen=True)
class Variant:
    id: str  # what --variants takes
    title: str  # what the report shows
    configs: tuple[str, ...] = ()  # files in benchmarks/configs appended to the generated config
    key_from: str | None = None  # a file in benchmarks/configs whose first [[auth.keys]] key is sent
    traces: bool = False  # OpenTelemetry traces to the harness's OTLP sink (needs the otel extra)

    @property
    def config_paths(self) -> list[Path]:
        return [CONFIGS / name for name in self.configs]


VARIANTS = (
    Variant("default", "default"),
    Variant(
        "limited-key",
        "limited key",
        configs=("policy-limited-key.toml",),
        key_from="policy-limited-key.toml",
    ),
    Variant("off", "policy and metrics off", configs=("policy-off.toml", "metrics-off.toml")),
    Variant("traces", "traces on", traces=True),
)
# The bare proxy: the other variants' CPU per request is compared with this one's.
BARE = "off"


def parse_variants(text: str | None) -> list[Variant]:
    """``--variants a,b,c`` → the variants, in the order given (``None`` or ``all``: every one)."""
    if text is None or text.strip() == "all":
        return list(VARIANTS)
    by_id = {v.id: v for v in VARIANTS}
    chosen: list[Variant] = []
    for raw in text.split(","):
        name = raw.strip()
        if not name:
            continue
        if name not in by_id:
            known = ", ".join(by_id)
            raise ValueError(f"unknown variant {name!r} (known: {known}, or all)")
        if by_id[name] not in chosen:
            chosen.append(by_id[name])
    if not chosen:
        raise ValueError("no variant named (known: " + ", ".join(by_id) + ", or all)")
    return chosen


def variant_key(variant: Variant, generated: str, override: str | None) -> str:
    """The key a variant sends: its own file's key, else ``--key``, else the generated one."""
    if variant.key_from is not None:
        data = tomllib.loads((CONFIGS / variant.key_from).read_text())
        key: str = data["auth"]["keys"][0]["key"]
        return key
    return override or generated


def traces_config(endpoint: str) -> str:
    return f"""# The "traces on" variant: every request sampled, spans exported to the harness's sink.
[telemetry]
otel_traces = true
otel_sample_ratio = 1.0
otel_endpoint = {json.dumps(endpoint)}
"""


def otel_missing() -> str | None:
    """Why the gateway could not export traces in this environment, or None if it can."""
    import importlib.util

    for module in ("opentelemetry.sdk.trace", "opentelemetry.exporter.otlp.proto.http.trace_exporter"):
        try:
            found = importlib.util.find_spec(module) is not None
        except ImportError:
            found = False
        if not found:
            return f"{module} is not installed (pip install -e '.[otel]')"
    return None


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
    """One request of each kind before any load: a clear failure beats a table of errors.

    Returns the response headers, each name prefixed by the kind ("non-streaming x-request-id").
    """
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
            extra[f"{kind} {name}"] = value
    return extra


def _timing_headers(headers: dict[str, str]) -> dict[str, str]:
    return {name: value for name, value in headers.items() if name.split(" ", 1)[1].startswith("x-gateway")}


def _check_variant(port: int, variant: Variant, headers: dict[str, str]) -> None:
    """That the variant's configuration took effect, from the sanity replies and ``/metrics``."""
    limited = "non-streaming x-ratelimit-limit-requests" in headers
    if variant.key_from is not None and not limited:
        raise BenchError(
            f"{variant.title}: the sanity reply has no x-ratelimit-limit-requests header: "
            "the key's limits are not applied"
        )
    metrics = _http(port, "GET", "/metrics").status
    wanted = 404 if "metrics-off.toml" in variant.configs else 200
    if metrics != wanted:
        raise BenchError(f"{variant.title}: GET /metrics answered {metrics}, expected {wanted}")
    if "policy-off.toml" in variant.configs and limited:
        raise BenchError(f"{variant.title}: the policy is off but the reply carries rate-limit headers")


def _upstream_stats(port: int) -> dict[str, int]:
    stats: dict[str, int] = json.loads(_http(port, "GET", "/_bench/stats").body)
    return stats


def _sink_stats(port: int) -> dict[str, int]:
    stats: dict[str, int] = json.loads(_http(port, "GET", "/_sink/stats").body)
    return stats


# ---------------------------------------------------------------------------------------------
# Load


@dataclass
class Case:
    target: str  # "direct" | "gateway"
    stream: bool
    variant: Variant | None = None  # gateway cases
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
    def mode(self) -> str:
        return "streaming" if self.stream else "non-streaming"

    @property
    def label(self) -> str:
        who = self.target
        if self.variant is not None and self.variant.id != "default":
            who += f" ({self.variant.title})"
        return f"{who}, {self.mode}"

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


def gateway_config(
    *,
    port: int,
    upstream_port: int,
    key: str,
    data_dir: Path,
    extra: list[Path],
    generated: str = "",
) -> str:
    """The config of one gateway: server, embedded Redis, one key, the bench upstream and model;
    then ``generated`` (a variant's own section), then the ``extra`` files in order."""
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
    if generated:
        text += "\n" + generated
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

    @property
    def title(self) -> str:
        return self.variant.title

    @property
    def spans_per_request(self) -> float | None:
        if self.otlp is None or not self.requests_sent:
            return None
        return self.otlp["spans"] / self.requests_sent


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
                f"| {case.label} | {_fmt(case.rps, 0)} | {_fmt(case.latency('p50'))} | "
                f"{_fmt(case.latency('p99'))} | {_fmt(case.server_cpu_ms, 3)} ({who}) | {case.failures} |"
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
                f"{_ratio(gw.latency('p99'), direct.latency('p99'))} | {_fmt(gw.server_cpu_ms, 3)} | "
                f"{_fmt(gw.rss_mb_after, 0)} |"
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
        if len(self.variants) > 1:
            out += ["", *self.variants_markdown()]
        return "\n".join(out).rstrip() + "\n"

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
                f"| {row['title']} | {row['mode']} | {_fmt(row['rps'], 0)} | {_fmt(row['p50_ms'])} | "
                f"{_fmt(row['p99_ms'])} | {_fmt(row['cpu_ms'], 3)} | {row['cpu_vs_bare']} | "
                f"{_fmt(row['rss_mb'], 0)} | {row['failed']} |"
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
                    f"({_fmt(v.spans_per_request, 2)} spans/request; below 1.00 the exporter dropped spans)"
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
        checks.append(_check("RSS", primary.rss_peak_mb, BUDGET_RSS_MB, " MB", lower=True, digits=0))
        return ["DESIGN §8 budget (per worker, default variant): " + "; ".join(checks) + "."]

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
        for v in self.variants:
            if v.ready_s is None:
                continue
            who = "gateway" if v.variant.id == "default" else f"gateway ({v.title})"
            rss = [
                f"idle {_fmt(v.rss_idle_mb, 1)} MB",
                *(_rss_line(c) for c in self.cases if c.variant is v.variant),
                f"peak (VmHWM) {_fmt(v.rss_peak_mb, 1)} MB",
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
                    **gateway(v),
                }
                for v in self.variants
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
    line = f"after {case.mode} {_fmt(case.rss_mb_after, 1)} MB"
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
    if args.connections < 1 or args.duration <= 0 or args.warmup < 0:
        p.error("--connections must be ≥ 1, --duration > 0, --warmup ≥ 0")
    for path in args.extra_config:
        if not path.is_file():
            p.error(f"--extra-config {path}: no such file")
    args.variant_list = select_variants(
        args.variants, direct_only=args.direct_only, customised=bool(args.extra_config or args.key)
    )
    if isinstance(args.variant_list, str):
        p.error(args.variant_list)
    return args


def select_variants(text: str | None, *, direct_only: bool, customised: bool) -> list[Variant] | str:
    """The variants to run, or an error message. With ``--extra-config``/``--key`` and no
    ``--variants``, only ``default`` (a run comparing settings needs one gateway, and the other
    variants' own sections may clash with the extra file's)."""
    if direct_only:
        return []
    if text is None and customised:
        return [VARIANTS[0]]
    try:
        return parse_variants(text)
    except ValueError as exc:
        return f"--variants: {exc}"


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


def _start_listener(
    children: Children, name: str, module: str, log: IO[bytes]
) -> tuple[subprocess.Popen[bytes], int]:
    """A harness server (upstream, OTLP sink) that prints ``listening host:port`` once bound."""
    proc = children.spawn(
        name,
        [sys.executable, "-m", module, "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=log,
    )
    line = _read_line(proc, time.monotonic() + 15)
    if not line.startswith("listening "):
        raise BenchError(f"unexpected {name} banner: {line!r}")
    return proc, int(line.rsplit(":", 1)[1])


@dataclass
class Servers:
    upstream_pid: int
    upstream_port: int
    gateway_pid: int | None = None
    gateway_port: int | None = None
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


def _log_path(variant: Variant) -> Path:
    return RESULTS / f"gateway-{variant.id}.log"


def _profile_path(variant: Variant) -> Path:
    return RESULTS / f"gateway-{variant.id}.prof"


def _open_variant(
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
            sink, sink_port = _start_listener(children, "otlp sink", "benchmarks.otlpsink", sink_log)
        servers.sink_pid = sink.pid
        generated = traces_config(f"http://127.0.0.1:{sink_port}/v1/traces")
        vr.config_files.insert(0, "(generated [telemetry] section: traces to the sink)")
    gateway: Gateway | None = None
    try:
        port = _free_port()
        home = workdir / variant.id
        home.mkdir()
        text = gateway_config(
            port=port,
            upstream_port=servers.upstream_port,
            key=generated_key,
            data_dir=home / "redis",
            extra=extra,
            generated=generated,
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
        profiler = ["-m", "cProfile", "-o", str(_profile_path(variant))] if args.profile else []
        if args.profile:
            _profile_path(variant).unlink(missing_ok=True)
        log = _log_path(variant)
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
        vr.ready_s = _wait_healthy(port, proc, log, args.startup_timeout)
        idle = procstat.rss_kib(proc.pid)
        vr.rss_idle_mb = idle / 1024 if idle is not None else None
        print(
            f"gateway ({vr.title}): pid {proc.pid}, port {port}, healthy after {vr.ready_s:.2f} s", flush=True
        )
        headers = _sanity(port, key, f"gateway ({vr.title})")
        _check_variant(port, variant, headers)
    except BaseException:
        if gateway is not None:
            _close_variant(children, servers, gateway)
        elif sink is not None:
            children.stop(sink)
            servers.sink_pid = None
        raise
    vr.headers = _timing_headers(headers)
    vr.requests_sent = 2
    servers.gateway_pid, servers.gateway_port = proc.pid, port
    return gateway


def _close_variant(children: Children, servers: Servers, gateway: Gateway) -> None:
    """Record the gateway's memory, stop it, then collect what its sink received and stop that."""
    vr = gateway.run
    if gateway.proc.poll() is None:
        end, peak = procstat.rss_kib(gateway.proc.pid), procstat.peak_rss_kib(gateway.proc.pid)
        vr.rss_end_mb = end / 1024 if end is not None else None
        vr.rss_peak_mb = peak / 1024 if peak is not None else None
    children.stop(gateway.proc)
    servers.gateway_pid = servers.gateway_port = None
    if gateway.sink is not None:
        assert gateway.sink_port is not None
        # After the gateway stopped: its span processor flushes what it still held on shutdown.
        with contextlib.suppress(OSError, ValueError):
            vr.otlp = _sink_stats(gateway.sink_port)
        children.stop(gateway.sink)
        servers.sink_pid = None


def _measure(
    run: Run, servers: Servers, target: str, stream: bool, key: str | None, variant: Variant | None = None
) -> Case:
    case = Case(target, stream, variant)
    if target == "gateway":
        assert servers.gateway_pid is not None
        assert servers.gateway_port is not None
        server_pid, port = servers.gateway_pid, servers.gateway_port
        redis_pids = [
            pid for pid in procstat.children(server_pid) if procstat.command_name(pid).startswith("redis")
        ]
    else:
        server_pid, port, redis_pids = servers.upstream_pid, servers.upstream_port, []
    sink = [servers.sink_pid] if target == "gateway" and servers.sink_pid is not None else []
    watch = sorted({server_pid, servers.upstream_pid, *redis_pids, *sink})
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


def _measure_variant(run: Run, servers: Servers, gateway: Gateway, streams: list[bool]) -> None:
    vr = gateway.run
    for stream in streams:
        case = _measure(run, servers, "gateway", stream, gateway.key, vr.variant)
        run.cases.append(case)
        vr.requests_sent += case.result.get("total_completed", 0) + case.result.get("in_flight_at_end", 0)
        if gateway.proc.poll() is not None:
            raise BenchError(
                f"the gateway exited with status {gateway.proc.returncode} under load; log tail:\n"
                + _log_tail(gateway.log)
            )


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
        _terminate_as_interrupt(),
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
            variants=[VariantRun(v) for v in args.variant_list],
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
            upstream, upstream_port = _start_listener(
                children, "upstream", "benchmarks.upstream", upstream_log
            )
            _sanity(upstream_port, None, "upstream")
            servers = Servers(upstream.pid, upstream_port)
            print(f"upstream: pid {upstream.pid}, port {upstream_port}")
            first: Gateway | None = None
            if todo:
                # Started (and checked) before any load, so that a gateway that cannot serve
                # fails the run in seconds; it idles while the direct cases run.
                first = _open_variant(children, args, workdir, servers, todo[0], generated_key)
            for stream in streams:
                run.cases.append(_measure(run, servers, "direct", stream, None))
            for vr in todo:
                gateway = first if first is not None and first.run is vr else None
                try:
                    if gateway is None:
                        gateway = _open_variant(children, args, workdir, servers, vr, generated_key)
                    _measure_variant(run, servers, gateway, streams)
                except BenchError as exc:
                    vr.error = str(exc)
                    exit_code = 1
                    print(
                        f"\nGATEWAY FAILURE ({vr.title}): {vr.error.removeprefix(vr.title + ': ')}",
                        file=sys.stderr,
                    )
                finally:
                    if gateway is not None:
                        _close_variant(children, servers, gateway)
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
            errors = _gateway_log_problems(_log_path(vr.variant))
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


def _profile_summary(variant: Variant) -> str:
    """A gateway's cProfile output as text: the top functions by own time and by cumulative time."""
    profile = _profile_path(variant)
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


if __name__ == "__main__":
    sys.exit(main())
