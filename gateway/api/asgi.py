"""Raw ASGI plumbing: read the body, answer, watch for disconnects, and :class:`AsgiChannel`,
the :class:`~gateway.exchange.ClientChannel` of the proxy routes.

The proxy routes are served on raw ASGI so that the gateway decides exactly when response
headers go out (the stream commit point) and pays nothing for framework layers it does not use.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable
from types import TracebackType
from typing import Any, Protocol

from litestar.types import Receive, Scope, Send

from gateway.errors.client import GatewayError, PayloadTooLarge
from gateway.exchange import ClientDisconnected, new_request_id
from gateway.exchange.body import parse_count
from gateway.policy.auth import presented_key

# The scope extension of the gateway's HTTP server that cancels a task when its client goes away.
DISCONNECT_HOOK = "gateway.disconnect"
JSON_HEADERS: tuple[tuple[bytes, bytes], ...] = ((b"content-type", b"application/json"),)
SSE_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
)


def header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value).decode("latin-1")
    return None


async def read_body(scope: Scope, receive: Receive, limit: int) -> bytes:
    """The whole request body, refusing more than ``limit`` bytes with a 413."""
    declared = header(scope, b"content-length")
    size = parse_count(declared) if declared is not None else None
    if size is not None and size > limit:
        raise PayloadTooLarge(
            f"Request body is larger than the limit of {limit} bytes.", code="request_too_large"
        )
    chunks: list[bytes] = []
    size = 0
    while True:
        message: Any = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnected
        chunk: bytes = message.get("body", b"")
        if chunk:
            size += len(chunk)
            if size > limit:
                raise PayloadTooLarge(
                    f"Request body is larger than the limit of {limit} bytes.", code="request_too_large"
                )
            chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _raw_headers(headers: Iterable[tuple[str, str]]) -> list[tuple[bytes, bytes]]:
    return [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers]


async def send_bytes(
    send: Send,
    status: int,
    body: bytes,
    *,
    base: Iterable[tuple[bytes, bytes]] = JSON_HEADERS,
    headers: Iterable[tuple[str, str]] = (),
) -> None:
    extra = _raw_headers(headers)
    names = {name.lower() for name, _ in extra}
    raw = [*(h for h in base if h[0] not in names), *extra, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body, "more_body": False})


async def send_error(send: Send, error: GatewayError, *, headers: Iterable[tuple[str, str]] = ()) -> None:
    """An error in OpenAI's shape; every answer carries an ``x-request-id`` (SDKs read it)."""
    extra = [*error.headers.items(), *headers]
    if not any(name == "x-request-id" for name, _ in extra):
        extra.append(("x-request-id", new_request_id()))
    await send_bytes(send, error.status_code, error.body(), headers=extra)


async def start_stream(send: Send, *, headers: Iterable[tuple[str, str]] = ()) -> None:
    """A 200 stream's head: an event stream, unless ``headers`` bring their own ``content-type``
    (a relayed body: speech, a file's content)."""
    extra = _raw_headers(headers)
    base = SSE_HEADERS[1:] if any(name == b"content-type" for name, _ in extra) else SSE_HEADERS
    await send({"type": "http.response.start", "status": 200, "headers": [*base, *extra]})


async def send_chunk(send: Send, chunk: bytes) -> None:
    await send({"type": "http.response.body", "body": chunk, "more_body": True})


async def end_stream(send: Send) -> None:
    await send({"type": "http.response.body", "body": b"", "more_body": False})


class DisconnectHook(Protocol):
    """What the gateway's HTTP server offers under ``scope["extensions"]["gateway.disconnect"]``:
    a task registered with ``watch`` is cancelled when the connection is lost."""

    gone: bool
    loop: asyncio.AbstractEventLoop  # the connection's

    def watch(self, task: asyncio.Task[Any]) -> None: ...

    def unwatch(self) -> None: ...


