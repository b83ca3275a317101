"""Fixtures for the fake-provider tests: one seeded server per session, reset before each test."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import openai
import pytest

from fake_providers import FakeOptions
from fake_providers.clock import RealClock
from fake_providers.testing import FakeProviders
from gateway.clock import ManualClock

SEED = 1234


@pytest.fixture(scope="session")
def providers_session() -> Iterator[FakeProviders]:
    with FakeProviders(FakeOptions(seed=SEED)) as providers:
        yield providers


@pytest.fixture
def providers(providers_session: FakeProviders) -> FakeProviders:
    providers_session.reset()
    return providers_session


@pytest.fixture
def fake_clock(providers: FakeProviders) -> Iterator[ManualClock]:
    """The answers' pauses wait on this clock during the test (the real one again afterwards)."""
    clock = ManualClock()
    providers.clock = clock
    try:
        yield clock
    finally:
        providers.clock = RealClock()


@pytest.fixture
def client(providers: FakeProviders) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(
        base_url=providers.openai_base_url, api_key="sk-test-1234567890abcd", max_retries=0
    ) as sdk:
        yield sdk


@pytest.fixture
def http(providers: FakeProviders) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=providers.base_url, timeout=5.0) as raw:
        yield raw
