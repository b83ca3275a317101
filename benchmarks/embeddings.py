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

import json
import sys

from benchmarks import harness
from benchmarks.common import CHAT_PATH, MODEL
from benchmarks.embeddings_upstream import FLOATS_MODEL
from benchmarks.probes import chat_body

EMBEDDINGS_PATH = "/v1/embeddings"


def embeddings_body(model: str) -> str:
    return json.dumps(
        {"model": model, "input": "Say hello in a few words.", "encoding_format": "base64"},
        separators=(",", ":"),
    )


def cases(session: harness.Session) -> list[harness.Row]:
    return [
        session.http("chat (non-streaming)", CHAT_PATH, chat_body(False)),
        session.http("embeddings (base64 passed on)", EMBEDDINGS_PATH, embeddings_body(MODEL)),
        session.http(
            "embeddings (floats upstream, re-encoded)", EMBEDDINGS_PATH, embeddings_body(FLOATS_MODEL)
        ),
    ]


def main(argv: list[str] | None = None) -> int:
    args = harness.case_parser(__doc__.splitlines()[0] if __doc__ else None).parse_args(argv)
    floats = f'\n[[models]]\nname = "{FLOATS_MODEL}"\nprovider = "bench"\n'
    rows = harness.run_cases("embeddings", args, "benchmarks.embeddings_upstream", cases, lambda _: floats)
    if rows is None:
        return 1
    harness.write_report(
        "embeddings.md",
        harness.table("### Embeddings passthrough beside chat (default configuration, one worker)", rows),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
