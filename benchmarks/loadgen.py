"""The built-in load generator, for machines without ``wrk``: asyncio + uvloop, raw sockets.

Run as its own process (``python -m benchmarks.loadgen``) with a JSON spec on stdin; it prints
one JSON result on stdout. N keep-alive connections each send a pre-encoded request, read just
enough of the response to know where it ends (Content-Length, chunked up to the last chunk, or
the connection closing), record the latency and send the next one at once (closed loop, like
wrk). After ``warmup`` seconds the counters are reset and the CPU ticks of the watched
processes are read; ``duration`` seconds later they are read again and the run stops.

Spec keys: host, port, method, path, headers ([[name, value], ...]), body, connections,
duration, warmup, timeout, stream (bool: the body must end with ``data: [DONE]``),
watch_pids ([pid, ...]); optionally expect (text a good body holds, e.g. the last event of a
stream that does not end with ``[DONE]``) and reject ([text, ...] that marks a failed body),
which replace the checks of ``stream`` and of an ``"error"`` in a body.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any, cast

from benchmarks.window import ClientSpec, ClosedLoop, Stats, client_main

_ERROR_MARK = b'"error"'
_DONE_MARK = b"data: [DONE]"
_ERROR_BODY = "error body with status 200"


@dataclass(kw_only=True)
class Spec(ClientSpec):
    method: str = "POST"
    path: str = "/v1/chat/completions"
    body: str = ""
    stream: bool = False
    expect: str | None = None
    reject: list[str] = field(default_factory=list)

    def request_bytes(self) -> bytes:
        body = self.body.encode()
        lines = [f"{self.method} {self.path} HTTP/1.1", f"Host: {self.host}:{self.port}"]
        lines += [f"{name}: {value}" for name, value in self.headers]
        if body or self.method in ("POST", "PUT", "PATCH"):
            lines.append(f"Content-Length: {len(body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


class _Incomplete(Exception):
    pass


class ClientConnection(asyncio.Protocol):
    """One keep-alive connection that sends requests back to back."""

    def __init__(self, owner: LoadGenerator) -> None:
        self.owner = owner
        self.stats = owner.stats
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.started_ns = 0
        self.in_flight = False
        self.closed = asyncio.get_running_loop().create_future()
        self._reset_response()

    def _reset_response(self) -> None:
        self.status = 0
        self.head_done = False
        self.length = -1
        self.chunked = False
        self.until_close = False
        self.server_closes = False
        self.pos = 0
        self.body = bytearray()

    # asyncio callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.send()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.in_flight:
            if self.until_close and self.head_done:
                self._finish()
            elif self.owner.running:
                self.stats.bad("closed mid-response", repr(exc) if exc else None)
        self.in_flight = False
        self.transport = None
        if not self.closed.done():
            self.closed.set_result(None)

    def data_received(self, data: bytes) -> None:
        if not self.in_flight:
            self.stats.bad("unsolicited bytes", data)
            self._close()
            return
        self.buf += data
        self.stats.bytes_read += len(data)
        try:
            if self._parse():
                self._finish()
        except _Incomplete:
            pass
        except (ValueError, IndexError) as exc:
            self.stats.bad("unparseable response", f"{exc!r} in {bytes(self.buf[:300])!r}")
            self.in_flight = False
            self._close()

    # requests and responses

    def send(self) -> None:
        if self.transport is None or not self.owner.running:
            return
        self._reset_response()
        self.buf.clear()
        self.in_flight = True
        self.started_ns = time.perf_counter_ns()
        self.transport.write(self.owner.request)

    def _parse(self) -> bool:
        """True once the whole response is in ``buf``."""
        buf = self.buf
        if not self.head_done:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                raise _Incomplete
            head = bytes(buf[:end]).lower()
            self.status = int(head[9:12])
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                name = name.strip()
                if name == b"content-length":
                    self.length = int(value)
                elif name == b"transfer-encoding" and b"chunked" in value:
                    self.chunked = True
                elif name == b"connection" and b"close" in value:
                    self.server_closes = True
            self.head_done = True
            self.pos = end + 4
            if not self.chunked and self.length < 0:
                self.until_close = True
        if self.chunked:
            return self._parse_chunks()
        if self.until_close:
            return False
        if len(buf) - self.pos < self.length:
            raise _Incomplete
        self.body = buf[self.pos : self.pos + self.length]
        return True

    def _parse_chunks(self) -> bool:
        buf = self.buf
        while True:
            eol = buf.find(b"\r\n", self.pos)
            if eol < 0:
                raise _Incomplete
            size = int(bytes(buf[self.pos : eol]).split(b";", 1)[0], 16)
            if size == 0:
                # Optional trailers, then the empty line that ends the message.
                pos = eol + 2
                while True:
                    line_end = buf.find(b"\r\n", pos)
                    if line_end < 0:
                        raise _Incomplete
                    if line_end == pos:
                        return True
                    pos = line_end + 2
            data_start = eol + 2
            if len(buf) < data_start + size + 2:
                raise _Incomplete
            self.body += buf[data_start : data_start + size]
            self.pos = data_start + size + 2

    def _finish(self) -> None:
        elapsed = time.perf_counter_ns() - self.started_ns
        self.in_flight = False
        self.owner.total_completed += 1
        stats = self.stats
        if stats.recording:
            stats.statuses[self.status] += 1
            if self.status != 200:
                stats.bad(f"status {self.status}", bytes(self.body))
            elif (fault := self.owner.fault(self.body)) is not None:
                stats.bad(fault, bytes(self.body if fault == _ERROR_BODY else self.body[-600:]))
            else:
                stats.latencies_ns.append(elapsed)
        if self.server_closes or self.until_close:
            self._close()
        else:
            self.send()

    def check_timeout(self, now_ns: int, timeout_ns: int) -> None:
        if self.in_flight and now_ns - self.started_ns > timeout_ns:
            self.stats.bad("timeout", f"no complete response within {timeout_ns / 1e9:.0f}s")
            self.in_flight = False
            self._close()

    def _close(self) -> None:
        if self.transport is not None:
            self.transport.close()


class LoadGenerator(ClosedLoop):
    generator = "builtin"

    def __init__(self, spec: Spec) -> None:
        self.spec = spec
        self.request = spec.request_bytes()
        self.stream = spec.stream
        self.expect = spec.expect.encode() if spec.expect is not None else None
        self.reject = [mark.encode() for mark in spec.reject]
        super().__init__()
        self.connections: list[ClientConnection] = []

    def fault(self, body: bytearray) -> str | None:
        """What is wrong with a 200 answer's body, or None."""
        if self.expect is not None:
            if self.expect not in body or any(mark in body for mark in self.reject):
                return "body without the expected mark or with an error mark"
            return None
        if self.stream:
            if _DONE_MARK not in body[-32:] or _ERROR_MARK in body:
                return "stream without [DONE] or with an error event"
            return None
        return _ERROR_BODY if _ERROR_MARK in body else None

    async def _keep_connected(self, slot: int) -> None:
        """Hold one connection open for the whole run, reconnecting when it closes."""
        loop = asyncio.get_running_loop()
        while self.running:
            try:
                _, proto = await loop.create_connection(
                    lambda: ClientConnection(self), self.spec.host, self.spec.port
                )
            except OSError as exc:
                self.stats.bad("connect error", repr(exc))
                await asyncio.sleep(0.05)
                continue
            self.connections[slot] = proto
            await proto.closed

    async def _watch_timeouts(self) -> None:
        timeout_ns = int(self.spec.timeout * 1e9)
        while self.running:
            await asyncio.sleep(0.5)
            now = time.perf_counter_ns()
            for conn in self.connections:
                conn.check_timeout(now, timeout_ns)

    def start(self) -> list[asyncio.Task[None]]:
        placeholder = ClientConnection(self)
        self.connections = [placeholder] * self.spec.connections
        tasks = [asyncio.create_task(self._keep_connected(i)) for i in range(self.spec.connections)]
        tasks.append(asyncio.create_task(self._watch_timeouts()))
        return tasks

    def reset(self) -> Stats:
        stats = super().reset()
        for conn in self.connections:
            conn.stats = stats
        return stats

    def in_flight(self) -> int:
        return sum(1 for c in self.connections if c.in_flight)

    def stop(self) -> None:
        super().stop()
        for conn in self.connections:
            conn._close()


async def _run(raw: dict[str, Any]) -> dict[str, Any]:
    spec = Spec.from_json(raw)
    return await LoadGenerator(spec).measure(spec.warmup, spec.duration, spec.watch_pids)


if __name__ == "__main__":
    client_main(_run)
