"""The Responses API beside Chat Completions: the gateway's CPU per request over HTTP and WebSocket.

``POST /v1/responses`` translated to a Chat Completions upstream and passed through to a
Responses upstream, and the Responses WebSocket mode, against ``POST /v1/chat/completions`` for
the same upstream work.

``python -m benchmarks.responses`` (run by ``make bench`` after the Messages benchmark) starts the
bench upstream with a Responses route (:mod:`benchmarks.responses_upstream`: the chat route's
reply as a Response object or event stream) and one gateway (the default configuration: policy
and metrics on, one worker) with the model ``bench-responses`` on a deployment that speaks
Responses (``api = "responses"``) beside the Chat model ``bench-model``. Every request carries the
same conversation and asks for at most 16 tokens; Responses requests send ``store: false`` (the
gateway keeps no record, like a chat completion) except in the ``stored`` cases.

HTTP cases are loaded with the built-in generator (:mod:`benchmarks.loadgen`), non-streaming and
streaming; WebSocket cases with :mod:`benchmarks.wsload`: ``--connections`` sockets, each sending
``response.create`` messages back to back and reading the events to ``response.completed``
(WebSocket turns always stream). Each kind of request is checked once before the load. It
prints req/s, p50/p99, the gateway's and its Redis's CPU ms per request and the gateway's CPU
per request relative to Chat Completions in the same mode (flagged above the 10 % budget), and
writes ``results/responses.md``. Options: ``--duration``, ``--warmup``, ``--connections``.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from websockets.asyncio.client import connect

from benchmarks import harness, procstat
from benchmarks.common import CHAT_PATH, MESSAGES, MODEL, BenchError
from benchmarks.load import per_request_ms
from benchmarks.probes import chat_body, request_headers
from benchmarks.processes import run_client
from benchmarks.report import fmt
from benchmarks.responses_upstream import RESPONSES_MODEL

RESPONSES_PATH = "/v1/responses"
BUDGET = 1.10  # a Responses case may cost at most 10 % more CPU per request than Chat Completions
COMPLETED = "event: response.completed"
FAILED = ("event: error", "event: response.failed", "event: response.incomplete")
PASSTHROUGH_MODEL = f'\n[[models]]\nname = "{RESPONSES_MODEL}"\nprovider = "bench"\napi = "responses"\n'


def create(model: str, *, store: bool = False) -> dict[str, Any]:
    """The body of a Responses request carrying the chat cases' conversation."""
    return {"model": model, "input": MESSAGES, "max_output_tokens": 16, "store": store}


def responses_body(model: str, stream: bool, *, store: bool = False) -> str:
    payload = create(model, store=store)
    if stream:
        payload["stream"] = True
    return json.dumps(payload, separators=(",", ":"))


def socket_message(model: str) -> str:
    return json.dumps({"type": "response.create", **create(model)}, separators=(",", ":"))


@dataclass(frozen=True)
class Measured:
    row: harness.Row
    mode: str  # "non-streaming" | "streaming": the Chat Completions case it is compared with
    redis_cpu_ms: float | None


def _check_http(session: harness.Session, model: str, stream: bool) -> None:
    """One request before the load: a completed Response, or a stream that ends with one."""
    status, text = harness.post_once(
        session.gateway.port,
        RESPONSES_PATH,
        responses_body(model, stream),
        request_headers(session.gateway.key),
    )
    if stream:
        good = status == 200 and COMPLETED in text and not any(mark in text for mark in FAILED)
    else:
        good = status == 200 and json.loads(text).get("status") == "completed"
    if not good:
        kind = "streamed" if stream else "non-streaming"
        raise BenchError(f"a {kind} {RESPONSES_PATH} answer for {model} did not complete: {text[-400:]!r}")


async def _one_turn(port: int, key: str, model: str) -> list[str]:
    url = f"ws://127.0.0.1:{port}{RESPONSES_PATH}"
    async with connect(url, additional_headers={"Authorization": f"Bearer {key}"}, proxy=None) as ws:
        await ws.send(socket_message(model))
        types: list[str] = []
        while not types or types[-1] not in ("response.completed", "response.failed", "error"):
            types.append(json.loads(await asyncio.wait_for(ws.recv(), 30))["type"])
        return types


def _check_socket(session: harness.Session, model: str) -> None:
    """One WebSocket turn before the load: its events end with ``response.completed``."""
    types = asyncio.run(_one_turn(session.gateway.port, session.gateway.key, model))
    if types[-1] != "response.completed" or types[0] != "response.created":
        raise BenchError(f"a WebSocket turn for {model} did not complete: events {types}")


def _redis_pids(gateway_pid: int) -> list[int]:
    return [pid for pid in procstat.children(gateway_pid) if procstat.command_name(pid).startswith("redis")]


