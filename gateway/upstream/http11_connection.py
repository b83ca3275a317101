"""One HTTP/1.1 client connection: an asyncio protocol fed to httptools' response parser.

The connection carries one exchange at a time. ``send`` writes a request already serialised to
bytes (``send_rest`` then writes a large body after its head, piece by piece, as the socket takes
it: a body is never copied whole into the transport's buffer); the parser callbacks fill in the status, the headers and the body chunks; the reader
(``wait_headers`` and ``next_chunk``) is woken through a single future whenever something
changed. Everything here is synchronous except those two waits, so a small answer that arrives in
one segment costs one ``data_received`` and one wake-up.

Errors are raised as the private exceptions below; the transport turns them into httpx's tree
with the request attached.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Sequence
from typing import cast

import httptools

from gateway.clock import TimerHandle

TimerFactory = Callable[[float, Callable[[], None]], TimerHandle]

HIGH_WATER = 256 * 1024  # stop reading from the socket while this much body waits unread
LOW_WATER = 64 * 1024
MAX_HEADER_BYTES = 64 * 1024  # an answer's header names and values, all together
WRITE_SLICE = 256 * 1024  # a large body is handed to the transport this much at a time


class ConnectionClosed(Exception):
    """The peer closed the connection (or it broke) before the answer was complete.

    ``received`` says whether any byte of the answer had arrived: a reused keep-alive
    connection that closes before answering at all is the one case worth a transparent retry.
    """

    def __init__(self, message: str, *, received: bool, reset: bool) -> None:
        super().__init__(message)
        self.received = received
        self.reset = reset


class ProtocolViolation(Exception):
    """The peer's bytes are not a valid HTTP/1.1 answer."""


class ReadTimedOut(Exception):
    """No byte arrived within the read timeout."""


