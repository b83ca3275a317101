"""Embeddings passthrough beside chat: the gateway's CPU per request on ``POST /v1/embeddings``.

``python -m benchmarks.embeddings`` (run by ``make bench`` after the main harness) starts the
bench upstream with an embeddings route (:mod:`benchmarks.embeddings_upstream`) and one
gateway (the default configuration: policy and metrics on), then measures with the built-in
load generator, one after the other on the same gateway:

- ``chat``: ``POST /v1/chat/completions``, non-streaming (the main harness's request);
- ``embeddings``: one 1536-wide input asked in base64 (the SDK's default) from an upstream that
  answers base64: the answer is passed on untouched (the common case);
- ``embeddings, floats upstream``: the same request to a model whose upstream answers float
  lists whatever it is asked: every vector is re-encoded to base64 by the gateway.

For each it prints req/s, p50/p99 and the gateway's CPU ms per request, and writes
``results/embeddings.md``. Options: ``--duration``, ``--warmup``, ``--connections``.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from benchmarks.common import CHAT_PATH, MODEL, RESULTS, BenchError
from benchmarks.embeddings_upstream import FLOATS_MODEL
from benchmarks.load import per_request_ms
from benchmarks.probes import chat_body, request_headers, wait_healthy
from benchmarks.processes import Children, free_port, start_listener
from benchmarks.variants import gateway_config

EMBEDDINGS_PATH = "/v1/embeddings"


def embeddings_body(model: str) -> str:
    return json.dumps(
        {"model": model, "input": "Say hello in a few words.", "encoding_format": "base64"},
        separators=(",", ":"),
    )


def _load(
    port: int, path: str, body: str, key: str, watch: list[int], args: argparse.Namespace
) -> dict[str, Any]:
    spec = {
        "host": "127.0.0.1",
        "port": port,
        "method": "POST",
        "path": path,
        "headers": request_headers(key),
        "body": body,
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
    key = "sk-bench-" + secrets.token_hex(12)
    rows: list[tuple[str, dict[str, Any], float | None]] = []
    try:
        with (
            tempfile.TemporaryDirectory(prefix="gateway-bench-emb-") as tmp,
            open(RESULTS / "embeddings-upstream.log", "wb") as upstream_log,
        ):
            upstream, upstream_port = start_listener(
                children, "upstream", "benchmarks.embeddings_upstream", upstream_log
            )
            port = free_port()
            text = gateway_config(
                port=port, upstream_port=upstream_port, key=key, data_dir=Path(tmp) / "redis", extra=[]
            )
            text += f'\n[[models]]\nname = "{FLOATS_MODEL}"\nprovider = "bench"\n'
            config = Path(tmp) / "gateway.toml"
            config.write_text(text)
            log = RESULTS / "gateway-embeddings.log"
            with open(log, "wb") as log_file:
                gateway = children.spawn(
                    "gateway",
                    [sys.executable, "-m", "gateway", "serve", "--config", str(config)],
                    stdout=log_file,
                    stderr=subprocess.STDOUT,
                    env=dict(os.environ, PYTHONUNBUFFERED="1"),
                )
            wait_healthy(port, gateway, log, 30.0)
            watch = [gateway.pid, upstream.pid]
            cases = [
                ("chat (non-streaming)", CHAT_PATH, chat_body(False)),
                ("embeddings (base64 passed on)", EMBEDDINGS_PATH, embeddings_body(MODEL)),
                ("embeddings (floats upstream, re-encoded)", EMBEDDINGS_PATH, embeddings_body(FLOATS_MODEL)),
            ]
            for title, path, body in cases:
                print(f"- {title}: {args.warmup:g} s warm-up + {args.duration:g} s ...", flush=True)
                result = _load(port, path, body, key, watch, args)
                failed = sum(result.get("errors", {}).values())
                if failed or not result.get("completed"):
                    raise BenchError(f"{title}: {failed} failures {result.get('errors')}")
                rows.append((title, result, per_request_ms(result, gateway.pid)))
    except BenchError as exc:
        print(f"embeddings benchmark failed: {exc}", file=sys.stderr)
        return 1
    finally:
        children.stop_all()
    lines = [
        "### Embeddings passthrough beside chat (default configuration, one worker)",
        "",
        "| case | req/s | p50 ms | p99 ms | gateway CPU ms/req |",
        "|---|---|---|---|---|",
    ]
    for title, result, cpu in rows:
        latency = result.get("latency_ms", {})
        lines.append(
            f"| {title} | {result.get('rps', 0):,.0f} | {_fmt(latency.get('p50'), 2)} | "
            f"{_fmt(latency.get('p99'), 2)} | {_fmt(cpu)} |"
        )
    report = "\n".join(lines) + "\n"
    print()
    print(report)
    (RESULTS / "embeddings.md").write_text(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
