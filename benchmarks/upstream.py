"""A deliberately cheap OpenAI-shaped upstream: a raw asyncio ``Protocol`` on uvloop.

Every response is encoded once at import time, so answering a request costs one header parse
and one ``transport.write``. Routes:

- ``POST /v1/chat/completions``: a fixed ``chat.completion`` JSON body, or, when the request body
  asks for ``"stream": true``, a fixed SSE stream (role chunk, 8 content chunks, finish chunk,
  usage chunk, ``data: [DONE]``), each event as its own chunk of a chunked response.
  With the model ``bench-paced`` the stream is paced like a model generating: the role chunk
  and the first delta at once, then one delta every 20 ms (64 deltas in all), then the finish,
  usage and ``[DONE]`` events with the last delta.
- ``GET /v1/models``: a one-model listing.
- ``GET /_bench/stats``: how many requests of each kind were served (the harness uses it to see
  how many upstream calls one gateway request caused).

HTTP/1.1 with keep-alive; request bodies framed by Content-Length or chunked; no pipelining.
Run ``python -m benchmarks.upstream --port 0``: it prints ``listening <host>:<port>`` once bound.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import signal
import sys
from collections.abc import Callable
from typing import cast

import uvloop

MODEL = "bench-model"
CREATED = 1_700_000_000
MAX_HEAD = 64 * 1024
MAX_BODY = 8 * 1024 * 1024
_STREAM_FLAG = re.compile(rb'"stream"\s*:\s*true')
_PACED_FLAG = re.compile(rb'"model"\s*:\s*"bench-paced"')
PACED_DELTAS = 64
PACED_INTERVAL_S = 0.020

CONTENT_PIECES = ["Hello", "!", " This", " is", " a", " benchmark", " reply", "."]
USAGE = {
    "prompt_tokens": 12,
    "completion_tokens": len(CONTENT_PIECES),
    "total_tokens": 12 + len(CONTENT_PIECES),
}


def _json(obj: object) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def _fixed(status: str, content_type: str, body: bytes) -> bytes:
    head = (
        f"HTTP/1.1 {status}\r\n"
        f"content-type: {content_type}\r\n"
        f"content-length: {len(body)}\r\n"
        "server: bench-upstream\r\n"
        "\r\n"
    )
    return head.encode() + body


def _completion_body() -> bytes:
    return _json(
        {
            "id": "chatcmpl-bench0001",
            "object": "chat.completion",
            "created": CREATED,
            "model": MODEL,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "".join(CONTENT_PIECES), "refusal": None},
                    "logprobs": None,
                    "finish_reason": "stop",
                }
            ],
            "usage": USAGE,
            "system_fingerprint": "fp_bench",
        }
    )


def _stream_events() -> list[bytes]:
    def chunk(choices: list[object], **extra: object) -> bytes:
        event = {
            "id": "chatcmpl-bench0001",
            "object": "chat.completion.chunk",
            "created": CREATED,
            "model": MODEL,
            "system_fingerprint": "fp_bench",
            "choices": choices,
            **extra,
        }
        return b"data: " + _json(event) + b"\n\n"

    def delta(d: dict[str, object], finish: str | None = None) -> list[object]:
        return [{"index": 0, "delta": d, "logprobs": None, "finish_reason": finish}]

    events = [chunk(delta({"role": "assistant", "content": "", "refusal": None}))]
    events += [chunk(delta({"content": piece})) for piece in CONTENT_PIECES]
    events.append(chunk(delta({}, "stop")))
    events.append(chunk([], usage=USAGE))
    events.append(b"data: [DONE]\n\n")
    return events


_STREAM_HEAD = (
    b"HTTP/1.1 200 OK\r\n"
    b"content-type: text/event-stream; charset=utf-8\r\n"
    b"cache-control: no-cache\r\n"
    b"transfer-encoding: chunked\r\n"
    b"server: bench-upstream\r\n"
    b"\r\n"
)


def _chunk(event: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(event), event)


def _paced_parts() -> tuple[bytes, bytes, bytes]:
    """The paced stream's head with its role chunk, one delta, and the tail after the last delta."""
    events = _stream_events()  # role, 8 content deltas, finish, usage, [DONE]
    head = _STREAM_HEAD + _chunk(events[0])
    delta = _chunk(events[3])  # " This": any one delta
    tail = b"".join(_chunk(e) for e in events[-3:]) + b"0\r\n\r\n"
    return head, delta, tail