class Http11Connection(asyncio.Protocol):
    """A keep-alive connection to one origin."""

    __slots__ = (
        "_body_expected_until_close",
        "_buffered",
        "_chunks",
        "_drain",
        "_error",
        "_header_bytes",
        "_headers",
        "_headers_done",
        "_keep_alive",
        "_loop",
        "_on_lost",
        "_parser",
        "_paused",
        "_received",
        "_unsent",
        "_waiter",
        "_write_paused",
        "closed",
        "complete",
        "counted",
        "idle_since",
        "in_exchange",
        "origin",
        "status",
        "transport",
    )

    def __init__(
        self,
        origin: tuple[str, str, int],
        loop: asyncio.AbstractEventLoop,
        on_lost: Callable[[Http11Connection], None],
    ) -> None:
        self.origin = origin
        self._loop = loop
        self._on_lost = on_lost
        self.transport: asyncio.Transport | None = None
        self._parser = httptools.HttpResponseParser(self)
        self.closed = False
        self.counted = False  # counted among the pool's open connections
        self.in_exchange = False
        self.idle_since = 0.0
        self._waiter: asyncio.Future[None] | None = None
        self._write_paused = False  # the transport's write buffer is over its high-water mark
        self._drain: asyncio.Future[None] | None = None
        self._reset_exchange()

    def _reset_exchange(self) -> None:
        self.status = 0
        self.complete = False
        self._headers: list[tuple[bytes, bytes]] = []
        self._header_bytes = 0
        self._headers_done = False
        self._chunks: deque[bytes] = deque()
        self._buffered = 0
        self._paused = False
        self._received = False
        self._keep_alive = False
        self._body_expected_until_close = False
        self._error: Exception | None = None
        self._unsent = False  # the answer came before the whole request went: not reusable

    # -- asyncio.Protocol -----------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses

    def data_received(self, data: bytes) -> None:
        if not self.in_exchange:
            # Bytes nobody asked for on an idle connection: it can no longer be trusted.
            self.close()
            return
        self._received = True
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(ProtocolViolation(f"invalid HTTP answer from the upstream: {exc}"))
            self.close()
        except httptools.HttpParserUpgrade:  # not an HttpParserError: a 101 answer
            self._fail(
                ProtocolViolation("the upstream switched protocols (101), which this client does not do")
            )
            self.close()
        except ProtocolViolation as exc:  # raised by a callback below
            self._fail(exc)
            self.close()

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        self._wake()

    def eof_received(self) -> bool | None:
        return False  # close our side too; connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.in_exchange and not self.complete and self._error is None:
            if self._headers_done and self._body_expected_until_close and exc is None:
                self.complete = True  # a body delimited by the end of the connection
            else:
                what = "the answer" if not self._headers_done else "the whole answer"
                reason = f" ({exc})" if exc is not None else ""
                self._error = ConnectionClosed(
                    f"the upstream closed the connection before sending {what}{reason}",
                    received=self._received,
                    reset=exc is not None,
                )
        self._wake()
        self._on_lost(self)

    # -- httptools callbacks --------------------------------------------------------------
    def on_message_begin(self) -> None:
        if self.complete:
            # A second answer to one request (in the same segment as the first, or while its
            # body is still being read): neither its headers nor its body are the caller's, and
            # the connection can no longer be trusted. Parsing stops here; the connection closes.
            raise ProtocolViolation("the upstream sent more than one answer to one request")

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name, value))
        self._header_bytes += len(name) + len(value)
        if self._header_bytes > MAX_HEADER_BYTES:
            # Recorded first: httptools reports a callback's exception as its own parser error.
            violation = ProtocolViolation(
                f"the upstream's answer headers exceed {MAX_HEADER_BYTES // 1024} KiB"
            )
            self._fail(violation)
            raise violation

    def on_headers_complete(self) -> None:
        status = self._parser.get_status_code()
        if 100 <= status < 200:
            self._headers = []  # an interim answer (100 Continue): the real one follows
            return
        self.status = status
        self._headers_done = True
        self._body_expected_until_close = not any(
            name.lower() in (b"content-length", b"transfer-encoding") for name, _ in self._headers
        )
        self._wake()

    def on_body(self, body: bytes) -> None:
        self._chunks.append(body)
        self._buffered += len(body)
        if self._buffered > HIGH_WATER and not self._paused and self.transport is not None:
            self._paused = True
            self.transport.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        if not self._headers_done:
            return  # the end of an interim answer
        self.complete = True
        self._keep_alive = self._parser.should_keep_alive()
        self._wake()

    # -- the exchange ---------------------------------------------------------------------
    def send(self, data: bytes) -> None:
        assert self.transport is not None
        self._reset_exchange()
        self.in_exchange = True
        self.transport.write(data)

    async def send_rest(self, pieces: Sequence[bytes | memoryview]) -> None:
        """Write the rest of a request after ``send`` (a large body, in pieces), waiting while
        the transport's buffer is full: a slice at a time is all it ever holds. Writing stops
        early when the answer starts or the connection ends (an upstream may refuse an upload
        before reading it); the answer, or the error, is the reader's."""
        transport = self.transport
        assert transport is not None
        for piece in pieces:
            view = memoryview(piece)
            for start in range(0, view.nbytes, WRITE_SLICE):
                while self._write_paused and not self._stop_writing():
                    await self._drained()
                if self._stop_writing():
                    self._unsent = True
                    return
                transport.write(view[start : start + WRITE_SLICE])

    def _stop_writing(self) -> bool:
        return self.closed or self._headers_done or self._error is not None

    async def _drained(self) -> None:
        drain = self._drain = self._loop.create_future()
        try:
            await drain
        finally:
            self._drain = None

    @property
    def headers(self) -> list[tuple[bytes, bytes]]:
        return self._headers

    @property
    def reusable(self) -> bool:
        """The answer was read to its end and both sides keep the connection open."""
        return (
            self.complete and self._keep_alive and not self.closed and not self._chunks and not self._unsent
        )

    async def wait_headers(self, timeout: float | None, arm: TimerFactory) -> None:
        while not self._headers_done:
            if self._error is not None:
                raise self._error
            await self._wait(timeout, arm)

    def take_all(self) -> bytes:
        """Every body byte that has arrived (the whole body once ``complete``)."""
        data = b"".join(self._chunks) if len(self._chunks) != 1 else self._chunks[0]
        self._chunks.clear()
        self._consumed()
        return data

    async def next_chunk(self, timeout: float | None, arm: TimerFactory) -> bytes | None:
        """The next piece of the body, or None at its end."""
        while True:
            if self._chunks:
                chunk = self._chunks.popleft() if len(self._chunks) == 1 else self._join_all()
                self._consumed(len(chunk))
                return chunk
            if self.complete:
                return None
            if self._error is not None:
                raise self._error
            await self._wait(timeout, arm)

    def finish_exchange(self) -> None:
        self.in_exchange = False

    def close(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.close()
        self.closed = True

    def abort(self) -> None:
        """Drop the connection at once (an abandoned exchange: the upstream should stop)."""
        if self.transport is not None and not self.closed:
            self.transport.abort()
        self.closed = True

    # -- internals ------------------------------------------------------------------------
    def _join_all(self) -> bytes:
        data = b"".join(self._chunks)
        self._chunks.clear()
        return data

    def _consumed(self, size: int | None = None) -> None:
        self._buffered = self._buffered - size if size is not None else 0
        if self._paused and self._buffered < LOW_WATER and self.transport is not None:
            self._paused = False
            self.transport.resume_reading()

    def _fail(self, error: Exception) -> None:
        if self._error is None:
            self._error = error
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        drain = self._drain
        if drain is not None and not drain.done():
            drain.set_result(None)

    async def _wait(self, timeout: float | None, arm: TimerFactory) -> None:
        waiter = self._waiter = self._loop.create_future()
        timer = None
        if timeout is not None:

            def expire() -> None:
                if not waiter.done():
                    waiter.set_exception(ReadTimedOut(f"no data from the upstream within {timeout:g} s"))

            timer = arm(timeout, expire)
        try:
            await waiter
        finally:
            self._waiter = None
            if timer is not None:
                timer.cancel()
