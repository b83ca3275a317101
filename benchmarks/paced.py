"""Paced streams: many concurrent streams that arrive like a model generating, and their gaps.

The bench upstream paces a stream for the model ``bench-paced`` (the role chunk and a first
delta at once, then a delta every 20 ms, 64 in all). This client opens N connections at once,
sends one such streaming request on each, and records when body bytes arrive; then sends the
next one on the same connection, ``rounds`` times. A stream is **stall-free** when no gap
exceeds 200 ms, the wait from sending the request to its first body bytes included. The same
client runs against the upstream directly and through the gateway, in the same run.

Run as its own process (``python -m benchmarks.paced``) with a JSON spec on stdin (host, port,
path, headers, body, streams, rounds, stall_ms, timeout, watch_pids); it prints one JSON result.
The harness side: :func:`run_paced` (spawn it, read the result) and :func:`paced_markdown`.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import sys
import time
from dataclasses import dataclass, field
from typing import Any, cast

import uvloop

from benchmarks.common import CHAT_PATH, MESSAGES, PACED_MODEL
from benchmarks.processes import Children, run_client
from benchmarks.procstat import CLK_TCK, busy_ticks, cpu_ticks_many
from benchmarks.upstream import PACED_DELTAS, PACED_INTERVAL_S

DELTAS = PACED_DELTAS
INTERVAL_MS = round(PACED_INTERVAL_S * 1000)
STALL_MS = 200.0
CONCURRENCY = (256, 512)
ROUNDS = 2
_END = b"\r\n0\r\n\r\n"


def paced_body() -> str:
    payload = {"model": PACED_MODEL, "messages": MESSAGES, "stream": True, "max_tokens": DELTAS}
    return json.dumps(payload, separators=(",", ":"))


# ---------------------------------------------------------------------------------------------
# The client (its own process)


class _Stream:
    """What one stream's arrivals came to."""

    __slots__ = ("done", "error", "first_ms", "last_ns", "max_gap_ms", "sent_ns")

    def __init__(self, now_ns: int) -> None:
        self.sent_ns = now_ns
        self.last_ns = now_ns
        self.first_ms: float | None = None
        self.max_gap_ms = 0.0
        self.done = False
        self.error: str | None = None


class _Connection(asyncio.Protocol):
    """One keep-alive connection that sends ``rounds`` paced requests one after the other."""

    def __init__(self, client: PacedClient) -> None:
        self.client = client
        self.transport: asyncio.Transport | None = None
        self.head = True
        self.buf = bytearray()
        self.stream: _Stream | None = None
        self.left = client.rounds
        self.closed = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.send()

    def send(self) -> None:
        if self.transport is None or self.left <= 0:
            self.close()
            return
        self.left -= 1
        self.head = True
        self.buf.clear()
        self.stream = _Stream(time.perf_counter_ns())
        self.client.streams.append(self.stream)
        self.transport.write(self.client.request)

    def data_received(self, data: bytes) -> None:
        now = time.perf_counter_ns()
        stream = self.stream
        if stream is None:
            return
        self.buf += data
        if self.head:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            status = bytes(self.buf[9:12])
            if status != b"200":
                stream.error = f"status {status.decode(errors='replace')}"
                self.end(now)
                return
            del self.buf[: end + 4]
            self.head = False
            if not self.buf:
                return  # the head alone is not a delta
        gap = (now - stream.last_ns) / 1e6
        if stream.first_ms is None:
            stream.first_ms = gap
        stream.max_gap_ms = max(stream.max_gap_ms, gap)
        stream.last_ns = now
        if b'"error"' in data:
            stream.error = "error event"
        if self.buf.endswith(_END):
            if b"data: [DONE]" not in self.buf[-64:]:
                stream.error = stream.error or "no [DONE]"
            self.end(now)
        elif len(self.buf) > 64:
            del self.buf[:-64]  # keep just enough to see the end

    def end(self, now: int) -> None:
        if self.stream is not None:
            self.stream.done = True
            self.stream = None
        self.send()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.stream is not None and not self.stream.done:
            self.stream.error = "connection closed"
        self.transport = None
        if not self.closed.done():
            self.closed.set_result(None)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


