"""`gateway serve` with two workers: one socket and one embedded Redis for both, requests on
both, a dead worker replaced while the other serves, and a SIGTERM that waits for the request
in flight, then stops the workers and the Redis and ends by the signal."""

from __future__ import annotations

import os
import signal
import socket
from pathlib import Path

import pytest
import redis

from gateway.testing import poll_until
from tests.integration.server.process import (
    DEADLINE,
    Gateway,
    alive,
    holder,
    http_get,
    read_answer,
    write_config,
)

pytestmark = pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="reads /proc (Linux)")


def _started(tmp_path: Path, **server: object) -> Gateway:
    config = write_config(tmp_path / "gw.toml", tmp_path / "redis", workers=2, **server)
    gateway = Gateway(config)
    gateway.wait_for("Application startup complete", 2)
    return gateway


def test_two_workers_share_the_port_and_one_redis(tmp_path: Path) -> None:
    with _started(tmp_path) as gw:
        workers = gw.wait_workers(2)
        assert len(gw.redis_pids()) == 1  # started once, by the parent
        assert gw.count("embedded redis-server started") == 1
        assert "with 2 worker process(es)" in gw.log()

        served_by: set[int] = set()

        def both_seen() -> bool:
            with socket.create_connection(("127.0.0.1", gw.port), timeout=10) as conn:
                conn.sendall(b"GET /healthz HTTP/1.1\r\nhost: gw\r\n\r\n")
                assert read_answer(conn)[0] == 200
                pid = holder(gw.port, conn, workers)
                assert pid is not None, "the connection's server side is in neither worker"
                served_by.add(pid)
            return served_by == workers

        poll_until(both_seen, deadline=DEADLINE, interval=0.0, what="requests served by both workers")
        # Both workers talk to the one embedded Redis.
        client = redis.Redis(unix_socket_path=str(tmp_path / "redis" / "redis.sock"), socket_timeout=5)
        assert client.ping()


def test_a_killed_worker_is_replaced_while_the_other_serves(tmp_path: Path) -> None:
    with _started(tmp_path) as gw:
        before = gw.wait_workers(2)
        victim = min(before)
        os.kill(victim, signal.SIGKILL)
        statuses: list[int] = []

        def replaced() -> set[int] | None:
            statuses.append(http_get(gw.port)[0])  # served throughout, by the other worker
            now = gw.workers()
            return now if len(now) == 2 and victim not in now else None

        after = poll_until(replaced, deadline=DEADLINE, interval=0.0, what="a new worker")
        assert statuses and set(statuses) == {200}
        assert before - {victim} <= after
        gw.wait_for(f"(pid {victim}) was killed by SIGKILL; starting it again in 0.0 s")
        gw.wait_for("Application startup complete", 3)  # the new worker serves too
        assert alive(gw.proc.pid)


def test_sigterm_drains_the_request_in_flight_then_stops_everything(tmp_path: Path) -> None:
    with _started(tmp_path, drain_seconds=30.0) as gw:
        workers = gw.wait_workers(2)
        [redis_pid] = gw.redis_pids()
        # A request in flight: its body is not all there yet (the chats API reads it first).
        conn = socket.create_connection(("127.0.0.1", gw.port), timeout=DEADLINE)
        body = b'{"model": "m"}'
        conn.sendall(
            b"POST /api/v1/chats HTTP/1.1\r\nhost: gw\r\ncontent-type: application/json\r\n"
            b"content-length: %d\r\n\r\n" % len(body) + body[:5]
        )
        poll_until(lambda: holder(gw.port, conn, workers), what="the request accepted by a worker")

        gw.proc.send_signal(signal.SIGTERM)
        gw.wait_for("SIGTERM: draining 2 worker(s)")
        gw.wait_for("Waiting for connections to close", 1)
        assert gw.proc.poll() is None and alive(redis_pid)  # waiting for the request

        conn.sendall(body[5:])
        status, answer = read_answer(conn)
        conn.close()
        assert status == 401 and b"API key" in answer  # answered in full (no key sent)

        assert gw.proc.wait(DEADLINE) == -signal.SIGTERM  # ends by the signal, as a supervisor expects
        log = gw.stderr_closed()  # every worker has exited (none holds stderr)
        assert "embedded redis-server stopped" in log
        assert log.count("Application shutdown complete") == 2
        assert not any(alive(pid) for pid in workers)
        assert not alive(redis_pid)  # no orphan redis-server
        with pytest.raises(redis.ConnectionError):
            redis.Redis(unix_socket_path=str(tmp_path / "redis" / "redis.sock"), socket_timeout=5).ping()
