"""Two gateway processes on one Redis: the replica running a turn is SIGKILLed mid-turn and the
other one takes the job over after the lease, on the real clock. The upstream answer is paced by
the fakes' manual clock, so the turn is surely mid-stream when the kill comes.

The chat is created on replica A and followed (SSE) from replica B. Whichever replica's worker
took the job is killed; the survivor's reaper claims the job (``XAUTOCLAIM``) once it has been
idle longer than ``chats.lease_seconds``, runs the step again from the persisted messages, and
the chat ends ``waiting`` with exactly one assistant message. If the killed replica was the one
serving the stream, the follower resumes on the survivor with ``Last-Event-ID``, as a client
behind a load balancer would.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import redis

from fake_providers.clock import FIRST_PART, GAP
from fake_providers.testing import FakeProviders
from gateway.chats.store import chat_key
from gateway.chats.worker import TAKEN_OVER
from gateway.clock import ManualClock
from tests.conftest import GATEWAY_KEY, AutoAdvance, base_config, free_port, poll_until

T = TypeVar("T")
REPO = Path(__file__).resolve().parents[3]
LEASE = 2.0  # renewed every 0.67 s; the reaper sweeps every 2 s and claims jobs idle > 2 s
SLOW = "fault-slow-300ms-400ms"  # every chunk waits on the fakes' clock, which the test moves
TEXT = "hello from the replica test"
ANSWER = f"You said: {TEXT}"
MODEL = "slow"
CHAT = "/openai/v1/chat/completions"


# -- config ----------------------------------------------------------------------------
def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a TOML basic string
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)} = {_toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"no TOML for {value!r}")


def to_toml(config: dict[str, Any]) -> str:
    """Every top-level key as one line with inline tables and arrays (enough for a config)."""
    return "".join(f"{json.dumps(k)} = {_toml_value(v)}\n" for k, v in config.items())


# -- processes -------------------------------------------------------------------------
@dataclass
class Replica:
    name: str
    proc: subprocess.Popen[bytes]
    root: str
    out: Path
    err: Path
    worker_id: str = ""

    def chats(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.root + "/api/v1/chats",
            headers={"authorization": f"Bearer {GATEWAY_KEY}"},
            timeout=10,
        )

    def tails(self, lines: int = 40) -> str:
        parts = []
        for path in (self.out, self.err):
            text = path.read_text(errors="replace") if path.exists() else ""
            parts.append(f"--- {self.name} {path.name} (last {lines} lines) ---")
            parts.extend(text.splitlines()[-lines:])
        return "\n".join(parts)


def poll(check: Callable[[], T | None], *, what: str, deadline: float) -> T:
    """Polls twenty times a second: the replicas are processes sharing the machine's cores."""
    return poll_until(check, what=what, deadline=deadline, interval=0.05)


