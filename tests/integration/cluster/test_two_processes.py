"""Two real gateway processes on one Redis Cluster: limits are exact across them (a key in a team:
the key's and the team's counters are in the team's slot), a Responses chain is continued and
listed on either process, and a chat created on one is followed on the other.

The limiter is GCRA on Redis ``TIME``: ``rpm = 40`` gives a burst of 40, then one request every
1.5 s. The requests are released together so that all are admitted or refused within the burst.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from redis.cluster import RedisCluster

from fake_providers.testing import FakeProviders
from gateway.redis.keys import slot
from gateway.redis.local_cluster import LocalCluster
from tests.conftest import GATEWAY_KEY, base_config
from tests.integration.chats.test_replicas import Replica, poll, start, to_toml, wait_healthy

MEMBER = "sk-test-team-member-rpm40"
MSG = [{"role": "user", "content": "hello"}]
REQUESTS = 60


@pytest.fixture(scope="module")
def processes(
    fake_session: FakeProviders, cluster: LocalCluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[list[Replica], str]]:
    tmp = tmp_path_factory.mktemp("cluster-processes")
    config = base_config(fake_session, cluster.url)
    config["teams"] = [
        {"id": "research", "limits": {"rpm": 1000}, "budgets": [{"window": "day", "limit_usd": 50.0}]}
    ]
    config["auth"]["keys"] = [
        *config["auth"]["keys"],
        {"name": "member", "key": MEMBER, "team": "research", "limits": {"rpm": 40}},
    ]
    config["policy"] = {"time_source": "redis"}
    config["server"] = {"models_refresh_seconds": 3600, "workers": 1}
    path = tmp / "gateway.toml"
    path.write_text(to_toml(config), encoding="utf-8")
    started: list[Replica] = []
    try:
        for name in ("c1", "c2"):
            started.append(start(name, path, tmp))
        for replica in started:
            wait_healthy(replica, deadline=20)
        yield started, config["redis"]["key_prefix"]
    except BaseException:
        for replica in started:
            print(replica.tails())
        raise
    finally:
        for replica in started:
            if replica.proc.poll() is None:
                replica.proc.terminate()
            replica.proc.wait(10)


def http(replica: Replica, key: str = GATEWAY_KEY, **kwargs: object) -> httpx.Client:
    return httpx.Client(
        base_url=replica.root + "/v1", headers={"authorization": f"Bearer {key}"}, timeout=20, **kwargs
    )


def test_rpm_is_exact_across_two_processes_on_a_cluster(
    processes: tuple[list[Replica], str], fake: FakeProviders, cluster_sync: RedisCluster
) -> None:
    replicas, prefix = processes
    limits = httpx.Limits(max_connections=REQUESTS, max_keepalive_connections=REQUESTS)
    clients = [http(r, MEMBER, limits=limits) for r in replicas]
    try:
        for client in clients:  # authenticate once on each process (caches the key there)
            assert client.get("/models").status_code == 200
        barrier = threading.Barrier(REQUESTS)

        def send(i: int) -> tuple[int, int]:
            barrier.wait(10)
            r = clients[i % 2].post("/chat/completions", json={"model": "gpt-4o-mini", "messages": MSG})
            return i % 2, r.status_code

        began = time.monotonic()
        with ThreadPoolExecutor(REQUESTS) as pool:
            results = list(pool.map(send, range(REQUESTS)))
        elapsed = time.monotonic() - began
    finally:
        for client in clients:
            client.close()
    codes = [code for _, code in results]
    admitted = codes.count(200)
    summary = f"{admitted} x 200, {codes.count(429)} x 429 in {elapsed:.2f}s"
    # The burst of 40 plus one refill per 1.5 s; per-process counters would admit all 60.
    assert 40 <= admitted <= 40 + math.floor(elapsed / 1.5), summary
    assert admitted + codes.count(429) == REQUESTS, summary
    assert {p for p, _ in results} == {0, 1}
    assert len(fake.requests(path="/openai/v1/chat/completions")) == admitted
    # The key's limiter and the team's budget counters share the team's slot.
    limiter = f"{prefix}{{t:research}}:rl:key:"
    found = [k for k in cluster_sync.scan_iter(match=f"{limiter}*")]
    assert found, "the key's limiter is under the team's tag"
    assert {slot(k) for k in found} == {slot("{t:research}")}


def test_a_responses_chain_is_continued_on_either_process(processes: tuple[list[Replica], str]) -> None:
    replicas, _ = processes
    with http(replicas[0]) as one, http(replicas[1]) as two:
        previous = None
        ids = []
        for turn, client in enumerate((one, two, one, two)):
            body: dict[str, object] = {"model": "gpt-4o-mini", "input": f"turn {turn}"}
            if previous is not None:
                body["previous_response_id"] = previous
            r = client.post("/responses", json=body)
            assert r.status_code == 200, r.text
            previous = r.json()["id"]
            ids.append(previous)
        items = one.get(f"/responses/{ids[-1]}/input_items").json()["data"]
        texts = [part["text"] for item in items for part in item.get("content", []) if "text" in part]
        # Newest first, as OpenAI lists them.
        assert [t for t in texts if t.startswith("turn")] == ["turn 3", "turn 2", "turn 1", "turn 0"]
        assert two.get(f"/responses/{ids[0]}").status_code == 200


def test_a_chat_made_on_one_process_is_followed_on_the_other(processes: tuple[list[Replica], str]) -> None:
    replicas, _ = processes
    with replicas[0].chats() as one, replicas[1].chats() as two:
        created = one.post("", json={"model": "gpt-4o-mini", "message": "across"})
        assert created.status_code == 201, created.text
        chat_id = created.json()["id"]
        poll(lambda: two.get(f"/{chat_id}").json()["status"] == "waiting", what="the turn", deadline=15)
        messages = two.get(f"/{chat_id}/messages").json()["messages"]
        assert [m["role"] for m in messages] == ["user", "assistant"]
        with two.stream("GET", f"/{chat_id}/stream") as stream:
            assert stream.status_code == 200
            lines = stream.iter_lines()
            assert any("You said: across" in line for line in lines)
