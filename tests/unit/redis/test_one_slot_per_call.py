"""Every Lua script and every MULTI the gateway sends touches keys of one Redis Cluster slot.

A real run: one gateway in front of the fakes, on a private redis-server that a ``MONITOR``
connection records. The run goes through every script the stores define (policy admission, lease
renewal, settlement; every chat transition, the reaper's pending marks and action timeouts; the
Responses store's parent read and delete) with a key in a team that has limits and a budget,
streamed and JSON answers, a Responses chain, and chats through a dynamic tool, an interrupt and
a timed-out action. Then, from what the server received:

- each script call's ``KEYS`` map to one slot, and so does every key the script touched itself
  (``MONITOR`` shows a script's commands as its own lines);
- each ``MULTI`` ... ``EXEC`` touches one slot;
- every script of the stores was called at least once (else the run above proves nothing).
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import redis
import redis.asyncio as aioredis

from fake_providers.testing import FakeProviders
from gateway.chats.store import _UNMARK, ChatStore
from gateway.chats.worker import REAPER
from gateway.clock import ManualClock
from gateway.policy.store import PolicyStore
from gateway.policy.tickets import LEASE_RENEW
from gateway.redis.embedded import EmbeddedRedis
from gateway.redis.keys import slot
from gateway.responses import background as responses_background
from gateway.responses import store as responses_store
from gateway.testing import base_config, poll_until, redis_server, serve_gateway
from gateway.upstream import breaker
from tests.integration.chats.helpers import client, read_events, wait_status
from tests.integration.chats.test_dynamic_tools import WEATHER

TEAM_KEY = "sk-test-team-member-key"
_ARG = re.compile(rb'"((?:[^"\\]|\\.)*)"')
_ESCAPES = {b"n": b"\n", b"r": b"\r", b"t": b"\t", b"a": b"\a", b"b": b"\b", b'"': b'"', b"\\": b"\\"}


def _unescape(raw: bytes) -> bytes:
    out = bytearray()
    i = 0
    while i < len(raw):
        if raw[i : i + 1] == b"\\":
            nxt = raw[i + 1 : i + 2]
            if nxt == b"x":
                out += bytes([int(raw[i + 2 : i + 4], 16)])
                i += 4
                continue
            out += _ESCAPES.get(nxt, nxt)
            i += 2
            continue
        out += raw[i : i + 1]
        i += 1
    return bytes(out)


@dataclass
class Line:
    client: str  # "127.0.0.1:port", or "lua" for a script's own commands
    args: list[bytes]


@dataclass
class Recorder:
    """A ``MONITOR`` connection read by a thread: every command the server runs, in order."""

    port: int
    lines: list[Line] = field(default_factory=list)
    ready: threading.Event = field(default_factory=threading.Event)

    def run(self, conn: socket.socket) -> None:
        buffer = b""
        with conn:
            conn.sendall(b"MONITOR\r\n")
            while True:
                try:
                    chunk = conn.recv(65536)
                except OSError:
                    return
                if not chunk:
                    return
                buffer += chunk
                *complete, buffer = buffer.split(b"\r\n")
                for raw in complete:
                    if raw == b"+OK":
                        self.ready.set()
                    elif raw.startswith(b"+") and b"] " in raw:
                        head, _, rest = raw.partition(b"] ")
                        who = head.rsplit(b" ", 1)[-1].decode()
                        self.lines.append(Line(who, [_unescape(m) for m in _ARG.findall(rest)]))


@pytest.fixture
def recorded() -> Iterator[tuple[EmbeddedRedis, Recorder]]:
    with redis_server() as server:
        conn = socket.create_connection(("127.0.0.1", server.port))
        recorder = Recorder(server.port)
        thread = threading.Thread(target=recorder.run, args=(conn,), daemon=True)
        thread.start()
        assert recorder.ready.wait(5)
        try:
            yield server, recorder
        finally:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)  # ends the thread's read
            thread.join(5)


def _scripts_in(owner: str, namespace: dict[str, Any]) -> dict[str, str]:
    """Every script object (a ``sha`` beside its ``source``) in ``namespace``, by name."""
    return {
        f"{owner} {name}": value.sha
        for name, value in namespace.items()
        if isinstance(getattr(value, "sha", None), str) and isinstance(getattr(value, "source", None), str)
    }


def every_script() -> dict[str, str]:
    """The SHA1 of every Lua script the gateway defines, by name: the stores' (policy, chats,
    Responses records and background runs) and the circuit breaker's."""
    unconnected = aioredis.Redis()
    scripts = _scripts_in("policy", vars(PolicyStore(unconnected, "p:", usage_maxlen=1, audit_maxlen=1)))
    chats = ChatStore(unconnected, "p:")
    scripts.update({f"chats {name}": script.sha for name, script in chats._scripts.items()})
    scripts["chats unmark"] = hashlib.sha1(_UNMARK.encode()).hexdigest()
    for module in (responses_store, responses_background):
        scripts.update(_scripts_in(module.__name__, vars(module)))
    scripts["breaker"] = breaker._SHA
    return scripts


