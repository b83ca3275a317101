"""Responses follow-ups at any chain depth: the latency of continuing a chain of 1, 10 and 200
responses with ``previous_response_id`` on a Chat Completions upstream (every follow-up replays
the whole history), which must stay within 20 % of each other.

``python -m benchmarks.chain_depth`` starts an upstream that answers the bench's fixed chat
completion after ``--model-ms`` (default 100: a short answer of a fast model; every depth waits
the same) and one gateway (the default configuration, embedded Redis, one worker process),
builds one chain per depth, then, in rounds, sends one follow-up to the tip of each chain (so
noise hits every depth alike) and times it from the client. It prints the median and p90 per
depth, the gateway's own share (the median less the model time) and the largest median relative
to the smallest, writes ``results/chain_depth.md``, and exits 1 when the spread is above 20 %.
``--model-ms 0`` shows the gateway's own cost alone: a follow-up's Redis round trips do not grow
with the depth, but the replayed history is still decoded and translated item by item.
Options: ``--rounds`` (default 60), ``--depths`` (default ``1,10,200``), ``--model-ms``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from benchmarks.common import MODEL, BenchError
from benchmarks.harness import run_guarded, start_gateway, write_report
from benchmarks.processes import Children
from benchmarks.upstream import COMPLETION, MODELS

LIMIT = 0.20
PATH = "/v1/responses"


async def _serve_one(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float) -> None:
    """HTTP/1.1 keep-alive: each request read whole (Content-Length), answered after ``delay``."""
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value.strip())
            if length:
                await reader.readexactly(length)
            if head.startswith(b"GET"):
                writer.write(MODELS)
            else:
                if delay:
                    await asyncio.sleep(delay)
                writer.write(COMPLETION)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


@contextlib.contextmanager
def model_upstream(delay_ms: float) -> Iterator[int]:
    """An upstream that takes ``delay_ms`` per chat completion, in a thread; yields its port."""
    loop = asyncio.new_event_loop()
    ready: list[int] = []
    servers: list[asyncio.Server] = []
    started = threading.Event()

    async def start() -> None:
        server = await asyncio.start_server(lambda r, w: _serve_one(r, w, delay_ms / 1000), "127.0.0.1", 0)
        servers.append(server)
        ready.append(server.sockets[0].getsockname()[1])
        started.set()

    async def stop() -> None:
        for server in servers:
            server.close()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    thread = threading.Thread(target=loop.run_forever, name="model-upstream", daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(start(), loop)
    if not started.wait(10):
        raise BenchError("the model upstream did not start")
    try:
        yield ready[0]
    finally:
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(stop(), loop).result(5)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()


def _post(http: httpx.Client, text: str, previous: str | None) -> tuple[str, float]:
    body: dict[str, Any] = {"model": MODEL, "input": text, "max_output_tokens": 16}
    if previous is not None:
        body["previous_response_id"] = previous
    started = time.perf_counter()
    reply = http.post(PATH, content=json.dumps(body))
    elapsed = time.perf_counter() - started
    if reply.status_code != 200:
        raise BenchError(f"POST {PATH}: HTTP {reply.status_code}: {reply.text[:300]}")
    return str(reply.json()["id"]), elapsed


def measure(http: httpx.Client, depths: list[int], rounds: int) -> dict[int, list[float]]:
    """Follow-up latencies (ms) per depth: chains built first, then one follow-up per depth per
    round, each continuing its chain's tip."""
    tips: dict[int, str] = {}
    for depth in depths:
        tip = None
        for n in range(depth):
            tip, _ = _post(http, f"turn {n}", tip)
        assert tip is not None
        tips[depth] = tip
    for depth in depths:  # warm-up: one untimed follow-up each
        tips[depth], _ = _post(http, "warm-up", tips[depth])
    timings: dict[int, list[float]] = {depth: [] for depth in depths}
    for round_ in range(rounds):
        for depth in depths:
            tips[depth], elapsed = _post(http, f"follow-up {round_}", tips[depth])
            timings[depth].append(elapsed * 1000)
    return timings


def report(timings: dict[int, list[float]], rounds: int, model_ms: float) -> tuple[str, float]:
    medians = {depth: statistics.median(values) for depth, values in timings.items()}
    spread = max(medians.values()) / min(medians.values()) - 1
    lines = [
        "### Responses follow-up latency by chain depth (Chat Completions upstream, history replayed)",
        "",
        f"{rounds} follow-ups per depth, interleaved; client-side latency of `POST {PATH}`; the",
        f"upstream answers after {model_ms:g} ms.",
        "",
        "| depth | median ms | p90 ms | gateway's own ms (median - model) |",
        "|---|---|---|---|",
    ]
    for depth, values in timings.items():
        p90 = statistics.quantiles(values, n=10)[-1] if len(values) >= 10 else max(values)
        lines.append(f"| {depth} | {medians[depth]:.2f} | {p90:.2f} | {medians[depth] - model_ms:.2f} |")
    verdict = "within" if spread <= LIMIT else "ABOVE"
    lines += [
        "",
        f"Largest median / smallest median: +{spread * 100:.1f} % ({verdict} the {LIMIT:.0%} limit).",
    ]
    return "\n".join(lines) + "\n", spread


def _run(
    children: Children, workdir: Path, depths: list[int], args: argparse.Namespace
) -> dict[int, list[float]]:
    with model_upstream(args.model_ms) as upstream_port:
        gateway = start_gateway(children, workdir, upstream_port, log="gateway-chain-depth.log")
        headers = {"authorization": f"Bearer {gateway.key}", "content-type": "application/json"}
        with httpx.Client(base_url=f"http://127.0.0.1:{gateway.port}", headers=headers, timeout=30) as http:
            print(f"building chains of {args.depths} and {args.rounds} follow-ups each ...", flush=True)
            return measure(http, depths, args.rounds)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=60)
    parser.add_argument("--depths", default="1,10,200")
    parser.add_argument("--model-ms", type=float, default=100.0)
    args = parser.parse_args(argv)
    depths = [int(d) for d in args.depths.split(",")]
    timings = run_guarded("chain depth", lambda children, workdir: _run(children, workdir, depths, args))
    if timings is None:
        return 1
    text, spread = report(timings, args.rounds, args.model_ms)
    write_report("chain_depth.md", [text.rstrip("\n")])
    return 0 if spread <= LIMIT else 1


if __name__ == "__main__":
    sys.exit(main())
