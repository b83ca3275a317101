"""A primary of the Redis Cluster killed under load (SIGKILL: nothing flushed), its replica
promoted; and the same on a Sentinel-managed primary.

What the gateway promises through a failover:

- every request is answered: 200, or 503 with ``retry-after`` (``policy.on_store_error =
  "closed"``) while a slot has no primary for longer than ``redis.command_timeout_seconds``;
  never a 500, never later than the command timeout (plus the upstream's own time);
- once the replica is promoted, every request is served again, from both sides of the cluster;
- nothing the gateway acknowledged is lost, except writes the old primary had acknowledged but
  not yet sent to its replica (replication is asynchronous): on loopback, those of the last
  moment before the kill;
- counters (the usage rollup, the budget windows) count every answered request once, within
  the settlements in flight at the kill (one batch of the settler).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx
from redis.cluster import RedisCluster

from fake_providers.testing import FakeProviders
from gateway.clock import RealClock
from gateway.redis.keys import slot
from gateway.redis.local_cluster import LocalCluster, LocalSentinel
from gateway.testing import base_config, poll_until, serve_gateway

MEMBER = "sk-test-team-member-failover"
THREADS = 6
BEFORE = 150  # answers before the fault
AFTER = 150  # answers to requests sent once the store serves again
TIMEOUT = 5.0  # redis.command_timeout_seconds


@dataclass(frozen=True)
class Answer:
    began: float
    ended: float
    status: int
    id: str
    retry_after: str | None


@dataclass
class Load:
    """Threads sending Responses requests (each stored) until told to stop."""

    client: httpx.Client
    answers: list[Answer] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        n = 0
        while not self.stop.is_set():
            n += 1
            began = time.monotonic()
            try:
                r = self.client.post("/responses", json={"model": "gpt-4o-mini", "input": f"request {n}"})
            except httpx.HTTPError as exc:
                self.errors.append(exc)
                continue
            rid = r.json().get("id", "") if r.status_code == 200 else ""
            self.answers.append(
                Answer(began, time.monotonic(), r.status_code, rid, r.headers.get("retry-after"))
            )

    def since(self, moment: float) -> list[Answer]:
        return [a for a in self.answers if a.began > moment]


def run_load(
    client: httpx.Client, fault: Callable[[], object], recovered: Callable[[], object]
) -> tuple[Load, float, float]:
    """``BEFORE`` answers, then ``fault()``, then ``recovered()`` (which waits until the store
    serves again), then ``AFTER`` answers to requests sent after that. Returns the load and when
    the fault began and the store was back."""
    load = Load(client)
    threads = [threading.Thread(target=load.run, daemon=True) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    try:
        poll_until(lambda: len(load.answers) >= BEFORE, what="answers before the fault", deadline=30)
        fault_at = time.monotonic()
        fault()
        recovered()
        back_at = time.monotonic()
        poll_until(lambda: len(load.since(back_at)) >= AFTER, what="answers after recovery", deadline=30)
    finally:
        load.stop.set()
        for thread in threads:
            thread.join(TIMEOUT + 10)
    return load, fault_at, back_at


def check_answers(load: Load, fault_at: float, back_at: float) -> None:
    assert load.errors == []
    assert {a.status for a in load.answers} <= {200, 503}
    assert all(a.retry_after == "1" for a in load.answers if a.status == 503)
    longest = max(a.ended - a.began for a in load.answers)
    assert longest < TIMEOUT + 2.0, longest
    before = [a for a in load.answers if a.ended < fault_at]
    assert len(before) >= BEFORE and all(a.status == 200 for a in before)
    # Served again once the store is back.
    assert all(a.status == 200 for a in load.since(back_at)), [a.status for a in load.since(back_at)]


def test_a_primary_killed_under_load_fails_over_without_a_500(
    healthy_cluster: LocalCluster, fake: FakeProviders, cluster_sync: RedisCluster
) -> None:
    cluster = healthy_cluster
    config = base_config(fake, cluster.url)
    config["teams"] = [{"id": "failover", "budgets": [{"window": "day", "limit_usd": 1000.0}]}]
    config["auth"]["keys"].append({"name": "member", "key": MEMBER, "team": "failover"})
    config["redis"]["command_timeout_seconds"] = TIMEOUT
    prefix = config["redis"]["key_prefix"]
    # The victim serves the team's slot: every admission and settlement goes through it.
    victim = cluster.node_of_slot(slot("{t:failover}"))
    with (
        serve_gateway(config, clock=RealClock()) as gw,
        httpx.Client(
            base_url=gw.base_url, headers={"authorization": f"Bearer {MEMBER}"}, timeout=30
        ) as client,
    ):
        # Back once every slot has a live primary again: the victim's replica was promoted.
        load, killed_at, back_at = run_load(client, lambda: cluster.kill(victim), cluster.wait_healthy)
        check_answers(load, killed_at, back_at)
        assert victim not in cluster.primary_nodes()
        assert len(cluster.primary_nodes()) == 3

        # Nothing acknowledged is lost but what the old primary had not yet replicated.
        answered = [a for a in load.answers if a.status == 200]
        lost = [a for a in answered if client.get(f"/responses/{a.id}").status_code != 200]
        assert all(killed_at - 0.5 < a.ended < killed_at + 0.5 for a in lost), lost
        assert len(lost) <= THREADS

        # Every answered request counted once (within the settlements in flight at the kill).
        day = datetime.fromtimestamp(time.time(), UTC).strftime("%Y%m%d")
        rollup = f"{prefix}{{t:failover}}:roll:d:{day}"

        def counted() -> int | None:
            raw = cluster_sync.hgetall(rollup)  # type: ignore[no-untyped-call]
            total = sum(int(v) for k, v in raw.items() if k.startswith(b"k:") and k.endswith(b"|req"))
            return total if total >= len(answered) - THREADS else None

        total = poll_until(counted, what="the settlements", deadline=10)
        assert len(answered) - THREADS <= total <= len(load.answers), (total, len(answered))


def test_a_sentinel_failover_is_followed(sentinel: LocalSentinel, fake: FakeProviders) -> None:
    config = base_config(fake, "redis://127.0.0.1/0")
    config["redis"].update(
        {"mode": "sentinel", "sentinels": sentinel.sentinels, "service_name": sentinel.service}
    )
    old = sentinel.master_port()
    victim = sentinel.primary if sentinel.primary.port == old else sentinel.replica
    with (
        serve_gateway(config, clock=RealClock()) as gw,
        httpx.Client(
            base_url=gw.base_url, headers={"authorization": "Bearer sk-test-gateway-key-1"}, timeout=30
        ) as client,
    ):
        # Back once the sentinels name the promoted replica.
        load, killed_at, back_at = run_load(
            client,
            victim.kill,
            lambda: poll_until(lambda: sentinel.master_port() != old, what="a new primary", deadline=30),
        )
        check_answers(load, killed_at, back_at)
        answered = [a for a in load.answers if a.status == 200 and a.ended < killed_at - 0.5]
        assert all(client.get(f"/responses/{a.id}").status_code == 200 for a in answered)


def test_a_slot_moved_under_load_is_followed_through_ask_and_tryagain(
    healthy_cluster: LocalCluster, fake: FakeProviders, cluster_sync: RedisCluster
) -> None:
    """Resharding the slot of a team's counters while its requests run: the client follows
    ``ASK`` (a key already moved) and retries ``TRYAGAIN`` (a script whose keys are split between
    the two nodes for a moment); every request is answered and counted once."""
    cluster = healthy_cluster
    config = base_config(fake, cluster.url)
    config["teams"] = [{"id": "reshard", "limits": {"rpm": 100_000}}]
    config["auth"]["keys"].append(
        {"name": "member", "key": MEMBER, "team": "reshard", "limits": {"rpm": 100_000}}
    )
    prefix = config["redis"]["key_prefix"]
    team_slot = slot("{t:reshard}")
    source = cluster.node_of_slot(team_slot)
    target = next(n for n in cluster.primary_nodes() if n is not source)
    moved: list[int] = []
    with (
        serve_gateway(config, clock=RealClock()) as gw,
        httpx.Client(
            base_url=gw.base_url, headers={"authorization": f"Bearer {MEMBER}"}, timeout=30
        ) as client,
    ):

        def reshard() -> None:
            moved.append(cluster.migrate_slot(team_slot, target, batch=1, pause=0.1))

        load, _, _ = run_load(client, reshard, lambda: None)
        assert moved and moved[0] >= 3  # the team's limiters, leases, rollup... moved key by key
        assert cluster.node_of_slot(team_slot) is target
        assert load.errors == []
        assert {a.status for a in load.answers} == {200}
        answered = len(load.answers)
        day = datetime.fromtimestamp(time.time(), UTC).strftime("%Y%m%d")
        rollup = f"{prefix}{{t:reshard}}:roll:d:{day}"

        def counted() -> int | None:
            raw = cluster_sync.hgetall(rollup)  # type: ignore[no-untyped-call]
            total = sum(int(v) for k, v in raw.items() if k.startswith(b"k:") and k.endswith(b"|req"))
            return total if total == answered else None

        poll_until(counted, what=f"{answered} requests counted", deadline=10)