# Scripts the run below does not reach, and where their one-slot calls are shown instead.
ELSEWHERE = {
    # One key per call (the deployment's breaker hash); tests/integration/upstream runs it.
    "breaker",
    # Runs only when an admission's reply was lost to a command timeout; it gets that
    # admission's marker, leases and holds (one enforcement root).
    "policy release_script",
}


def run_everything(server: EmbeddedRedis, fake: FakeProviders) -> None:
    config = base_config(fake, server.url)
    config["teams"] = [
        {
            "id": "research",
            "limits": {"rpm": 1000, "tpm": 1_000_000, "max_concurrency": 10},
            "budgets": [{"window": "day", "limit_usd": 100.0}],
        }
    ]
    config["auth"]["keys"].append(
        {
            "name": "member",
            "key": TEAM_KEY,
            "team": "research",
            "limits": {"rpm": 500, "tpm": 500_000, "max_concurrency": 5},
            "budgets": [{"window": "month", "limit_usd": 50.0}],
        }
    )
    config["policy"] = {"time_source": "redis", "lease_ttl_seconds": 40}
    config["chats"] = {"lease_seconds": 2.0, "action_timeout_seconds": 10.0}
    with serve_gateway(config, clock=ManualClock()) as gw:
        headers = {"authorization": f"Bearer {TEAM_KEY}"}
        msg = [{"role": "user", "content": "hello"}]
        with httpx.Client(base_url=gw.base_url, headers=headers, timeout=10) as http:
            # Admission and settlement, and a stream long enough to renew its lease.
            assert (
                http.post("/chat/completions", json={"model": "gpt-4o-mini", "messages": msg}).status_code
                == 200
            )
            fake.script([{"fault": "stall-3", "times": 1}], model="gpt-4o-mini")
            body = {"model": "gpt-4o-mini", "messages": msg, "stream": True, "max_tokens": 10}
            with http.stream("POST", "/chat/completions", json=body) as response:
                chunks = response.iter_raw()
                next(chunks)
                gw.clock.fire(LEASE_RENEW)
                # Renewed, and armed again.
                poll_until(lambda: gw.clock.history(LEASE_RENEW)[-2:] == ["fired", "armed"], what="a renewal")
            # A Responses chain: the parent read, then a delete.
            first = http.post("/responses", json={"model": "gpt-4o-mini", "input": "one"}).json()
            follow = {"model": "gpt-4o-mini", "input": "two", "previous_response_id": first["id"]}
            second = http.post("/responses", json=follow)
            assert second.status_code == 200, second.text
            third = {"model": "gpt-4o-mini", "input": "three", "previous_response_id": second.json()["id"]}
            assert http.post("/responses", json=third).status_code == 200  # the chain's history grows
            assert http.get(f"/responses/{second.json()['id']}/input_items").status_code == 200
            assert http.delete(f"/responses/{first['id']}").status_code == 200
            # A background run: queued, claimed by the worker, then asked to cancel.
            queued = http.post("/responses", json={"model": "gpt-4o-mini", "input": "bg", "background": True})
            run_id = queued.json()["id"]
            poll_until(
                lambda: http.get(f"/responses/{run_id}").json()["status"] not in ("queued", "in_progress"),
                what="the background run",
            )
            assert http.post(f"/responses/{run_id}/cancel").status_code == 200
        with client(gw) as c:
            # A turn to the end, then a queued message while another turn runs.
            done = c.post("", json={"model": "gpt-4o-mini", "message": "hi"}).json()
            wait_status(c, done["id"], "waiting")
            assert c.post(f"/{done['id']}/messages", json={"message": "again"}).status_code == 200
            wait_status(c, done["id"], "waiting")
            # A dynamic tool call answered; another interrupted; a third left to time out.
            for _ in range(3):
                call = {"name": "get_weather", "arguments": {"city": "Oslo"}, "id": "call_w1"}
                fake.script([{"reply": {"tool_calls": [call]}}])
            answered, interrupted, abandoned = (
                c.post(
                    "", json={"model": "gpt-4o-mini", "message": "Weather?", "dynamic_tools": [WEATHER]}
                ).json()
                for _ in range(3)
            )
            for chat in (answered, interrupted, abandoned):
                read_events(c, chat["id"], lambda evs: any(e["event"] == "action_required" for e in evs))
            results = {"results": [{"tool_call_id": "call_w1", "output": {"temp": 3}}]}
            assert c.post(f"/{answered['id']}/tool-results", json=results).status_code == 204
            wait_status(c, answered["id"], "waiting")
            assert c.post(f"/{interrupted['id']}/interrupt").status_code == 200
            # The reaper: pending marks of chats that moved on are forgotten, the stale action
            # times out.
            for _ in range(7):
                gw.clock.fire(REAPER)
            wait_status(c, abandoned["id"], "error")


