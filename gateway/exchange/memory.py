"""A :class:`~gateway.exchange.channel.ClientChannel` in memory: a request body in, what the
gateway answered out. For tests of the exchange and of endpoints without a server."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from gateway.errors.client import PayloadTooLarge
from gateway.exchange.channel import ClientDisconnected, Headers


class MemoryChannel:
    """One request: ``body``, ``key`` and ``headers`` in; ``status``, ``headers``, ``body_sent`` and ``chunks``
    out. :meth:`disconnect` plays a client that goes away (the work in
    :meth:`cancel_on_disconnect` is cancelled; later sends raise)."""

    def __init__(
        self, body: bytes = b"", *, key: str | None = None, headers: dict[str, str] | None = None
    ) -> None:
        self._body = body
        self._key = key
        self._headers = {name.lower().encode("latin-1"): value for name, value in (headers or {}).items()}
        self._gone = asyncio.Event()
        self._watched: asyncio.Task[object] | None = None
        self.status: int | None = None
        self.headers: dict[str, str] = {}
        self.body_sent = b""
        self.chunks: list[bytes] = []
        self.ended = False

    @property
    def started(self) -> bool:
        return self.status is not None

    @property
    def streamed(self) -> bytes:
        return b"".join(self.chunks)

    def presented_key(self) -> str | None:
        return self._key

    def header(self, name: bytes) -> str | None:
        return self._headers.get(name)

    def disconnect(self) -> None:
        self._gone.set()
        if self._watched is not None:
            self._watched.cancel()

    async def read_body(self, limit: int) -> bytes:
        if self._gone.is_set():
            raise ClientDisconnected
        if len(self._body) > limit:
            raise PayloadTooLarge(
                f"Request body is larger than the limit of {limit} bytes.", code="request_too_large"
            )
        return self._body

    def _start(self, status: int, headers: Headers) -> None:
        if self._gone.is_set():
            raise ClientDisconnected
        assert self.status is None, "the answer has started already"
        self.status = status
        self.headers = {name.lower(): value for name, value in headers}

    async def send_json(self, status: int, body: bytes, headers: Headers = ()) -> None:
        self._start(status, [("content-type", "application/json"), *headers])
        self.body_sent = body
        self.ended = True

    async def start_stream(self, headers: Headers = ()) -> None:
        self._start(200, [("content-type", "text/event-stream; charset=utf-8"), *headers])

    async def send_chunk(self, chunk: bytes) -> None:
        if self._gone.is_set():
            raise ClientDisconnected
        self.chunks.append(chunk)

    async def end_stream(self) -> None:
        self.ended = True

    @contextlib.asynccontextmanager
    async def cancel_on_disconnect(self) -> AsyncIterator[None]:
        task = asyncio.current_task()
        assert task is not None
        self._watched = task
        try:
            yield
        except asyncio.CancelledError:
            if self._gone.is_set():
                task.uncancel()
                raise ClientDisconnected from None
            raise
        finally:
            self._watched = None
