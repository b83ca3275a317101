"""Policy across three real gateway processes on one Redis: an RPM limit is shared exactly, and a
key blocked on one process is refused at once by all of them.

The limiter is GCRA (``gateway/policy/lua/admit.lua``) on Redis ``TIME``: a key with ``rpm = 60``
gets a burst of 60 and then one more request per second. The 90 requests are released together
(a barrier) so that all of them are admitted or refused well within that second.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from fake_providers.testing import FakeProviders
from tests.conftest import base_config
from tests.integration.chats.test_replicas import Replica, start, to_toml, wait_healthy

ADMIN = "admin-key-0123456789abcdef"
LIMITED = "sk-test-limited-key-rpm60"
MSG = [{"role": "user", "content": "hello"}]
REQUESTS = 90


@pytest.fixture(scope="module")
def replicas(
    fake_session: FakeProviders, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[list[Replica]]:
    tmp = tmp_path_factory.mktemp("policy-processes")
    config = base_config(fake_session, redis_url)  # one redis.key_prefix for all three
    config["auth"]["keys"] = [
        *config["auth"]["keys"],
        {"name": "limited", "key": LIMITED, "limits": {"rpm": 60}},
    ]
    config["admin"] = {"keys": [{"name": "ops", "key": ADMIN}]}
    config["policy"] = {"time_source": "redis"}
    config["server"] = {"models_refresh_seconds": 3600}
    path = tmp / "gateway.toml"
    path.write_text(to_toml(config), encoding="utf-8")
    started: list[Replica] = []
    try:
        for name in ("p1", "p2", "p3"):
            started.append(start(name, path, tmp))
        for replica in started:
            wait_healthy(replica, deadline=20)
        yield started
    except BaseException:
        for replica in started:
            print(replica.tails())
        raise
    finally:
        for replica in started:
            if replica.proc.poll() is None:
                replica.proc.kill()
            replica.proc.wait(5)


def chat(client: httpx.Client, key: str) -> httpx.Response:
    return client.post(
        "/v1/chat/completions",
        headers={"authorization": f"Bearer {key}"},
        json={"model": "gpt-4o-mini", "messages": MSG},
    )


def admin(replica: Replica, method: str, path: str, body: object = None) -> httpx.Response:
    return httpx.request(
        method,
        replica.root + "/admin/v1" + path,
        headers={"authorization": f"Bearer {ADMIN}"},
        json=body,
        timeout=10,
    )


def test_rpm_is_shared_exactly_across_three_processes(replicas: list[Replica], fake: FakeProviders) -> None:
    limits = httpx.Limits(max_connections=REQUESTS, max_keepalive_connections=REQUESTS)
    clients = [httpx.Client(base_url=r.root, timeout=20, limits=limits) for r in replicas]
    try:
        # Authenticate once on each process without spending a request (caches the key there).
        for client in clients:
            assert client.get("/v1/models", headers={"authorization": f"Bearer {LIMITED}"}).status_code == 200
        barrier = threading.Barrier(REQUESTS)

        def send(i: int) -> tuple[int, httpx.Response]:
            barrier.wait(10)
            return i % 3, chat(clients[i % 3], LIMITED)

        began = time.monotonic()
        with ThreadPoolExecutor(REQUESTS) as pool:
            results = list(pool.map(send, range(REQUESTS)))
        elapsed = time.monotonic() - began
    finally:
        for client in clients:
            client.close()

    codes = [r.status_code for _, r in results]
    summary = (
        f"codes {sorted(set(codes))}: {codes.count(200)} x 200, {codes.count(429)} x 429 in {elapsed:.2f}s"
    )
    # The burst of 60, plus at most one refill per second the burst took (GCRA refills one request
    # a second at rpm=60; the burst usually takes ~0.2 s). Per-process counters would admit 90.
    admitted = codes.count(200)
    assert 60 <= admitted <= 60 + math.floor(elapsed), summary
    assert admitted + codes.count(429) == 90, summary
    assert len(fake.requests(path="/openai/v1/chat/completions")) == admitted
    # All three processes answered; the limit is one, whichever process is asked.
    assert {p for p, _ in results} == {0, 1, 2}

    ok = next(r for _, r in results if r.status_code == 200)
    assert ok.headers["x-ratelimit-limit-requests"] == "60"
    assert 0 <= int(ok.headers["x-ratelimit-remaining-requests"]) < 60
    assert "x-ratelimit-reset-requests" in ok.headers

    refused = next(r for _, r in results if r.status_code == 429)
    error = refused.json()["error"]
    assert error["code"] == "rate_limit_exceeded"
    assert error["type"] == "requests"
    assert error["message"].startswith("Rate limit reached for requests per min (RPM)")
    assert refused.headers["x-ratelimit-limit-requests"] == "60"
    assert refused.headers["x-ratelimit-remaining-requests"] == "0"
    assert refused.headers["x-ratelimit-reset-requests"].endswith("s")
    assert int(refused.headers["retry-after"]) >= 1


def test_a_key_blocked_on_one_process_is_refused_by_all(replicas: list[Replica]) -> None:
    p1, p2, _ = replicas
    created = admin(p1, "POST", "/keys", {"alias": "svc"})
    assert created.status_code == 201, created.text
    secret, kid = created.json()["key"], created.json()["id"]

    clients = [httpx.Client(base_url=r.root, timeout=20) for r in replicas]
    try:
        for replica, client in zip(replicas, clients, strict=True):
            r = chat(client, secret)
            assert r.status_code == 200, (replica.name, r.text)  # and each process caches the key

        blocked = admin(p2, "POST", f"/keys/{kid}/block")
        assert blocked.status_code == 200, blocked.text

        for replica, client in zip(replicas, clients, strict=True):
            r = chat(client, secret)
            assert r.status_code == 401, (replica.name, r.text)
            assert r.json()["error"] == {
                "message": "This API key has been blocked.",
                "type": "invalid_request_error",
                "param": None,
                "code": "invalid_api_key",
            }, replica.name
    finally:
        for client in clients:
            client.close()
