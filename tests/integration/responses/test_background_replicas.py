"""Background responses over two gateway processes on one Redis, on the real clock: a run is
cancelled through the replica that does not run it (the running one drops its upstream call),
and the replica running another one is SIGKILLed mid-answer, after which the survivor takes the
job over once its lease has run out and finishes it. The upstream answers are paced by the
fakes' manual clock, so both runs are surely mid-answer when the test acts."""

from __future__ import annotations

import contextlib
import signal
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from fake_providers.clock import FIRST_PART, GAP
from fake_providers.testing import FakeProviders
from gateway.clock import ManualClock
from tests.conftest import GATEWAY_KEY, AutoAdvance
from tests.fixtures.openresponses import validate_event, validate_response
from tests.integration.chats.test_replicas import Replica, poll, start, to_toml, wait_healthy
from tests.integration.responses.support import responses_config, sse_events

LEASE = 2.0  # renewed (and cancellations looked at) every 0.67 s; dead runs claimed after 2 s
SLOW = "fault-slow-300ms-400ms"
CHAT = "/openai/v1/chat/completions"


@pytest.fixture
def replica_config(fake: FakeProviders, redis_url: str, tmp_path: Path) -> tuple[Path, str]:
    config = responses_config(fake, redis_url)
    config["models"].append(
        {"name": "slow", "provider": "fake-openai", "upstream_model": SLOW, "api": "chat"}
    )
    config["responses"] = {"ttl_seconds": 3600, "background_lease_seconds": LEASE}
    config["server"] = {"models_refresh_seconds": 3600, "workers": 1}  # one process per replica
    path = tmp_path / "gateway.toml"
    path.write_text(to_toml(config), encoding="utf-8")
    return path, config["redis"]["key_prefix"]


def client(replica: Replica) -> httpx.Client:
    return httpx.Client(
        base_url=replica.root + "/v1", headers={"authorization": f"Bearer {GATEWAY_KEY}"}, timeout=10
    )


def worker_of(r: redis.Redis, prefix: str, response_id: str) -> str | None:
    found: Any = r.hget(f"{prefix}resp:{{{response_id}}}", "worker")
    return None if found is None else str(found.decode())


def test_cancellation_and_takeover_across_replicas(
    replica_config: tuple[Path, str],
    fake: FakeProviders,
    fake_clock: ManualClock,
    redis_sync: redis.Redis,
    tmp_path: Path,
) -> None:
    config, prefix = replica_config
    replicas: list[Replica] = []
    stack = contextlib.ExitStack()
    try:
        # A alone takes both runs.
        a = start("A", config, tmp_path)
        replicas.append(a)
        wait_healthy(a)
        with client(a) as http:
            runs = [
                http.post("/responses", json={"model": "slow", "input": text, "background": True}).json()[
                    "id"
                ]
                for text in ("to be cancelled", "to be taken over")
            ]
        poll(lambda: len(fake_clock.pending(FIRST_PART)) == 2 or None, what="both runs upstream", deadline=30)
        fake_clock.fire(FIRST_PART)  # both answers' first parts (their pauses end at one time)
        poll(lambda: len(fake_clock.pending(GAP)) == 2 or None, what="both runs mid-answer", deadline=30)
        a_worker = worker_of(redis_sync, prefix, runs[0])
        assert a_worker is not None and worker_of(redis_sync, prefix, runs[1]) == a_worker
        b = start("B", config, tmp_path)
        replicas.append(b)
        wait_healthy(b)

        # Cancelled through B: A notices within a third of the lease and drops the upstream call.
        with client(b) as http:
            cancelled = http.post(f"/responses/{runs[0]}/cancel")
            assert cancelled.status_code == 200, cancelled.text
            assert cancelled.json()["status"] == "cancelled"
        poll(
            lambda: fake.status()["active_replies"] == 1 or None,
            what="the cancelled upstream call to stop",
            deadline=10,
        )
        assert "cancelled" in fake_clock.history(GAP)

        # A dies mid-answer; B takes the other run over after the lease and finishes it.
        a.proc.send_signal(signal.SIGKILL)
        a.proc.wait(5)
        stack.enter_context(AutoAdvance(fake_clock, FIRST_PART, GAP))
        with client(b) as http:

            def done() -> dict[str, Any] | None:
                found: dict[str, Any] = http.get(f"/responses/{runs[1]}").json()
                return found if found["status"] not in ("queued", "in_progress") else None

            final = poll(done, what="the taken-over run's end", deadline=4 * LEASE + 15)
            validate_response(final)
            assert final["status"] == "completed", final
            assert final["output"][0]["content"][0]["text"] == "You said: to be taken over"
            new_worker = worker_of(redis_sync, prefix, runs[1])
            assert new_worker is not None and new_worker != a_worker

            stream = http.get(f"/responses/{runs[1]}", params={"stream": "true"})
            events = [data for _, data in sse_events(stream.text)]
            for event in events:
                validate_event(event)
            assert events[0]["type"] == "response.queued" and events[-1]["type"] == "response.completed"
            numbers = [event["sequence_number"] for event in events]
            assert numbers == sorted(set(numbers))  # the taken-over run continues the numbering
            assert http.get(f"/responses/{runs[0]}").json()["status"] == "cancelled"
        # Three upstream calls: both runs on A, the taken-over one again on B.
        assert len(fake.requests(path=CHAT, model=SLOW)) == 3
    finally:
        stack.close()
        for replica in replicas:
            if replica.proc.poll() is None:
                replica.proc.kill()
            replica.proc.wait(5)
