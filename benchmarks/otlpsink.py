"""A sink for the gateway's OTLP/HTTP trace exports, so that the ``traces on`` variant measures
making and exporting spans, not failing to reach a collector.

The same raw asyncio ``Protocol`` as benchmarks.upstream, with other routes:

- ``POST /v1/traces``: ``200`` with an empty ``application/x-protobuf`` body (an empty
  ``ExportTraceServiceResponse``: full success). It counts the posts, their bytes, and the spans
  in them (each span's name, ``chat <model>``, appears once in the protobuf, so counting that
  string counts the spans without decoding).
- ``GET /_sink/stats``: those counters as JSON.

Run ``python -m benchmarks.otlpsink --port 0``: it prints ``listening <host>:<port>`` once bound.
"""

from __future__ import annotations

import json

from benchmarks.upstream import MODEL, NOT_FOUND, UpstreamProtocol, _fixed, run_main

SPAN_NAME = f"chat {MODEL}".encode()
EXPORTED = _fixed("200 OK", "application/x-protobuf", b"")
STATS = {"posts": 0, "bytes": 0, "spans": 0, "other": 0}


class SinkProtocol(UpstreamProtocol):
    __slots__ = ()

    @staticmethod
    def _route(method: bytes, path: bytes, body: bytes) -> bytes:
        if method == b"POST" and path == b"/v1/traces":
            STATS["posts"] += 1
            STATS["bytes"] += len(body)
            STATS["spans"] += body.count(SPAN_NAME)
            return EXPORTED
        if method == b"GET" and path == b"/_sink/stats":
            return _fixed("200 OK", "application/json", json.dumps(STATS).encode())
        STATS["other"] += 1
        return NOT_FOUND


def main(argv: list[str] | None = None) -> None:
    run_main("An OTLP/HTTP trace sink for benchmarks.", SinkProtocol, 256, argv)


if __name__ == "__main__":
    main()
