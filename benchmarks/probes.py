"""A tiny blocking HTTP client for readiness and sanity checks, and the requests the load sends."""

from __future__ import annotations

import http.client
import json
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.common import CHAT_PATH, MESSAGES, MODEL, BenchError
from benchmarks.processes import log_tail
from benchmarks.variants import Variant


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


def wait_healthy(port: int, proc: subprocess.Popen[bytes], log: Path, timeout: float) -> float:
    """Poll ``/healthz`` until 200; seconds it took. Fails fast if the process exits."""
    start = time.monotonic()
    deadline = start + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchError(
                f"the gateway exited with status {proc.returncode} before it was ready; log tail:\n"
                + log_tail(log)
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
        f"the gateway was not healthy within {timeout:.0f}s ({last}); log tail:\n{log_tail(log)}"
    )


# ---------------------------------------------------------------------------------------------
# Requests


def chat_body(stream: bool) -> str:
    payload: dict[str, Any] = {"model": MODEL, "messages": MESSAGES, "max_tokens": 16}
    if stream:
        payload["stream"] = True
        payload["stream_options"] = {"include_usage": True}
    return json.dumps(payload, separators=(",", ":"))


def request_headers(key: str | None) -> list[tuple[str, str]]:
    headers = [("Content-Type", "application/json")]
    if key is not None:
        headers.append(("Authorization", f"Bearer {key}"))
    return headers


def sanity(port: int, key: str | None, who: str) -> dict[str, str]:
    """One request of each kind before any load: a clear failure beats a table of errors.

    Returns the response headers, each name prefixed by the kind ("non-streaming x-request-id").
    """
    extra: dict[str, str] = {}
    for stream in (False, True):
        reply = _http(
            port, "POST", CHAT_PATH, body=chat_body(stream).encode(), headers=dict(request_headers(key))
        )
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


def timing_headers(headers: dict[str, str]) -> dict[str, str]:
    return {name: value for name, value in headers.items() if name.split(" ", 1)[1].startswith("x-gateway")}


def check_variant(port: int, variant: Variant, headers: dict[str, str]) -> None:
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


def upstream_stats(port: int) -> dict[str, int]:
    stats: dict[str, int] = json.loads(_http(port, "GET", "/_bench/stats").body)
    return stats


def sink_stats(port: int) -> dict[str, int]:
    stats: dict[str, int] = json.loads(_http(port, "GET", "/_sink/stats").body)
    return stats
