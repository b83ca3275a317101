"""One measured case, and the load that drives it (``wrk`` or the built-in generator)."""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks import procstat, wrkdriver
from benchmarks.common import CHAT_PATH, BenchError
from benchmarks.probes import chat_body, request_headers
from benchmarks.processes import Children, run_client
from benchmarks.variants import Variant


class Figures:
    """What a load's result says: req/s, latency quantiles, failures."""

    result: dict[str, Any]

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
class Case(Figures):
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
    workers: int = 1  # the gateway's worker processes
    server_pids: list[int] = field(default_factory=list)  # the serving processes (gateway: all of its)

    @property
    def mode(self) -> str:
        return "streaming" if self.stream else "non-streaming"

    @property
    def label(self) -> str:
        who = self.target
        if self.variant is not None and self.variant.workers is None:
            who += f" ({self.workers} workers)"
        elif self.variant is not None and self.variant.id != "default":
            who += f" ({self.variant.title})"
        return f"{who}, {self.mode}"

    def cores(self, pids: list[int]) -> float | None:
        """Cores' worth of CPU ``pids`` used over the measured window."""
        window = self.result.get("window_s")
        seconds = [self.result.get("cpu_seconds", {}).get(str(pid)) for pid in pids]
        if not window or not pids or any(v is None for v in seconds):
            return None
        used: float = sum(v for v in seconds if v is not None) / window
        return used


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
            "headers": request_headers(key),
            "body": chat_body(stream),
            "connections": self.connections,
            "duration": self.duration,
            "warmup": self.warmup,
            "timeout": self.timeout,
            "stream": stream,
            "watch_pids": watch,
        }
        return run_client(
            self.children,
            "load generator",
            "benchmarks.loadgen",
            spec,
            self.warmup + self.duration + self.timeout + 30,
        )

    def _run_wrk(self, port: int, *, key: str | None, stream: bool, watch: list[int]) -> dict[str, Any]:
        script = self.workdir / f"wrk-{'stream' if stream else 'plain'}.lua"
        wrkdriver.write_script(script, body=chat_body(stream), headers=request_headers(key), stream=stream)
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


def other_load(result: dict[str, Any]) -> float | None:
    """Cores' worth of CPU that neither the watched processes nor the generator used."""
    busy, window = result.get("machine_busy_s"), result.get("window_s")
    if busy is None or not window:
        return None
    ours = sum(v for v in result["cpu_seconds"].values() if v is not None)
    ours += result.get("generator_cpu_s") or 0.0
    other: float = max(0.0, busy - ours) / window
    return other


def per_request_ms(result: dict[str, Any], pid: int | None) -> float | None:
    if pid is None:
        return None
    seconds = result["cpu_seconds"].get(str(pid))
    done = result["completed"]
    if seconds is None or not done:
        return None
    value: float = seconds / done * 1000
    return value