def _chunked_stream(events: list[bytes]) -> bytes:
    return _STREAM_HEAD + b"".join(_chunk(e) for e in events) + b"0\r\n\r\n"


COMPLETION = _fixed("200 OK", "application/json", _completion_body())
STREAM = _chunked_stream(_stream_events())
MODELS = _fixed(
    "200 OK",
    "application/json",
    _json(
        {
            "object": "list",
            "data": [{"id": MODEL, "object": "model", "created": CREATED, "owned_by": "bench"}],
        }
    ),
)
NOT_FOUND = _fixed(
    "404 Not Found",
    "application/json",
    _json({"error": {"message": "not found", "type": "invalid_request_error"}}),
)
BAD_REQUEST = _fixed("400 Bad Request", "text/plain", b"bad request")
TOO_LARGE = _fixed("413 Content Too Large", "text/plain", b"too large")

PACED_HEAD, PACED_DELTA, PACED_TAIL = _paced_parts()

STATS = {"requests": 0, "completions": 0, "streams": 0, "paced": 0, "models": 0, "other": 0}


class _BadRequest(Exception):
    pass


def _dechunk(buf: bytearray, start: int) -> tuple[bytes, int] | None:
    """Decode a chunked body beginning at ``start``: (body, end offset), or None if incomplete."""
    pos = start
    parts: list[bytes] = []
    while True:
        eol = buf.find(b"\r\n", pos)
        if eol < 0:
            return None
        try:
            size = int(bytes(buf[pos:eol]).split(b";", 1)[0].strip(), 16)
        except ValueError:
            raise _BadRequest from None
        pos = eol + 2
        if size == 0:
            # Trailer lines, then an empty line.
            while True:
                eol = buf.find(b"\r\n", pos)
                if eol < 0:
                    return None
                if eol == pos:
                    return b"".join(parts), eol + 2
                pos = eol + 2
        if len(buf) < pos + size + 2:
            return None
        parts.append(bytes(buf[pos : pos + size]))
        pos += size + 2
        if sum(map(len, parts)) > MAX_BODY:
            raise _BadRequest