def _http(session: harness.Session, title: str, mode: str, model: str, *, store: bool = False) -> harness.Row:
    stream = mode == "streaming"
    body = responses_body(model, stream, store=store)
    if stream:
        return session.http(title, RESPONSES_PATH, body, expect=COMPLETED, reject=FAILED)
    return session.http(title, RESPONSES_PATH, body, expect='"status":"completed"')


def _socket(session: harness.Session, title: str, model: str, *, compression: bool = False) -> harness.Row:
    args, gateway = session.args, session.gateway
    spec = {
        "host": "127.0.0.1",
        "port": gateway.port,
        "path": RESPONSES_PATH,
        "headers": [("Authorization", f"Bearer {gateway.key}")],
        "message": socket_message(model),
        "connections": args.connections,
        "duration": args.duration,
        "warmup": args.warmup,
        "timeout": 30.0,
        "compression": compression,
        "watch_pids": session.watch,
    }
    timeout = args.warmup + args.duration + 90
    return harness.measure(
        title,
        gateway.pid,
        args,
        lambda: run_client(session.children, "WebSocket load client", "benchmarks.wsload", spec, timeout),
    )


def cases(session: harness.Session) -> list[Measured]:
    for model in (MODEL, RESPONSES_MODEL):
        for stream in (False, True):
            _check_http(session, model, stream)
        _check_socket(session, model)
    redis = _redis_pids(session.gateway.pid)
    session = harness.Session(session.children, session.gateway, session.args, [*session.watch, *redis])
    ns, st = "non-streaming", "streaming"
    runs: list[tuple[str, Callable[[], harness.Row]]] = [
        (ns, lambda: session.http(f"chat completions ({ns})", CHAT_PATH, chat_body(False))),
        (ns, lambda: _http(session, f"responses, translated to chat ({ns})", ns, MODEL)),
        (ns, lambda: _http(session, f"responses passthrough ({ns})", ns, RESPONSES_MODEL)),
        (ns, lambda: _http(session, f"responses, translated, stored ({ns})", ns, MODEL, store=True)),
        (st, lambda: session.http(f"chat completions ({st})", CHAT_PATH, chat_body(True), stream=True)),
        (st, lambda: _http(session, f"responses, translated to chat ({st})", st, MODEL)),
        (st, lambda: _http(session, f"responses passthrough ({st})", st, RESPONSES_MODEL)),
        (st, lambda: _http(session, f"responses, translated, stored ({st})", st, MODEL, store=True)),
        (st, lambda: _socket(session, "WebSocket, translated to chat", MODEL)),
        (st, lambda: _socket(session, "WebSocket passthrough", RESPONSES_MODEL)),
        (
            st,
            lambda: _socket(session, "WebSocket, translated, client offers deflate", MODEL, compression=True),
        ),
    ]
    measured = []
    for mode, run in runs:
        row = run()
        redis_ms = [per_request_ms(row.result, pid) for pid in redis]
        known = [value for value in redis_ms if value is not None]
        measured.append(Measured(row, mode, sum(known) if known else None))
    return measured


def report(measured: list[Measured]) -> list[str]:
    base = {
        m.mode: m.row.cpu_ms for m in measured if m.row.title.startswith("chat completions") and m.row.cpu_ms
    }
    redis = {m.row.title: m.redis_cpu_ms for m in measured}
    modes = {m.row.title: m.mode for m in measured}

    def ratio(row: harness.Row) -> float | None:
        reference = base.get(modes[row.title])
        return row.cpu_ms / reference if row.cpu_ms is not None and reference else None

    def versus(row: harness.Row) -> str:
        if row.title.startswith("chat completions"):
            return "reference"
        value = ratio(row)
        if value is None:
            return "n/a"
        return f"{value - 1:+.0%}" + (" **over 10 %**" if value > BUDGET else "")

    columns: list[harness.Column] = [
        *harness.CASE_COLUMNS,
        ("redis CPU ms/req", lambda row: fmt(redis[row.title], 3)),
        ("CPU vs chat", versus),
    ]
    lines = harness.table(
        "### Responses beside Chat Completions (default configuration, one worker)",
        [m.row for m in measured],
        columns,
    )
    lines += [
        "",
        "WebSocket turns stream: they are compared with Chat Completions streaming. Responses requests "
        "send `store: false` except the stored cases (the record written to Redis before the answer ends).",
    ]
    over = [m.row.title for m in measured if (value := ratio(m.row)) is not None and value > BUDGET]
    lines.append("")
    lines.append(
        "- Over the 10 % budget: " + ", ".join(over) + "."
        if over
        else "- Every Responses case is within 10 % of Chat Completions' CPU per request."
    )
    return lines


def main(argv: list[str] | None = None) -> int:
    args = harness.case_parser(__doc__.splitlines()[0] if __doc__ else None).parse_args(argv)
    measured = harness.run_cases(
        "responses", args, "benchmarks.responses_upstream", cases, lambda _: PASSTHROUGH_MODEL
    )
    if measured is None:
        return 1
    harness.write_report("responses.md", report(measured))
    return 0


if __name__ == "__main__":
    sys.exit(main())
