"""A large upload reaches the upstream byte for byte, and the gateway holds it once.

The upstream here is a raw HTTP/1.1 server that reads each request body as it arrives (hashing
and counting it, never holding it) and notes the traced memory of the process when a request's
head arrives and when its body ends. The client writes the upload from a buffer made before
tracing starts, so what is traced is the gateway's own: while the upstream receives the body,
the peak is the one copy the gateway keeps for retries (the body as read) and little more —
no joined copy of the rewritten form, no serialised copy of head and body, no transport buffer
of the whole.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import socket
import threading
import tracemalloc
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from gateway.testing import GATEWAY_KEY, serve_gateway

MB = 1024 * 1024
UPLOAD = 25 * MB


class CountingUpstream:
    """One thread, one loop, one listening socket; answers every request with a transcript."""

    def __init__(self) -> None:
        self.bodies: list[tuple[int, str, bytes]] = []  # (length, sha256, head)
        self.at_head: list[tuple[int, int]] = []  # tracemalloc (current, peak) as a head arrived
        self.at_end: list[tuple[int, int]] = []  # ... and as its body ended
        self.port = 0
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None
        self._thread = threading.Thread(target=self._run, name="counting-upstream", daemon=True)

    def __enter__(self) -> CountingUpstream:
        self._thread.start()
        assert self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        loop = self._loop
        assert loop is not None
        loop.call_soon_threadsafe(loop.stop)
        self._thread.join(10)

    def _run(self) -> None:
        loop = self._loop = asyncio.new_event_loop()
        self._server = loop.run_until_complete(asyncio.start_server(self._serve, "127.0.0.1", 0))
        self.port = self._server.sockets[0].getsockname()[1]
        self._ready.set()
        loop.run_forever()
        self._server.close()
        loop.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                if tracemalloc.is_tracing() and head.startswith(b"POST "):
                    self.at_head.append(tracemalloc.get_traced_memory())
                    tracemalloc.reset_peak()
                length = 0
                for line in head.split(b"\r\n"):
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                digest = hashlib.sha256()
                got = 0
                while got < length:
                    chunk = await reader.read(min(MB, length - got))
                    if not chunk:
                        return
                    digest.update(chunk)
                    got += len(chunk)
                if tracemalloc.is_tracing() and head.startswith(b"POST "):
                    self.at_end.append(tracemalloc.get_traced_memory())
                self.bodies.append((got, digest.hexdigest(), head))
                answer = b'{"text":"ok"}'
                writer.write(
                    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s"
                    % (len(answer), answer)
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            return
        finally:
            writer.close()


def multipart(model: str, audio: bytes, boundary: str) -> bytes:
    b = boundary.encode()
    return b"".join(
        [
            b"--"
            + b
            + b'\r\nContent-Disposition: form-data; name="model"\r\n\r\n'
            + model.encode()
            + b"\r\n",
            b"--" + b + b'\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n',
            b"Content-Type: audio/wav\r\n\r\n",
            audio,
            b"\r\n--" + b + b"--\r\n",
        ]
    )


def post(port: int, path: str, body: bytes, content_type: str) -> tuple[int, bytes]:
    """One request written from ``body`` in slices (never copied), its answer read whole."""
    head = (
        f"POST {path} HTTP/1.1\r\nhost: 127.0.0.1\r\nauthorization: Bearer {GATEWAY_KEY}\r\n"
        f"content-type: {content_type}\r\ncontent-length: {len(body)}\r\nconnection: close\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        sock.sendall(head)
        view = memoryview(body)
        for start in range(0, len(body), MB):
            sock.sendall(view[start : start + MB])
        received = bytearray()
        while chunk := sock.recv(65536):
            received += chunk
    status_line, _, rest = bytes(received).partition(b"\r\n")
    return int(status_line.split()[1]), rest.partition(b"\r\n\r\n")[2]


@pytest.fixture
def upstream() -> Iterator[CountingUpstream]:
    with CountingUpstream() as server:
        yield server


def config(port: int, redis_url: str) -> dict[str, Any]:
    return {
        "redis": {"url": redis_url, "key_prefix": f"gwtest-{uuid.uuid4().hex[:12]}:"},
        "auth": {"keys": [{"name": "test", "key": GATEWAY_KEY}]},
        "server": {"max_body_bytes": 32 * MB},
        "providers": [{"name": "raw", "kind": "openai", "base_url": f"http://127.0.0.1:{port}/v1"}],
        # The public name differs from the upstream's: the form's model field is rewritten.
        "models": [{"name": "whisper-big", "provider": "raw", "upstream_model": "whisper-1"}],
    }


def test_a_25_mb_transcription_is_sent_whole_and_held_once(
    upstream: CountingUpstream, redis_url: str
) -> None:
    audio = os.urandom(UPLOAD)
    boundary = uuid.uuid4().hex
    body = multipart("whisper-big", audio, boundary)
    expected = multipart("whisper-1", audio, boundary)
    with serve_gateway(config(upstream.port, redis_url)) as gw:
        port = int(gw.root_url.rsplit(":", 1)[1])
        tracemalloc.start()
        try:
            status, answer = post(
                port, "/v1/audio/transcriptions", body, f"multipart/form-data; boundary={boundary}"
            )
        finally:
            tracemalloc.stop()
    assert status == 200, answer
    [(length, digest, head)] = [b for b in upstream.bodies if b[2].startswith(b"POST ")]
    assert (length, digest) == (len(expected), hashlib.sha256(expected).hexdigest())
    assert f"content-length: {len(expected)}".encode() in head.lower()
    [(_, read_peak)] = upstream.at_head
    [(_, send_peak)] = upstream.at_end
    print(
        f"\nupload {len(body) / MB:.1f} MiB: peak while reading {read_peak / MB:.1f} MiB, "
        f"while sending upstream {send_peak / MB:.1f} MiB"
    )
    # The body as read (kept for retries and failover) and a bounded amount besides.
    assert send_peak < len(body) + 4 * MB