class UpstreamProtocol(asyncio.Protocol):
    __slots__ = ("_buf", "_pacing", "_transport")

    def __init__(self) -> None:
        self._buf = bytearray()
        self._transport: asyncio.Transport | None = None
        self._pacing = False  # a paced stream is being sent: later requests wait in the buffer

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self._transport = cast(asyncio.Transport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None

    def data_received(self, data: bytes) -> None:
        self._buf += data
        try:
            while self._transport is not None and not self._pacing and self._handle_one():
                pass
        except _BadRequest:
            self._reply(BAD_REQUEST, close=True)

    def _handle_one(self) -> bool:
        """Answer one complete request from the buffer; False when more bytes are needed."""
        buf = self._buf
        head_end = buf.find(b"\r\n\r\n")
        if head_end < 0:
            if len(buf) > MAX_HEAD:
                raise _BadRequest
            return False
        lines = bytes(buf[:head_end]).split(b"\r\n")
        try:
            method, target, version = lines[0].split(b" ", 2)
        except ValueError:
            raise _BadRequest from None
        length = 0
        chunked = False
        close = version == b"HTTP/1.0"
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                try:
                    length = int(value)
                except ValueError:
                    raise _BadRequest from None
            elif name == b"transfer-encoding":
                chunked = b"chunked" in value.lower()
            elif name == b"connection":
                token = value.strip().lower()
                if token == b"close":
                    close = True
                elif token == b"keep-alive":
                    close = False
        body_start = head_end + 4
        if chunked:
            decoded = _dechunk(buf, body_start)
            if decoded is None:
                return False
            body, end = decoded
        else:
            if length > MAX_BODY:
                self._reply(TOO_LARGE, close=True)
                return False
            end = body_start + length
            if len(buf) < end:
                return False
            body = bytes(buf[body_start:end])
        del buf[:end]
        if method == b"POST" and _PACED_FLAG.search(body) and _STREAM_FLAG.search(body):
            STATS["requests"] += 1
            STATS["paced"] += 1
            self._pace(close)
            return False
        self._reply(self._route(method, target.split(b"?", 1)[0], body), close=close)
        return True

    def _pace(self, close: bool) -> None:
        """Start a paced stream: delta k goes out k intervals after the first."""
        transport = self._transport
        assert transport is not None
        loop = asyncio.get_running_loop()
        self._pacing = True
        transport.write(PACED_HEAD + PACED_DELTA)
        t0 = loop.time()
        loop.call_at(t0 + PACED_INTERVAL_S, self._paced_step, loop, t0, 1, close)

    def _paced_step(self, loop: asyncio.AbstractEventLoop, t0: float, k: int, close: bool) -> None:
        transport = self._transport
        if transport is None:
            return
        if k < PACED_DELTAS - 1:
            transport.write(PACED_DELTA)
            loop.call_at(t0 + (k + 1) * PACED_INTERVAL_S, self._paced_step, loop, t0, k + 1, close)
            return
        self._pacing = False
        self._reply(PACED_DELTA + PACED_TAIL, close=close)
        if self._buf and self._transport is not None:  # a request sent while the stream ran
            self.data_received(b"")

    @staticmethod
    def _route(method: bytes, path: bytes, body: bytes) -> bytes:
        STATS["requests"] += 1
        if method == b"POST" and path == b"/v1/chat/completions":
            if _STREAM_FLAG.search(body):
                STATS["streams"] += 1
                return STREAM
            STATS["completions"] += 1
            return COMPLETION
        if method == b"GET" and path == b"/v1/models":
            STATS["models"] += 1
            return MODELS
        if method == b"GET" and path == b"/_bench/stats":
            return _fixed("200 OK", "application/json", _json(STATS))
        STATS["other"] += 1
        return NOT_FOUND

    def _reply(self, response: bytes, *, close: bool) -> None:
        transport = self._transport
        if transport is None:
            return
        transport.write(response)
        if close:
            transport.close()
            self._transport = None


def with_streaming_route(path: bytes, answer: bytes, stream: bytes) -> type[UpstreamProtocol]:
    """The bench upstream with ``POST path`` too: ``stream`` when the body asks for
    ``"stream": true``, else ``answer`` (both whole HTTP responses, encoded once)."""

    class Routed(UpstreamProtocol):
        @staticmethod
        def _route(method: bytes, target: bytes, body: bytes) -> bytes:
            if method == b"POST" and target == path:
                return stream if _STREAM_FLAG.search(body) else answer
            return UpstreamProtocol._route(method, target, body)

    return Routed


async def serve(
    host: str, port: int, protocol: Callable[[], asyncio.Protocol] = UpstreamProtocol, backlog: int = 2048
) -> None:
    """Serve ``protocol`` until SIGINT or SIGTERM; the bound address goes to stdout first."""
    loop = asyncio.get_running_loop()
    server = await loop.create_server(protocol, host, port, backlog=backlog)
    bound = server.sockets[0].getsockname()
    print(f"listening {bound[0]}:{bound[1]}", flush=True)
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()


def run_main(
    description: str, protocol: Callable[[], asyncio.Protocol], backlog: int, argv: list[str] | None
) -> None:
    """The command line of a benchmark server: ``--host``, ``--port`` (0: a free one)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (printed on stdout)")
    args = parser.parse_args(argv)
    uvloop.run(serve(args.host, args.port, protocol, backlog))
    sys.exit(0)


def main(argv: list[str] | None = None) -> None:
    run_main("A minimal OpenAI-shaped upstream for benchmarks.", UpstreamProtocol, 2048, argv)


if __name__ == "__main__":
    main()
