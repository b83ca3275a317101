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

import json
import sys
from typing import Any

from benchmarks import harness
from benchmarks.common import CHAT_PATH, MESSAGES, MODEL, BenchError
from benchmarks.messages_upstream import CLAUDE_MODEL
from benchmarks.probes import chat_body

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
    status, text = harness.post_once(port, MESSAGES_PATH, messages_body(model, True), messages_headers(key))
    if status != 200 or not text.rstrip().endswith('data: {"type":"message_stop"}'):
        raise BenchError(f"a streamed /v1/messages answer did not end with message_stop: {text[-300:]!r}")


def anthropic_provider(upstream_port: int) -> str:
    """The config of an Anthropic provider on the bench upstream, with the model ``bench-claude``."""
    return (
        '\n[[providers]]\nname = "bench-anthropic"\nkind = "anthropic"\n'
        f'base_url = "http://127.0.0.1:{upstream_port}/v1"\napi_key = "sk-ant-bench-upstream"\n'
        f'\n[[models]]\nname = "{CLAUDE_MODEL}"\nprovider = "bench-anthropic"\n'
    )


def cases(session: harness.Session) -> list[harness.Row]:
    gateway = session.gateway
    _check_stream(gateway.port, gateway.key, CLAUDE_MODEL)
    _check_stream(gateway.port, gateway.key, MODEL)
    anthropic = messages_headers(gateway.key)
    # The load generator's stream check looks for `data: [DONE]`, which Anthropic streams do not
    # send; Messages streams are checked once above, then loaded as plain bodies.
    return [
        session.http("chat completions (non-streaming)", CHAT_PATH, chat_body(False)),
        session.http(
            "messages passthrough (non-streaming)",
            MESSAGES_PATH,
            messages_body(CLAUDE_MODEL, False),
            anthropic,
        ),
        session.http("chat completions (streaming)", CHAT_PATH, chat_body(True), stream=True),
        session.http(
            "messages passthrough (streaming)", MESSAGES_PATH, messages_body(CLAUDE_MODEL, True), anthropic
        ),
        session.http(
            "messages translated to chat (streaming)", MESSAGES_PATH, messages_body(MODEL, True), anthropic
        ),
    ]


def main(argv: list[str] | None = None) -> int:
    args = harness.case_parser(__doc__.splitlines()[0] if __doc__ else None).parse_args(argv)
    rows = harness.run_cases("messages", args, "benchmarks.messages_upstream", cases, anthropic_provider)
    if rows is None:
        return 1
    lines = harness.table(
        "### Messages passthrough beside Chat Completions (default configuration, one worker)", rows
    )
    per_request = {row.title: row.cpu_ms for row in rows}
    lines.append("")
    for kind in ("non-streaming", "streaming"):
        base = per_request.get(f"chat completions ({kind})")
        ours = per_request.get(f"messages passthrough ({kind})")
        if base and ours:
            lines.append(
                f"- Messages passthrough, {kind}: {ours / base:.0%} of the Chat Completions CPU per request."
            )
    harness.write_report("messages.md", lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