class CancelOnDisconnect:
    """Cancel the enclosed work when the client disconnects; the task that entered the block
    then sees :class:`ClientDisconnected`.

    With the server's disconnect hook, the connection's loss cancels the task itself; without
    it (another ASGI server), a watcher task waits on ``receive`` for ``http.disconnect``.
    """

    __slots__ = ("_hook", "_receive", "_task", "_watcher")

    def __init__(self, receive: Receive, hook: DisconnectHook | None) -> None:
        self._receive = receive
        self._hook = hook
        self._task: asyncio.Task[Any] | None = None
        self._watcher: asyncio.Task[None] | None = None

    async def _watch(self, hook: _Gone) -> None:
        receive = self._receive
        while True:
            message: Any = await receive()
            if message["type"] == "http.disconnect":
                hook.gone = True
                assert self._task is not None
                self._task.cancel()
                return

    async def __aenter__(self) -> None:
        hook = self._hook
        # With the loop given, no lookup of the running loop (a getpid system call on 3.11).
        task = self._task = asyncio.current_task(hook.loop if hook is not None else None)
        assert task is not None
        if hook is not None:
            hook.watch(task)
        else:
            gone = _Gone(task.get_loop())
            self._hook = gone
            self._watcher = gone.loop.create_task(self._watch(gone))

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        hook, task = self._hook, self._task
        assert hook is not None and task is not None
        if self._watcher is not None:
            self._watcher.cancel()
        else:
            hook.unwatch()
        if kind is not None and issubclass(kind, asyncio.CancelledError) and hook.gone:
            task.uncancel()
            raise ClientDisconnected from None


class _Gone:
    """The watcher task's record of a disconnect (no server hook)."""

    __slots__ = ("gone", "loop")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.gone = False
        self.loop = loop

    def watch(self, task: asyncio.Task[Any]) -> None:
        return None

    def unwatch(self) -> None:
        return None


def disconnect_hook(scope: Scope) -> DisconnectHook | None:
    extensions: Any = scope.get("extensions")
    if not extensions:
        return None
    hook: DisconnectHook | None = extensions.get(DISCONNECT_HOOK)
    return hook


def cancel_on_disconnect(receive: Receive, scope: Scope | None = None) -> CancelOnDisconnect:
    """Cancel the enclosed work when the client disconnects (see :class:`CancelOnDisconnect`)."""
    return CancelOnDisconnect(receive, disconnect_hook(scope) if scope is not None else None)


def presented_key_from_scope(scope: Scope) -> str | None:
    """The gateway key from ``Authorization: Bearer``, ``api-key`` or ``x-api-key`` (one pass)."""
    authorization = api_key = x_api_key = None
    for key, value in scope["headers"]:
        if key == b"authorization":
            authorization = bytes(value).decode("latin-1")
        elif key == b"api-key":
            api_key = bytes(value).decode("latin-1")
        elif key == b"x-api-key":
            x_api_key = bytes(value).decode("latin-1")
    return presented_key(authorization, api_key, x_api_key)


class AsgiChannel:
    """One ASGI request as a :class:`~gateway.exchange.ClientChannel`."""

    __slots__ = ("_receive", "_send", "scope", "started")

    def __init__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.scope = scope
        self._receive = receive
        self._send = send
        self.started = False

    def presented_key(self) -> str | None:
        return presented_key_from_scope(self.scope)

    def header(self, name: bytes) -> str | None:
        return header(self.scope, name)

    async def read_body(self, limit: int) -> bytes:
        return await read_body(self.scope, self._receive, limit)

    async def send_json(self, status: int, body: bytes, headers: Iterable[tuple[str, str]] = ()) -> None:
        self.started = True
        await send_bytes(self._send, status, body, headers=headers)

    async def start_stream(self, headers: Iterable[tuple[str, str]] = ()) -> None:
        self.started = True
        await start_stream(self._send, headers=headers)

    async def send_chunk(self, chunk: bytes) -> None:
        await self._send({"type": "http.response.body", "body": chunk, "more_body": True})

    async def end_stream(self) -> None:
        await end_stream(self._send)

    def cancel_on_disconnect(self) -> contextlib.AbstractAsyncContextManager[None]:
        return cancel_on_disconnect(self._receive, self.scope)
