"""Messages passthrough beside Chat Completions: the gateway's CPU per request on
``POST /v1/messages`` to an Anthropic upstream, against ``POST /v1/chat/completions`` to an
OpenAI-compatible one, non-streaming and streaming.

``python -m benchmarks.messages`` (run by ``make bench`` after the main harness) starts the bench
upstream with a Messages route (:mod:`benchmarks.messages_upstream`) and one gateway (the default
configuration: policy and metrics on), then measures with the built-in load generator, one case
after the other on the same gateway. Both upstreams answer the same reply (8 text pieces, the
same usage). The requests carry the same conversation; the Messages one as Claude clients send
it (``x-api-key``, ``anthropic-version``). A translated case (Messages client, Chat upstream)
follows for reference.

For each case it prints req/s, p50/p99 and the gateway's CPU ms per request, and the Messages
passthrough's CPU relative to Chat Completions; it writes ``results/messages.md``. Options:
``--duration``, ``--warmup``, ``--connections``.
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
from pathlib import Path
from typing import Any

from benchmarks.common import CHAT_PATH, MESSAGES, MODEL, RESULTS, BenchError
from benchmarks.load import per_request_ms
from benchmarks.messages_upstream import CLAUDE_MODEL
from benchmarks.probes import chat_body, request_headers, wait_healthy
from benchmarks.processes import Children, free_port, start_listener
from benchmarks.variants import gateway_config

MESSAGES_PATH = "/v1/messages"


def messages_body(model: str, stream: bool) -> str:
    payload: dict[str, Any] = {"model": model, "max_tokens": 16, "messages": MESSAGES}
    if stream:
        payload["stream"] = True
    return json.dumps(payload, separators=(",", ":"))


def messages_headers(key: str) -> list[tuple[str, str]]:
    return [("Content-Type", "application/json"), ("x-api-key", key), ("anthropic-version", "2023-06-01")]


def _check_stream(port: int, key: str, model: str) -> None:
    """One streamed Messages request before the load: it must end with ``message_stop``."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request(
            "POST", MESSAGES_PATH, body=messages_body(model, True), headers=dict(messages_headers(key))
        )
        reply = connection.getresponse()
        text = reply.read().decode()
    finally:
        connection.close()
    if reply.status != 200 or not text.rstrip().endswith('data: {"type":"message_stop"}'):
        raise BenchError(f"a streamed /v1/messages answer did not end with message_stop: {text[-300:]!r}")


def _load(
    port: int,
    path: str,
    body: str,
    headers: list[tuple[str, str]],
    stream: bool,
    watch: list[int],
    args: argparse.Namespace,
) -> dict[str, Any]:
    spec = {
        "host": "127.0.0.1",
        "port": port,
        "method": "POST",
        "path": path,
        "headers": headers,
        "body": body,
        "connections": args.connections,
        "duration": args.duration,
        "warmup": args.warmup,
        "timeout": 30.0,
        # The load generator's stream check looks for `data: [DONE]`, which Anthropic streams do
        # not send; Messages streams are checked once above, then loaded as plain bodies.
        "stream": stream,
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
            tempfile.TemporaryDirectory(prefix="gateway-bench-msg-") as tmp,
            open(RESULTS / "messages-upstream.log", "wb") as upstream_log,
        ):
            upstream, upstream_port = start_listener(
                children, "upstream", "benchmarks.messages_upstream", upstream_log
            )
            port = free_port()
            text = gateway_config(
                port=port, upstream_port=upstream_port, key=key, data_dir=Path(tmp) / "redis", extra=[]
            )
            text += (
                '\n[[providers]]\nname = "bench-anthropic"\nkind = "anthropic"\n'
                f'base_url = "http://127.0.0.1:{upstream_port}/v1"\napi_key = "sk-ant-bench-upstream"\n'
                f'\n[[models]]\nname = "{CLAUDE_MODEL}"\nprovider = "bench-anthropic"\n'
            )
            config = Path(tmp) / "gateway.toml"
            config.write_text(text)
            log = RESULTS / "gateway-messages.log"
            with open(log, "wb") as log_file:
                gateway = children.spawn(
                    "gateway",
                    [sys.executable, "-m", "gateway", "serve", "--config", str(config)],
                    stdout=log_file,
                    stderr=subprocess.STDOUT,
                    env=dict(os.environ, PYTHONUNBUFFERED="1"),
                )
            wait_healthy(port, gateway, log, 30.0)
            _check_stream(port, key, CLAUDE_MODEL)
            _check_stream(port, key, MODEL)
            watch = [gateway.pid, upstream.pid]
            chat, anthropic = request_headers(key), messages_headers(key)
            cases = [
                ("chat completions (non-streaming)", CHAT_PATH, chat_body(False), chat, False),
                (
                    "messages passthrough (non-streaming)",
                    MESSAGES_PATH,
                    messages_body(CLAUDE_MODEL, False),
                    anthropic,
                    False,
                ),
                ("chat completions (streaming)", CHAT_PATH, chat_body(True), chat, True),
                (
                    "messages passthrough (streaming)",
                    MESSAGES_PATH,
                    messages_body(CLAUDE_MODEL, True),
                    anthropic,
                    False,
                ),
                (
                    "messages translated to chat (streaming)",
                    MESSAGES_PATH,
                    messages_body(MODEL, True),
                    anthropic,
                    False,
                ),
            ]
            for title, path, body, headers, stream in cases:
                print(f"- {title}: {args.warmup:g} s warm-up + {args.duration:g} s ...", flush=True)
                result = _load(port, path, body, headers, stream, watch, args)
                failed = sum(result.get("errors", {}).values())
                if failed or not result.get("completed"):
                    raise BenchError(f"{title}: {failed} failures {result.get('errors')}")
                rows.append((title, result, per_request_ms(result, gateway.pid)))
    except BenchError as exc:
        print(f"messages benchmark failed: {exc}", file=sys.stderr)
        return 1
    finally:
        children.stop_all()
    lines = [
        "### Messages passthrough beside Chat Completions (default configuration, one worker)",
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
    per_request = {title: value for title, _, value in rows}
    lines.append("")
    for kind in ("non-streaming", "streaming"):
        base = per_request.get(f"chat completions ({kind})")
        ours = per_request.get(f"messages passthrough ({kind})")
        if base and ours:
            lines.append(
                f"- Messages passthrough, {kind}: {ours / base:.0%} of the Chat Completions CPU per request."
            )
    report = "\n".join(lines) + "\n"
    print()
    print(report)
    (RESULTS / "messages.md").write_text(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