def start(name: str, config: Path, tmp: Path) -> Replica:
    port = free_port()
    command = [sys.executable, "-m", "gateway", "serve", "--config", str(config)]
    out, err = tmp / f"{name}.stdout", tmp / f"{name}.stderr"
    with out.open("wb") as o, err.open("wb") as e:
        proc = subprocess.Popen(
            [*command, "--host", "127.0.0.1", "--port", str(port)],
            cwd=REPO,
            stdin=subprocess.DEVNULL,
            stdout=o,
            stderr=e,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    return Replica(name, proc, f"http://127.0.0.1:{port}", out, err)


def wait_healthy(replica: Replica, deadline: float = 20.0) -> None:
    def healthy() -> bool:
        if replica.proc.poll() is not None:
            raise AssertionError(f"replica {replica.name} exited with status {replica.proc.returncode}")
        try:
            return httpx.get(replica.root + "/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    poll(healthy, what=f"replica {replica.name} /healthz", deadline=deadline)


def hget(r: redis.Redis, key: str, name: str) -> str | None:
    value: Any = r.hget(key, name)
    return None if value is None else str(value.decode())


def consumers(r: redis.Redis, jobs: str) -> set[str]:
    try:
        return {c["name"].decode() for c in r.xinfo_consumers(jobs, "workers")}
    except redis.ResponseError:  # no stream or group yet
        return set()


# -- the SSE follower ------------------------------------------------------------------
@dataclass
class Follower:
    """Reads a chat's stream in a thread; if its replica dies, resumes on ``fallback()`` with
    ``Last-Event-ID``. Stops after the status ``waiting`` that follows the assistant message."""

    chat_id: str
    first: Replica
    fallback: Callable[[], Replica]
    events: list[dict[str, Any]] = field(default_factory=list)
    # What an SSE client sends back when it reconnects: the last `id:` it received.
    last_id: str | None = None
    connections: list[str] = field(default_factory=list)
    error: BaseException | None = None
    done: threading.Event = field(default_factory=threading.Event)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        try:
            replica, last_id = self.first, None
            while not self.stop.is_set():
                try:
                    if self._read(replica, last_id):
                        self.done.set()
                        return
                except httpx.HTTPError:
                    # Only the death of our replica may end the stream (it may still be exiting).
                    try:
                        replica.proc.wait(5)
                    except subprocess.TimeoutExpired:
                        raise AssertionError(
                            f"replica {replica.name}'s stream broke while it lives"
                        ) from None
                # our replica was killed: resume where we were on the survivor
                replica = self.fallback()
                last_id = self.last_id
        except BaseException as exc:  # reported by the test
            self.error = exc

    def _read(self, replica: Replica, last_id: str | None) -> bool:
        headers = {"last-event-id": last_id} if last_id else {}
        self.connections.append(replica.name)
        with replica.chats() as c, c.stream("GET", f"/{self.chat_id}/stream", headers=headers) as response:
            assert response.status_code == 200, response.read()
            block: dict[str, Any] = {}
            # The replay on connect (a status, and without Last-Event-ID the snapshot up to the
            # queue_update) is tagged `head`: it restates what earlier events said.
            head = True
            for line in response.iter_lines():
                if self.stop.is_set():
                    return False
                if line.startswith(":"):
                    continue
                if line:
                    key, _, value = line.partition(": ")
                    block[key] = value
                    continue
                if "data" not in block:
                    continue
                event = {**block, "data": json.loads(block["data"]), "replica": replica.name, "head": head}
                self.events.append(event)
                if "id" in block:
                    self.last_id = block["id"]
                block = {}
                if last_id is not None or event["event"] == "queue_update":
                    head = False
                if self._complete():
                    return True
        return False

    def _complete(self) -> bool:
        seen_answer = False
        for e in self.events:
            if e["event"] == "message" and e["data"]["message"]["role"] == "assistant":
                seen_answer = True
            if seen_answer and e["event"] == "status" and e["data"]["status"]["status"] == "waiting":
                return True
        return False

    def parts(self) -> list[dict[str, Any]]:
        return [e for e in self.events if e["event"] == "message_part"]


# -- the test --------------------------------------------------------------------------
@pytest.fixture
def replica_config(fake: FakeProviders, redis_url: str, tmp_path: Path) -> tuple[Path, str]:
    config = base_config(fake, redis_url)
    config["models"] = [*config["models"], {"name": MODEL, "provider": "fake-openai", "upstream_model": SLOW}]
    config["chats"] = {"lease_seconds": LEASE, "action_timeout_seconds": 60}
    config["server"] = {"models_refresh_seconds": 3600, "workers": 1}  # one process per replica
    path = tmp_path / "gateway.toml"
    path.write_text(to_toml(config), encoding="utf-8")
    return path, config["redis"]["key_prefix"]


def test_a_killed_replica_s_turn_is_taken_over_by_the_other(
    replica_config: tuple[Path, str],
    fake: FakeProviders,
    fake_clock: ManualClock,
    redis_sync: redis.Redis,
    tmp_path: Path,
) -> None:
    config, prefix = replica_config
    jobs = f"{prefix}chats:jobs"
    replicas: list[Replica] = []
    victim: Replica | None = None
    chat_hash = ""
    follower: Follower | None = None
    thread: threading.Thread | None = None
    stack = contextlib.ExitStack()
    try:
        # A alone first runs a quick chat, so its worker's consumer name is known: a consumer
        # appears in the group only once it has read a job.
        a = start("A", config, tmp_path)
        replicas.append(a)
        wait_healthy(a)
        with a.chats() as c:
            warm_up = c.post("", json={"model": "gpt-4o-mini", "message": "warm up"})
            assert warm_up.status_code == 201, warm_up.text
            poll(
                lambda: c.get(f"/{warm_up.json()['id']}").json()["status"] == "waiting",
                what="the warm-up chat",
                deadline=10,
            )
        [a.worker_id] = consumers(redis_sync, jobs)
        b = start("B", config, tmp_path)
        replicas.append(b)
        wait_healthy(b)

        with a.chats() as c:
            created = c.post("", json={"model": MODEL, "message": TEXT})
        assert created.status_code == 201, created.text
        chat_id = created.json()["id"]
        chat_hash = chat_key(prefix, chat_id)

        survivor_box: list[Replica] = []
        follower = Follower(
            chat_id,
            b,
            lambda: poll(lambda: survivor_box[0] if survivor_box else None, what="the survivor", deadline=10),
        )
        thread = threading.Thread(target=follower.run, name="sse-follower", daemon=True)
        thread.start()
        # The first attempt streams three chunks, then waits for the fakes' clock: the turn is
        # mid-stream for as long as the test wants.
        fake_clock.fire(FIRST_PART)
        fake_clock.fire(GAP)
        fake_clock.fire(GAP)

        # Mid-turn: a worker holds the chat and the answer has started streaming.
        def holder() -> Replica | None:
            worker = hget(redis_sync, chat_hash, "worker")
            if worker is None or not follower.parts():
                return None
            if worker == a.worker_id:
                return a
            b.worker_id = worker
            return b

        victim = poll(holder, what="the turn to start streaming", deadline=10)
        survivor = b if victim is a else a
        survivor_box.append(survivor)
        assert hget(redis_sync, chat_hash, "status") == "running"
        assert len(fake.requests(path=CHAT, model=SLOW)) == 1
        victim.proc.send_signal(signal.SIGKILL)
        victim.proc.wait(5)
        killed_at = len(follower.events)
        # From now on every pause of the fakes ends at once: the survivor's attempt streams through.
        stack.enter_context(AutoAdvance(fake_clock, FIRST_PART, GAP))

        # The survivor claims the job after the lease and runs the step again, after a `retry`.
        poll(
            lambda: any(e["event"] == "retry" for e in follower.events),
            what="the takeover",
            deadline=4 * LEASE + 5,
        )
        # The retry is published with the takeover (one script): the chat is the survivor's now.
        new_worker = hget(redis_sync, chat_hash, "worker")
        assert new_worker is not None and new_worker != victim.worker_id
        if survivor is b:  # B's consumer appeared in the group when it claimed the job
            [b.worker_id] = consumers(redis_sync, jobs) - {a.worker_id}
        assert new_worker == survivor.worker_id
        snapshot = read_snapshot(survivor, chat_id)
        with survivor.chats() as c:

            def waiting() -> dict[str, Any] | None:
                chat: dict[str, Any] = c.get(f"/{chat_id}").json()
                assert chat["status"] in ("running", "waiting"), chat
                return chat if chat["status"] == "waiting" else None

            final = poll(waiting, what="status waiting on the survivor", deadline=4 * LEASE + 10)
            messages = c.get(f"/{chat_id}/messages").json()["messages"]
        assert final["last_error"] is None

        assert follower.done.wait(5), (
            f"the stream did not see the end: {[e['event'] for e in follower.events]}"
        )
        assert follower.error is None, follower.error
    except BaseException:
        for replica in replicas:
            print(replica.tails())
        print("--- state ---")
        print("victim:", victim and victim.name, "workers:", {r.name: r.worker_id for r in replicas})
        print("chat:", redis_sync.hgetall(chat_hash) if chat_hash else None)
        print("jobs pending:", redis_sync.xpending_range(jobs, "workers", "-", "+", 10))
        print("consumers:", redis_sync.xinfo_consumers(jobs, "workers"))
        print("upstream requests:", len(fake.requests(path=CHAT, model=SLOW)))
        if follower is not None:
            print("follower:", follower.connections, repr(follower.error), thread and thread.is_alive())
            print("--- events ---")
            for e in follower.events:
                print(e["replica"], e.get("id"), e["event"], json.dumps(e["data"])[:200])
        raise
    finally:
        stack.close()
        if follower is not None:
            follower.stop.set()
        for replica in replicas:
            if replica.proc.poll() is None:
                replica.proc.kill()
            replica.proc.wait(5)
        if thread is not None:
            thread.join(5)

    # Exactly one answer, with the whole text; message ids 1, 2 without gap or duplicate.
    assert [(m["id"], m["role"], m["content"]) for m in messages] == [
        (1, "user", [{"type": "text", "text": TEXT}]),
        (2, "assistant", [{"type": "text", "text": ANSWER}]),
    ]
    # The killed attempt and the survivor's attempt reached the upstream; nothing else did.
    assert len(fake.requests(path=CHAT, model=SLOW)) == 2
    # The job is acknowledged and gone; the chat is nobody's.
    assert redis_sync.xpending(jobs, "workers")["pending"] == 0
    assert hget(redis_sync, chat_hash, "worker") is None

    # The stream (B's, or its resumption on the survivor) saw the turn end, each event once.
    events = follower.events
    live = [e["id"] for e in events if not e["head"]]
    assert [_id(i) for i in live] == sorted({_id(i) for i in live}), (
        live
    )  # increasing: none repeated or reordered
    message_events = [e["data"]["message"] for e in events if e["event"] == "message"]
    assert [m["id"] for m in message_events] == [1, 2]
    assert message_events[1]["content"] == [{"type": "text", "text": ANSWER}]
    assert [e["data"]["status"]["status"] for e in events if e["event"] == "status"][-1] == "waiting"
    assert killed_at < len(events)
    # A client that drops the partial parts on `retry` (as on any retried step) ends with the
    # answer streamed once: the dead worker's partial step is retracted by the takeover's retry.
    [retry] = [e for e in events if e["event"] == "retry"]
    assert retry["data"]["retry"]["error"] == TAKEN_OVER
    assert any(e["event"] == "message_part" for e in events[: events.index(retry)])
    after = [
        e["data"]["message_part"]["part"]["text"]
        for e in events[events.index(retry) :]
        if e["event"] == "message_part"
    ]
    assert "".join(after) == ANSWER
    # A client connecting after the takeover gets only the survivor's parts in its snapshot.
    assert all(_id(e["id"]) > _id(retry["id"]) for e in snapshot if e["event"] == "message_part"), snapshot


def _id(event_id: str) -> tuple[int, int]:
    ms, seq = event_id.split("-")
    return int(ms), int(seq)


def read_snapshot(replica: Replica, chat_id: str) -> list[dict[str, Any]]:
    """A new client's replay (no Last-Event-ID): up to the ``queue_update``."""
    events: list[dict[str, Any]] = []
    with replica.chats() as c, c.stream("GET", f"/{chat_id}/stream") as response:
        block: dict[str, str] = {}
        for line in response.iter_lines():
            if line and not line.startswith(":"):
                key, _, value = line.partition(": ")
                block[key] = value
            elif "data" in block:
                events.append(
                    {"id": block.get("id"), "event": block["event"], "data": json.loads(block["data"])}
                )
                if block["event"] == "queue_update":
                    return events
                block = {}
    raise AssertionError(f"the stream ended during the snapshot: {events}")