def audit(lines: list[Line], r: redis.Redis) -> tuple[dict[str, int], list[str]]:
    """The script calls by SHA1, and every call or MULTI that touched more than one slot."""

    def keys_of(args: list[bytes]) -> list[bytes]:
        try:
            return [k if isinstance(k, bytes) else k.encode() for k in r.command_getkeys(*args)]
        except redis.ResponseError:  # a command without keys
            return []

    called: dict[str, int] = {}
    multi: dict[str, list[bytes]] = {}
    script: tuple[str, set[int]] | None = None
    failures: list[str] = []
    for line in lines:
        name = line.args[0].lower() if line.args else b""
        if line.client == "lua":  # a command the last script ran itself
            touched = keys_of(line.args)
            if script is not None and not {slot(k) for k in touched} <= script[1]:
                failures.append(f"script {script[0]} touched {touched} outside its keys' slot")
        elif name in (b"evalsha", b"eval"):
            sha = line.args[1].decode() if name == b"evalsha" else hashlib.sha1(line.args[1]).hexdigest()
            keys = line.args[3 : 3 + int(line.args[2])]
            called[sha] = called.get(sha, 0) + 1
            script = (sha, {slot(k) for k in keys})
            if len(script[1]) > 1:
                failures.append(f"script {sha} got keys of {len(script[1])} slots: {keys}")
        elif name == b"multi":
            multi[line.client] = []
        elif name == b"exec":
            keys = multi.pop(line.client, [])
            if len({slot(k) for k in keys}) > 1:
                failures.append(f"a MULTI touched keys of several slots: {keys}")
        elif line.client in multi:
            multi[line.client].extend(keys_of(line.args))
    return called, failures


def recorded_until_now(server: EmbeddedRedis, recorder: Recorder) -> list[Line]:
    with redis.Redis(port=server.port) as r:
        r.set("record-end", "1")
    poll_until(lambda: any(line.args[1:2] == [b"record-end"] for line in recorder.lines), what="the record")
    return list(recorder.lines)


def test_every_script_and_transaction_touches_one_slot(
    recorded: tuple[EmbeddedRedis, Recorder], fake: FakeProviders
) -> None:
    server, recorder = recorded
    run_everything(server, fake)
    lines = recorded_until_now(server, recorder)
    with redis.Redis(port=server.port) as r:
        called, failures = audit(lines, r)
    assert failures == []
    scripts = every_script()
    assert {name for name, sha in scripts.items() if sha not in called} - ELSEWHERE == set()
    # The scripts' own commands were seen (and checked) too.
    assert sum(1 for line in lines if line.client == "lua") > sum(called.values())


def test_the_audit_sees_a_script_or_a_multi_over_two_slots(recorded: tuple[EmbeddedRedis, Recorder]) -> None:
    """The check above can fail: keys of two slots in one call, a key built inside a script, or a
    MULTI over two slots are reported."""
    server, recorder = recorded
    with redis.Redis(port=server.port) as r:
        r.eval("return redis.call('SET', KEYS[2], ARGV[1])", 2, "{a}x", "{b}y", "v")
        r.eval("return redis.call('SET', '{b}' .. KEYS[1], ARGV[1])", 1, "{a}x", "v")
        with r.pipeline(transaction=True) as pipe:
            pipe.set("{a}z", 1).set("{b}z", 1).execute()
        r.eval("return redis.call('SET', KEYS[1], ARGV[1])", 2, "{a}x", "{a}y", "v")
        lines = recorded_until_now(server, recorder)
        called, failures = audit(lines, r)
    assert len(failures) == 3, failures
    assert failures[0].endswith("got keys of 2 slots: [b'{a}x', b'{b}y']")
    assert "touched [b'{b}{a}x'] outside" in failures[1]
    assert failures[2] == "a MULTI touched keys of several slots: [b'{a}z', b'{b}z']"
    assert sum(called.values()) == 3
