"""Fewer writes per answer: what an answer writes in one turn of the event loop goes out together.

uvicorn writes an answer's status line and headers as soon as the app starts it, then each body
message on its own, then (chunked) the terminating chunk: a JSON answer costs two ``write``
system calls, and a stream one more than its events. On loopback a write is among the costliest
things a request does (the kernel delivers the segment in the writer's time). So each request's
cycle writes through :class:`CombiningWriter`: the bytes written while one task step runs are
kept and written at the end of that turn of the loop (``call_soon``), in one call. A JSON answer
(head and body sent back to back) becomes one write; a stream's head goes with its first event
and its last event with the terminating chunk when they are sent without a wait in between. No
answer waits longer than the step that wrote it: the bytes leave before the loop polls for I/O
again, as they would have left a busy socket anyway; and an answer's last bytes leave as soon as
it is complete, before its handler's closing work (settlement, metrics) in the same step.

The writer is also the request's **disconnect hook** (``scope["extensions"]["gateway.disconnect"]``):
a handler that must stop when its client goes away registers its task with :meth:`~CombiningWriter.watch`,
and the connection's loss cancels it; no watcher task per request has to wait on ``receive``.
"""

from __future__ import annotations

import asyncio
from typing import Any

from gateway.api.asgi import DISCONNECT_HOOK
from gateway.server.http import GuardedHttpProtocol


class CombiningWriter:
    """Stands in for one request cycle's transport (or a WebSocket connection's): ``write``
    keeps the bytes, and the first one of a turn asks the loop to write them all at the end of
    it. ``close`` writes what is kept first."""

    __slots__ = ("_pending", "_scheduled", "_watched", "gone", "loop", "transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self.transport = transport
        self.loop = loop
        self._pending: list[bytes] = []
        self._scheduled = False
        self._watched: asyncio.Task[Any] | None = None
        self.gone = False  # the connection was lost before the answer was complete

    # -- the disconnect hook ---------------------------------------------------------------
    def watch(self, task: asyncio.Task[Any]) -> None:
        """Cancel ``task`` when the connection is lost (at once if it is gone already)."""
        self._watched = task
        if self.gone:
            task.cancel()

    def unwatch(self) -> None:
        self._watched = None

    def lost(self) -> None:
        """The connection is gone with the answer incomplete."""
        self.gone = True
        task, self._watched = self._watched, None
        if task is not None:
            task.cancel()

    # -- the transport ---------------------------------------------------------------------

    def write(self, data: bytes) -> None:
        if not data:
            return
        self._pending.append(data)
        if not self._scheduled:
            self._scheduled = True
            self.loop.call_soon(self.flush)

    def flush(self) -> None:
        self._scheduled = False
        pending = self._pending
        if not pending:
            return
        data = pending[0] if len(pending) == 1 else b"".join(pending)
        pending.clear()
        if not self.transport.is_closing():
            self.transport.write(data)

    def close(self) -> None:
        self.flush()
        self.transport.close()

    def is_closing(self) -> bool:
        return self.transport.is_closing()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self.transport.get_extra_info(name, default)

    def pause_reading(self) -> None:
        self.transport.pause_reading()

    def resume_reading(self) -> None:
        self.transport.resume_reading()


class CombiningHttpProtocol(GuardedHttpProtocol):
    """:class:`GuardedHttpProtocol` whose request cycles write through a :class:`CombiningWriter`,
    which is also their disconnect hook."""

    def _start_asgi_task(self, cycle: Any, app: Any) -> None:
        writer = cycle.transport = CombiningWriter(self.transport, self.loop)
        cycle.scope.setdefault("extensions", {})[DISCONNECT_HOOK] = writer
        super()._start_asgi_task(cycle, app)

    def shutdown(self) -> None:
        # What an answer wrote in this turn goes out before a graceful shutdown closes the
        # connection (its transport flushes what it holds; ours it does not know about).
        self._flush_answer()
        super().shutdown()

    def expire(self) -> None:
        self._flush_answer()
        super().expire()

    def on_response_complete(self) -> None:
        # The answer is whole: it leaves now, not at the end of the step that finished it, where
        # the handler still records its settlement and metrics (with one request at a time, the
        # client would wait for that work too).
        self._flush_answer()
        super().on_response_complete()

    def _flush_answer(self) -> None:
        cycle = self.cycle
        if cycle is not None and isinstance(cycle.transport, CombiningWriter):
            cycle.transport.flush()

    def connection_lost(self, exc: Exception | None) -> None:
        cycle = self.cycle
        super().connection_lost(exc)
        if cycle is not None and cycle.disconnected and isinstance(cycle.transport, CombiningWriter):
            cycle.transport.lost()