@dataclass
class PacedClient:
    host: str
    port: int
    request: bytes
    connections: int
    rounds: int
    stall_ms: float
    timeout: float
    watch_pids: list[int] = field(default_factory=list)
    streams: list[_Stream] = field(default_factory=list)
    connect_errors: int = 0

    async def _one(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            _, proto = await loop.create_connection(lambda: _Connection(self), self.host, self.port)
        except OSError:
            self.connect_errors += 1
            return
        try:
            await asyncio.wait_for(asyncio.shield(proto.closed), self.timeout * self.rounds)
        except TimeoutError:
            if proto.stream is not None:
                proto.stream.error = "timeout"
            proto.close()

    async def run(self) -> dict[str, Any]:
        cpu_before = cpu_ticks_many(self.watch_pids)
        busy_before = busy_ticks()
        own_before = os.times()
        t0 = time.perf_counter()
        await asyncio.gather(*(self._one() for _ in range(self.connections)))
        window = time.perf_counter() - t0
        cpu_after = cpu_ticks_many(self.watch_pids)
        own_after = os.times()
        busy = (busy_ticks() - busy_before) / CLK_TCK
        cpu: dict[str, float | None] = {}
        for pid in self.watch_pids:
            b, a = cpu_before.get(pid), cpu_after.get(pid)
            cpu[str(pid)] = None if a is None or b is None else (a - b) / CLK_TCK
        ok = [s for s in self.streams if s.done and s.error is None]
        errors: dict[str, int] = {}
        for s in self.streams:
            if s.error is not None or not s.done:
                kind = s.error or "unfinished"
                errors[kind] = errors.get(kind, 0) + 1
        if self.connect_errors:
            errors["connect error"] = self.connect_errors * self.rounds
        gaps = sorted(s.max_gap_ms for s in ok)
        firsts = sorted(s.first_ms for s in ok if s.first_ms is not None)
        return {
            "streams": self.connections * self.rounds,
            "ok": len(ok),
            "stall_free": sum(1 for s in ok if s.max_gap_ms <= self.stall_ms),
            "max_gap_ms": _summary(gaps),
            "first_ms": _summary(firsts),
            "errors": errors,
            "window_s": window,
            "cpu_seconds": cpu,
            "machine_busy_s": busy,
            "generator_cpu_s": (own_after.user - own_before.user) + (own_after.system - own_before.system),
        }


def _summary(values: list[float]) -> dict[str, float | None]:
    def pct(q: float) -> float | None:
        return values[max(0, math.ceil(q * len(values)) - 1)] if values else None

    return {"p50": pct(0.5), "p99": pct(0.99), "max": values[-1] if values else None}


def _request(spec: dict[str, Any]) -> bytes:
    body: bytes = str(spec["body"]).encode()
    lines = [f"POST {spec['path']} HTTP/1.1", f"Host: {spec['host']}:{spec['port']}"]
    lines += [f"{name}: {value}" for name, value in spec["headers"]]
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def main() -> None:
    spec = json.load(sys.stdin)
    client = PacedClient(
        host=spec["host"],
        port=spec["port"],
        request=_request(spec),
        connections=spec["streams"],
        rounds=spec["rounds"],
        stall_ms=spec["stall_ms"],
        timeout=spec["timeout"],
        watch_pids=spec.get("watch_pids", []),
    )
    result = uvloop.run(client.run())
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")


# ---------------------------------------------------------------------------------------------
# The harness side


@dataclass
class PacedCase:
    target: str  # "direct" | "gateway"
    streams: int
    rounds: int
    result: dict[str, Any]
    server_pids: list[int]

    @property
    def stall_free(self) -> int:
        value: int = self.result["stall_free"]
        return value

    @property
    def total(self) -> int:
        value: int = self.result["streams"]
        return value

    def _server_seconds(self) -> float | None:
        seconds: list[float | None] = [self.result["cpu_seconds"].get(str(pid)) for pid in self.server_pids]
        known = [v for v in seconds if v is not None]
        return sum(known) if known and len(known) == len(seconds) else None

    def cpu_ms_per_stream(self) -> float | None:
        seconds, ok = self._server_seconds(), int(self.result["ok"])
        return None if seconds is None or not ok else seconds / ok * 1000

    def cores(self) -> float | None:
        seconds, window = self._server_seconds(), float(self.result["window_s"])
        return None if seconds is None or not window else seconds / window


def run_paced(
    children: Children,
    port: int,
    key: str | None,
    *,
    target: str,
    streams: int,
    rounds: int,
    server_pids: list[int],
    timeout: float,
) -> PacedCase:
    headers = [("Content-Type", "application/json")]
    if key is not None:
        headers.append(("Authorization", f"Bearer {key}"))
    spec = {
        "host": "127.0.0.1",
        "port": port,
        "path": CHAT_PATH,
        "headers": headers,
        "body": paced_body(),
        "streams": streams,
        "rounds": rounds,
        "stall_ms": STALL_MS,
        "timeout": timeout,
        "watch_pids": server_pids,
    }
    print(f"- paced streams, {target}, {streams} concurrent × {rounds} rounds ...", flush=True)  # noqa: RUF001
    result = run_client(children, "paced client", "benchmarks.paced", spec, timeout * rounds + 60)
    case = PacedCase(target, streams, rounds, result, server_pids)
    r = case.result
    print(
        f"  stall-free {case.stall_free}/{case.total}, worst gap {_ms(r['max_gap_ms']['max'])} ms, "
        f"first delta p99 {_ms(r['first_ms']['p99'])} ms, failures {sum(r['errors'].values())}"
        + (f" {r['errors']}" if r["errors"] else ""),
        flush=True,
    )
    return case


def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.0f}"


def paced_markdown(cases: list[PacedCase]) -> list[str]:
    if not cases:
        return []
    rounds = cases[0].rounds
    out = [
        "### Paced streams",
        "",
        f"{DELTAS} deltas {INTERVAL_MS} ms apart per stream; N streams opened at once, then each "
        f"connection streams again, {rounds} rounds in all. A stream is stall-free when no gap "
        f"between arrivals, the wait for its first delta included, exceeds {STALL_MS:g} ms.",
        "",
        "| target | concurrent | stall-free | worst gap ms | max gap p50 / p99 ms | first delta p50 / p99 ms "
        "| failed | server CPU ms/stream | server cores |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for c in sorted(cases, key=lambda c: (c.streams, c.target != "direct")):
        r = c.result
        gap, first = r["max_gap_ms"], r["first_ms"]
        cpu = c.cpu_ms_per_stream()
        cores = c.cores()
        out.append(
            f"| {c.target} | {c.streams} | **{c.stall_free} / {c.total}** | {_ms(gap['max'])} | "
            f"{_ms(gap['p50'])} / {_ms(gap['p99'])} | {_ms(first['p50'])} / {_ms(first['p99'])} | "
            f"{c.total - r['ok']} | {'n/a' if cpu is None else f'{cpu:.3f}'} | "
            f"{'n/a' if cores is None else f'{cores:.2f}'} |"
        )
    return out


if __name__ == "__main__":
    main()
