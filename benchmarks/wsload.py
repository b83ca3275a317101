"""A load client for the Responses API's WebSocket mode: asyncio + uvloop + ``websockets``.

Run as its own process (``python -m benchmarks.wsload``) with a JSON spec on stdin; it prints one
JSON result on stdout, in the shape of :mod:`benchmarks.loadgen`'s. N connections (``GET path``
upgraded, the key in the handshake's headers) each send the pre-encoded ``response.create``
message, read the events until ``response.completed``, record the latency and send the next one
at once (closed loop). An ``error``, ``response.failed`` or ``response.incomplete`` message, a
timeout or a closed connection is a failure (the connection is opened again). After ``warmup``
seconds the counters are reset and the measured window opens (:class:`benchmarks.window.Window`);
``duration`` seconds later it closes and the run stops.

Spec keys: host, port, path, headers ([[name, value], ...]), message (the text of each
``response.create``), connections, duration, warmup, timeout, compression (bool: offer
permessage-deflate, as the OpenAI SDKs' ``websockets`` connections do), watch_pids ([pid, ...]).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidHandshake, WebSocketException

from benchmarks.window import ClientSpec, ClosedLoop, client_main

_COMPLETED = b'{"type":"response.completed"'
_FAILED = (b'{"type":"error"', b'{"type":"response.failed"', b'{"type":"response.incomplete"')


@dataclass(kw_only=True)
class Spec(ClientSpec):
    path: str = "/v1/responses"
    message: str
    compression: bool = False


class _Failed(Exception):
    """A turn that ended with an error message."""


class SocketLoad(ClosedLoop):
    generator = "websocket"

    def __init__(self, spec: Spec) -> None:
        self.spec = spec
        self.message = spec.message.encode()  # sent as a text frame: websockets takes bytes as UTF-8
        super().__init__()
        self.in_flight_at: list[bool] = []

    async def _turn(self, ws: ClientConnection) -> int:
        """One ``response.create`` and its events; the bytes read."""
        await ws.send(self.message, text=True)
        read = 0
        while True:
            data = await ws.recv(decode=False)
            assert isinstance(data, bytes)
            read += len(data)
            if data.startswith(_COMPLETED):
                return read
            if data.startswith(_FAILED):
                raise _Failed(data[:600].decode("utf-8", "replace"))

    async def _connection(self, slot: int) -> None:
        """One connection for the whole run, opened again when it fails."""
        spec = self.spec
        url = f"ws://{spec.host}:{spec.port}{spec.path}"
        while self.running:
            try:
                async with connect(
                    url,
                    additional_headers=spec.headers,
                    compression="deflate" if spec.compression else None,
                    proxy=None,
                    max_size=None,
                    ping_interval=None,
                    close_timeout=1,
                    open_timeout=spec.timeout,
                ) as ws:
                    while self.running:
                        self.in_flight_at[slot] = True
                        started = time.perf_counter_ns()
                        async with asyncio.timeout(spec.timeout):
                            read = await self._turn(ws)
                        self._record(time.perf_counter_ns() - started, read)
                        self.in_flight_at[slot] = False
            except _Failed as exc:
                self._fail("error event", str(exc))
            except TimeoutError:
                self._fail("timeout", f"no response.completed within {spec.timeout:.0f}s")
            except (OSError, InvalidHandshake, WebSocketException) as exc:
                self._fail("connection", repr(exc))
                await asyncio.sleep(0.05)
            self.in_flight_at[slot] = False

    def _record(self, elapsed_ns: int, read: int) -> None:
        self.total_completed += 1
        stats = self.stats
        if stats.recording:
            stats.statuses[200] += 1
            stats.bytes_read += read
            stats.latencies_ns.append(elapsed_ns)

    def _fail(self, kind: str, sample: str) -> None:
        if self.running and self.stats.recording:
            self.stats.statuses[0] += 1
            self.stats.bad(kind, sample)

    def start(self) -> list[asyncio.Task[None]]:
        self.in_flight_at = [False] * self.spec.connections
        return [asyncio.create_task(self._connection(i)) for i in range(self.spec.connections)]

    def in_flight(self) -> int:
        return sum(self.in_flight_at)


async def _run(raw: dict[str, Any]) -> dict[str, Any]:
    spec = Spec.from_json(raw)
    return await SocketLoad(spec).measure(spec.warmup, spec.duration, spec.watch_pids)


if __name__ == "__main__":
    client_main(_run)
