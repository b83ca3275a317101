"""Circuit breakers across two real gateway processes on one Redis (the real clock): a
deployment that failed on replica A is skipped by replica B within about a second (B's view is
refreshed every second), and after the cooldown exactly one request of the two replicas probes
it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import redis

from fake_providers.testing import FakeProviders
from tests.integration.chats.test_replicas import Replica, poll, start, to_toml, wait_healthy
from tests.integration.failover.support import (
    FALLBACK,
    HELLO,
    OPENAI_CHAT,
    PRIMARY,
    TEXT,
    config,
    sent,
    words,
)

COOLDOWN = 3.0
STATE = 'gw_breaker_state{model="fb-primary",provider="fake-openai"}'


@pytest.fixture
def replicas(fake: FakeProviders, redis_url: str, tmp_path: Path) -> Iterator[tuple[Replica, Replica, str]]:
    cfg = config(fake, redis_url, breaker={"failures": 2, "cooldown_seconds": COOLDOWN})
    cfg["providers"][0]["retry"] = {"max_attempts": 2, "initial_delay": 0.0, "max_delay": 0.0}
    cfg["server"] = {"workers": 1, "models_refresh_seconds": 3600}
    path = tmp_path / "gateway.toml"
    path.write_text(to_toml(cfg), encoding="utf-8")
    started: list[Replica] = []
    try:
        for name in ("a", "b"):
            started.append(start(name, path, tmp_path))
        for replica in started:
            wait_healthy(replica, deadline=30)
        yield started[0], started[1], cfg["redis"]["key_prefix"]
    except BaseException:
        for replica in started:
            print(replica.tails())
        raise
    finally:
        for replica in started:
            if replica.proc.poll() is None:
                replica.proc.terminate()
            try:
                replica.proc.wait(10)
            except Exception:
                replica.proc.kill()


def text_of(replica: Replica) -> str:
    response = httpx.post(
        replica.root + "/v1/chat/completions",
        headers={"authorization": "Bearer sk-test-gateway-key-1"},
        json={"model": "primary", "messages": HELLO},
        timeout=20,
    )
    assert response.status_code == 200, response.text
    content: str = response.json()["choices"][0]["message"]["content"]
    return content


def breaker_state(replica: Replica) -> float | None:
    for line in httpx.get(replica.root + "/metrics", timeout=5).text.splitlines():
        if line.startswith(STATE):
            return float(line.rsplit(" ", 1)[1])
    return None


def test_a_breaker_opened_on_one_replica_is_seen_by_the_other_and_probed_once(
    replicas: tuple[Replica, Replica, str], fake: FakeProviders, redis_url: str
) -> None:
    a, b, prefix = replicas
    fake.script([{"fault": "503", "times": None}], model=PRIMARY)
    fake.script([{"reply": words(1, 60), "times": None}], model=FALLBACK)
    assert text_of(a) == TEXT  # two failures on A: open
    failed_at = time.monotonic()
    assert len(sent(fake, OPENAI_CHAT)) == 2
    poll(lambda: breaker_state(b) == 1.0, what="replica B sees the breaker open", deadline=5)
    assert time.monotonic() - failed_at < 2.0  # a one-second view, plus a process's scheduling
    assert text_of(b) == TEXT
    assert len(sent(fake, OPENAI_CHAT)) == 2  # B never tried the primary

    key = f"{prefix}breaker:{{cb:fake-openai/{PRIMARY}}}"
    with redis.Redis.from_url(redis_url) as r:
        open_until = float(r.hget(key, "open_until") or 0)
    poll(lambda: time.time() >= open_until + 0.2, what="the cooldown", deadline=COOLDOWN + 5)
    with ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(text_of, [a, b, a, b, a, b]))
    assert answers == [TEXT] * 6
    assert len(sent(fake, OPENAI_CHAT)) == 3  # exactly one probe across both replicas
