"""Helpers for test authors: serve any ASGI app on a real socket, and drive the fake providers.

from fake_providers.testing import FakeProviders, serve

with FakeProviders() as fake:
    client = openai.OpenAI(base_url=fake.openai_base_url, api_key="sk-test")
    ...
    assert fake.requests(path="/openai/v1/chat/completions")[0].body["model"] == "gpt-4o-mini"

with serve(my_asgi_app) as served:   # also `async with`
    httpx.get(served.base_url + "/healthz")
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from types import TracebackType
from typing import Any, Self

import httpx
import msgspec
import uvicorn

from fake_providers.app import STATE_KEY, create_app
from fake_providers.clock import Clock
from fake_providers.connection import CONTROLLED_HTTP_PROTOCOL
from fake_providers.journal import JournalEntry, JournalPage
from fake_providers.options import FakeOptions
from fake_providers.script import ScriptStep

ASGIApplication = Callable[[Any, Any, Any], Awaitable[None]]

STARTUP_TIMEOUT = 10.0
SHUTDOWN_TIMEOUT = 10.0
_POLL_INTERVAL = 0.005

_PAGE_DECODER = msgspec.json.Decoder(JournalPage)
_ENCODER = msgspec.json.Encoder()


class ServerStartError(RuntimeError):
    pass


class SSEEvent(msgspec.Struct, frozen=True):
    """One server-sent event: its `event:` name (None when absent) and its `data:` text."""

    event: str | None
    data: str

    def json(self) -> Any:
        return msgspec.json.decode(self.data)


def parse_sse(text: str) -> list[SSEEvent]:
    """Split an SSE body into events (blank-line separated; `data:` lines joined with newlines)."""
    events = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        name: str | None = None
        data: list[str] = []
        for line in block.split("\n"):
            field, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if field == "event":
                name = value
            elif field == "data":
                data.append(value)
        if name is not None or data:
            events.append(SSEEvent(event=name, data="\n".join(data)))
    return events


class ServedApp:
    """An ASGI app served by uvicorn in a background thread with its own event loop.

    Use it as a context manager (`with` or `async with`); the port is bound before the server
    starts, so `.port` and `.base_url` are valid as soon as the object exists. The server uses the
    connection-control protocol, so fake faults that reset or cut connections work.
    """

    def __init__(
        self,
        app: ASGIApplication,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        graceful_shutdown: int = 1,
        log_level: str = "warning",
    ) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        # IPPROTO_TCP explicitly: asyncio only sets TCP_NODELAY on sockets that say they are TCP.
        self._socket = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind((host, port))
        self.host = host
        self.port: int = self._socket.getsockname()[1]
        config = uvicorn.Config(
            app,
            http=CONTROLLED_HTTP_PROTOCOL,
            loop="asyncio",
            lifespan="auto",
            log_level=log_level,
            access_log=False,
            timeout_graceful_shutdown=graceful_shutdown,
        )
        self._server = uvicorn.Server(config)
        self._thread: threading.Thread | None = None
        self._failure: BaseException | None = None

    @property
    def base_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def _run(self) -> None:
        try:
            asyncio.run(self._server.serve(sockets=[self._socket]))
        except BaseException as exc:  # surfaced by start() and stop()
            self._failure = exc

    def start(self) -> Self:
        """Start serving and wait (polling, with a deadline) until the port accepts connections."""
        if self._thread is not None:
            return self
        self._thread = threading.Thread(target=self._run, name=f"serve:{self.port}", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not self._server.started:
            if not self._thread.is_alive():
                raise ServerStartError(
                    f"server on port {self.port} stopped during startup"
                ) from self._failure
            if time.monotonic() > deadline:
                self.stop()
                raise ServerStartError(f"server on port {self.port} did not start within {STARTUP_TIMEOUT}s")
            time.sleep(_POLL_INTERVAL)
        _wait_until_accepting(self.host, self.port, deadline)
        return self

    def stop(self) -> None:
        """Ask the server to exit and wait for its thread; force the exit if it takes too long."""
        thread = self._thread
        if thread is None:
            self._socket.close()
            return
        self._server.should_exit = True
        thread.join(SHUTDOWN_TIMEOUT)
        if thread.is_alive():
            self._server.force_exit = True
            thread.join(SHUTDOWN_TIMEOUT)
        self._thread = None
        self._socket.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    async def __aenter__(self) -> Self:
        return await asyncio.to_thread(self.start)

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await asyncio.to_thread(self.stop)


def _wait_until_accepting(host: str, port: int, deadline: float) -> None:
    while True:
        try:
            with socket.create_connection((host, port), timeout=1.0):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise ServerStartError(f"nothing accepts connections on {host}:{port}") from None
            time.sleep(_POLL_INTERVAL)


def serve(
    app: ASGIApplication, host: str = "127.0.0.1", port: int = 0, *, graceful_shutdown: int = 1
) -> ServedApp:
    """Serve any ASGI app on a real socket: `with serve(app) as served: served.base_url`.

    On exit, answers still in flight get `graceful_shutdown` seconds before they are cancelled.
    """
    return ServedApp(app, host, port, graceful_shutdown=graceful_shutdown)


class FakeProviders:
    """The fake providers on a real port, with the control API at hand.

    `openai_base_url` is what the OpenAI SDK takes (`…/openai/v1`); `anthropic_base_url` is what the
    Anthropic SDK takes (`…/anthropic`); `url(prefix)` builds any other.

    `clock` is what the answers' pauses (`slow` faults) wait on; it may also be swapped while the
    server runs (`fake.clock = ManualClock()`), and then a test decides when each pause ends.
    """

    def __init__(
        self,
        options: FakeOptions | None = None,
        *,
        clock: Clock | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.app = create_app(options, clock=clock)
        self._served = ServedApp(self.app, host, port)
        self._client = httpx.Client(base_url=self._served.base_url, timeout=10.0)

    @property
    def port(self) -> int:
        return self._served.port

    @property
    def base_url(self) -> str:
        return self._served.base_url

    @property
    def clock(self) -> Clock:
        """The clock the answers' pauses wait on."""
        clock: Clock = self.app.state[STATE_KEY].replies.clock
        return clock

    @clock.setter
    def clock(self, clock: Clock) -> None:
        self.app.state[STATE_KEY].replies.clock = clock

    @property
    def openai_base_url(self) -> str:
        return self.base_url + "/openai/v1"

    @property
    def anthropic_base_url(self) -> str:
        return self.base_url + "/anthropic"

    def url(self, path: str) -> str:
        return self.base_url + "/" + path.lstrip("/")

    def start(self) -> Self:
        self._served.start()
        return self

    def stop(self) -> None:
        self._client.close()
        self._served.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    async def __aenter__(self) -> Self:
        return await asyncio.to_thread(self.start)

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await asyncio.to_thread(self.stop)

    def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        response = self._client.request(method, path, **kwargs)
        response.raise_for_status()
        return response

    def requests(
        self, path: str | None = None, model: str | None = None, *, since: int | None = None
    ) -> list[JournalEntry]:
        """Journaled requests, oldest first, filtered by exact path, body model, and seq."""
        params = {
            key: value
            for key, value in (("path", path), ("model", model), ("since", since))
            if value is not None
        }
        return _PAGE_DECODER.decode(self._call("GET", "/_fake/requests", params=params).content).data

    def last_seq(self) -> int:
        return _PAGE_DECODER.decode(
            self._call("GET", "/_fake/requests", params={"limit": 0}).content
        ).last_seq

    def clear(self) -> None:
        """Empty the journal."""
        self._call("DELETE", "/_fake/requests")

    def script(self, steps: Sequence[ScriptStep | Mapping[str, Any]], *, model: str | None = None) -> None:
        """Queue steps for the next requests of `model` (None: any model). See `POST /_fake/script`."""
        payload = {"model": model, "steps": [msgspec.to_builtins(step) for step in steps]}
        self._call("POST", "/_fake/script", content=_ENCODER.encode(payload))

    def clear_script(self) -> None:
        self._call("DELETE", "/_fake/script")

    def reset(self, *, seed: int | msgspec.UnsetType | None = msgspec.UNSET) -> None:
        """Forget the journal, every queued step and every stored Response. With `seed`, ids and
        `created` start over from it (None: random again), so one test's answers are repeatable
        whatever ran before it on the same server."""
        if seed is msgspec.UNSET:
            self._call("POST", "/_fake/reset")
        else:
            self._call("POST", "/_fake/reset", content=_ENCODER.encode({"seed": seed}))

    def stored_responses(self) -> list[str]:
        """Ids of the Responses the fake holds (stored and neither deleted nor forgotten), oldest first."""
        ids: list[str] = self._call("GET", "/_fake/responses").json()["data"]
        return ids

    def forget_response(self, response_id: str) -> bool:
        """Make the fake lose a stored Response, as an upstream that expired it or lost its state would:
        chaining onto it then gets `previous_response_not_found`. True when the fake held it."""
        forgotten: bool = self._call("DELETE", f"/_fake/responses/{response_id}").json()["forgotten"]
        return forgotten

    def status(self) -> dict[str, int]:
        result: dict[str, int] = self._call("GET", "/_fake/status").json()
        return result
