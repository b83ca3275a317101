"""The bench upstream (:mod:`benchmarks.upstream`) with ``POST /v1/embeddings``: a fixed
1536-wide vector in base64, or as a float list for the model named :data:`FLOATS_MODEL` (an
upstream that ignores ``encoding_format``). ``python -m benchmarks.embeddings_upstream --port 0``."""

from __future__ import annotations

import base64
import struct

from benchmarks.upstream import UpstreamProtocol, _fixed, _json, run_main

FLOATS_MODEL = "bench-embed-floats"
WIDTH = 1536
_VECTOR = [((i * 7919) % 2000 - 1000) / 1024.0 for i in range(WIDTH)]  # exact in float32


def _answer(embedding: object) -> bytes:
    body = {
        "object": "list",
        "data": [{"object": "embedding", "index": 0, "embedding": embedding}],
        "model": "bench-embed",
        "usage": {"prompt_tokens": 8, "total_tokens": 8},
    }
    return _fixed("200 OK", "application/json", _json(body))


BASE64 = _answer(base64.b64encode(struct.pack(f"<{WIDTH}f", *_VECTOR)).decode())
FLOATS = _answer(_VECTOR)


class EmbeddingsUpstream(UpstreamProtocol):
    """The bench upstream with ``POST /v1/embeddings``: base64 vectors, or float lists for the
    model named :data:`FLOATS_MODEL` (an upstream that ignores ``encoding_format``)."""

    @staticmethod
    def _route(method: bytes, path: bytes, body: bytes) -> bytes:
        if method == b"POST" and path == b"/v1/embeddings":
            return FLOATS if FLOATS_MODEL.encode() in body else BASE64
        return UpstreamProtocol._route(method, path, body)


def main(argv: list[str] | None = None) -> None:
    run_main("The bench upstream with embeddings.", EmbeddingsUpstream, 2048, argv)


if __name__ == "__main__":
    main()
