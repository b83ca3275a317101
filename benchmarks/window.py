"""The measured window of a load client (:mod:`benchmarks.loadgen`, :mod:`benchmarks.wsload`):
what its connections report (:class:`Stats`), and what the kernel says about the watched
processes, the machine and the client itself between the window's opening and closing
(:class:`Window`), put together as the client's JSON result."""

from __future__ import annotations

import asyncio
import json
import math
import os
import sys
import time
from collections import Counter
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, Self

import uvloop

from benchmarks.procstat import CLK_TCK, busy_ticks, cpu_ticks_many, rss_kib


@dataclass(kw_only=True)
class ClientSpec:
    """What every load client is given (its JSON spec; each client adds its own keys)."""

    host: str
    port: int
    path: str
    headers: list[tuple[str, str]] = field(default_factory=list)
    connections: int = 32
    duration: float = 10.0
    warmup: float = 2.0
    timeout: float = 30.0
    watch_pids: list[int] = field(default_factory=list)

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Self:
        raw = dict(raw)
        raw["headers"] = [(str(k), str(v)) for k, v in raw.get("headers", [])]
        return cls(**raw)


class Stats:
    """What the connections report; reset when the measured window opens."""

    def __init__(self) -> None:
        self.latencies_ns: list[int] = []
        self.statuses: Counter[int] = Counter()
        self.errors: Counter[str] = Counter()
        self.bytes_read = 0
        self.sample_bad: str | None = None
        self.recording = True

    def bad(self, kind: str, sample: bytes | str | None = None) -> None:
        self.errors[kind] += 1
        if self.sample_bad is None and sample is not None:
            text = sample.decode("utf-8", "replace") if isinstance(sample, bytes) else sample
            self.sample_bad = f"{kind}: {text[:600]}"


class Window:
    """Opened when created: the CPU ticks of ``watch``, the machine's busy ticks, the client's
    own CPU times and the watched processes' RSS, read again by :meth:`close`."""

    def __init__(self, watch: list[int]) -> None:
        self._watch = watch
        self._busy = busy_ticks()
        self._cpu = cpu_ticks_many(watch)
        self._rss = {pid: rss_kib(pid) for pid in watch}
        self._own = os.times()
        self._t0 = time.perf_counter()
        self._closed: dict[str, Any] | None = None

    def close(self) -> None:
        seconds = time.perf_counter() - self._t0
        cpu = cpu_ticks_many(self._watch)
        busy = (busy_ticks() - self._busy) / CLK_TCK
        rss = {str(pid): [self._rss[pid], rss_kib(pid)] for pid in self._watch}
        own = os.times()
        cpu_seconds: dict[str, float | None] = {}
        for pid in self._watch:
            before, after = self._cpu.get(pid), cpu.get(pid)
            cpu_seconds[str(pid)] = None if before is None or after is None else (after - before) / CLK_TCK
        self._closed = {
            "window_s": seconds,
            "cpu_seconds": cpu_seconds,
            "rss_kib": rss,
            "machine_busy_s": busy,
            "generator_cpu_s": (own.user - self._own.user) + (own.system - self._own.system),
        }

    def result(self, generator: str, stats: Stats, in_flight: int, total_completed: int) -> dict[str, Any]:
        """The client's result: ``stats`` over the closed window."""
        assert self._closed is not None, "the window is still open"
        window: float = self._closed["window_s"]
        lat = sorted(stats.latencies_ns)

        def pct(q: float) -> float | None:
            # Nearest rank: the smallest latency with at least q of the samples at or below it.
            if not lat:
                return None
            return lat[max(0, math.ceil(q * len(lat)) - 1)] / 1e6

        return {
            "generator": generator,
            "window_s": window,
            "ok": len(lat),
            "completed": sum(stats.statuses.values()),
            "rps": len(lat) / window if window > 0 else 0.0,
            "latency_ms": {
                "p50": pct(0.50),
                "p90": pct(0.90),
                "p99": pct(0.99),
                "max": lat[-1] / 1e6 if lat else None,
                "mean": sum(lat) / len(lat) / 1e6 if lat else None,
            },
            "statuses": {str(k): v for k, v in sorted(stats.statuses.items())},
            "errors": dict(stats.errors),
            "sample_bad": stats.sample_bad,
            "bytes_read": stats.bytes_read,
            "cpu_seconds": self._closed["cpu_seconds"],
            "rss_kib": self._closed["rss_kib"],
            "machine_busy_s": self._closed["machine_busy_s"],
            "generator_cpu_s": self._closed["generator_cpu_s"],
            "in_flight_at_end": in_flight,
            "total_completed": total_completed,
        }


class ClosedLoop:
    """A load client's run: its connections started, the measured window opened after the
    warm-up with fresh :class:`Stats`, closed after the duration, then the connections stopped."""

    generator = "?"  # what the result names the client

    def __init__(self) -> None:
        self.stats = Stats()
        self.running = True
        self.total_completed = 0  # warm-up included: to compare with the upstream's own count

    def start(self) -> list[asyncio.Task[None]]:
        """Start the connections: their tasks."""
        raise NotImplementedError

    def reset(self) -> Stats:
        """Fresh stats for every connection, when the window opens."""
        self.stats = Stats()
        return self.stats

    def in_flight(self) -> int:
        """Requests sent and not yet answered."""
        raise NotImplementedError

    def stop(self) -> None:
        self.running = False

    async def measure(self, warmup: float, duration: float, watch: list[int]) -> dict[str, Any]:
        tasks = self.start()
        await asyncio.sleep(warmup)
        stats = self.reset()
        window = Window(watch)
        await asyncio.sleep(duration)
        stats.recording = False
        window.close()
        in_flight = self.in_flight()
        self.stop()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        return window.result(self.generator, stats, in_flight, self.total_completed)


def client_main(run: Callable[[dict[str, Any]], Coroutine[Any, Any, dict[str, Any]]]) -> None:
    """A load client's process: the JSON spec from stdin, ``run`` on uvloop, its result to stdout."""
    result = uvloop.run(run(json.load(sys.stdin)))
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")
    sys.stdout.flush()
