"""The HTTP limits on a real `gateway serve` process (small limits, loopback): a connection that
sends nothing, slow headers, a slow body, an idle keep-alive connection, oversized headers and
an idle-connection flood each get their answer while the gateway goes on serving."""

from __future__ import annotations

import json
import select
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.testing import poll_until
from tests.integration.server.process import (
    DEADLINE,
    Gateway,
    holder,
    http_get,
    open_fds,
    read_answer,
    wait_closed,
    write_config,
)

LIMITS = {
    "workers": 1,
    "header_timeout_seconds": 0.5,
    "body_timeout_seconds": 0.5,
    "keepalive_timeout_seconds": 1.0,
    "max_header_bytes": 4096,
    "max_headers": 20,
}


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    home = tmp_path_factory.mktemp("limits")
    with Gateway(write_config(home / "gw.toml", home / "redis", **LIMITS)) as gw:
        gw.wait_for("Application startup complete")
        yield gw


def _error(body: bytes) -> dict[str, object]:
    error = json.loads(body)["error"]
    assert set(error) == {"message", "type", "param", "code"}
    return dict(error)


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_a_connection_that_sends_nothing_is_closed(gateway: Gateway) -> None:
    with socket.create_connection(("127.0.0.1", gateway.port)) as conn:
        data, took = wait_closed(conn)
    assert data == b""  # nothing to answer: closed without a word
    assert 0.4 <= took < 5.0
    assert http_get(gateway.port)[0] == 200


def test_slow_headers_get_408_while_others_are_served(gateway: Gateway) -> None:
    request = b"GET /healthz HTTP/1.1\r\nhost: gw\r\nx-slow: " + b"a" * 2000 + b"\r\n\r\n"
    statuses: list[int] = []
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=DEADLINE) as conn:
        start = time.monotonic()
        sent = 0
        while sent < len(request) and time.monotonic() - start < DEADLINE:
            conn.sendall(request[sent : sent + 1])  # one byte at a time ...
            sent += 1
            if sent % 4 == 0:
                statuses.append(http_get(gateway.port)[0])  # ... while others are served
            if select.select([conn], [], [], 0.02)[0]:  # until the gateway has had enough
                break
        status, body = read_answer(conn)
        took = time.monotonic() - start
    assert sent < len(request), "the headers were sent whole: the gateway never refused them"
    assert status == 408
    assert _error(body)["code"] == "request_timeout"
    assert 0.4 <= took < 5.0
    assert statuses and set(statuses) == {200}


def test_a_slow_body_gets_408(gateway: Gateway) -> None:
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=DEADLINE) as conn:
        conn.sendall(
            b"POST /api/v1/chats HTTP/1.1\r\nhost: gw\r\ncontent-type: application/json\r\n"
            b"content-length: 100\r\n\r\n" + b'{"model": '
        )
        start = time.monotonic()
        status, body = read_answer(conn)
        took = time.monotonic() - start
        assert conn.recv(10) == b""  # and closed
    assert status == 408
    assert _error(body)["type"] == "invalid_request_error"
    assert 0.4 <= took < 5.0
    assert http_get(gateway.port)[0] == 200


def test_an_idle_keep_alive_connection_is_closed(gateway: Gateway) -> None:
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=DEADLINE) as conn:
        for _ in range(2):  # kept alive between requests ...
            conn.sendall(b"GET /healthz HTTP/1.1\r\nhost: gw\r\n\r\n")
            assert read_answer(conn)[0] == 200
        data, took = wait_closed(conn)  # ... until idle for keepalive_timeout_seconds
    assert data == b""
    assert 0.9 <= took < 6.0


@pytest.mark.parametrize(
    "head",
    [
        pytest.param(b"x-big: " + b"a" * 8000 + b"\r\n", id="one header too large"),
        pytest.param(b"".join(b"x-h%d: v\r\n" % i for i in range(25)), id="too many headers"),
        pytest.param(b"a" * 5000 + b": v\r\n", id="a name too large"),
    ],
)
def test_oversized_headers_get_431(gateway: Gateway, head: bytes) -> None:
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=DEADLINE) as conn:
        conn.sendall(b"GET /healthz HTTP/1.1\r\nhost: gw\r\n" + head + b"\r\n")
        status, body = read_answer(conn)
    assert status == 431
    assert _error(body)["code"] == "request_headers_too_large"
    assert http_get(gateway.port)[0] == 200


def test_huge_header_blocks_are_refused_before_they_are_buffered(gateway: Gateway) -> None:
    """Ten 16 MB header blocks: each is refused within its first chunks, the memory stays."""
    before = _rss_kib(gateway.proc.pid)
    chunk = b"a" * 65536
    for _ in range(10):
        with socket.create_connection(("127.0.0.1", gateway.port), timeout=DEADLINE) as conn:
            conn.sendall(b"GET /healthz HTTP/1.1\r\nhost: gw\r\nx-huge: ")
            sent, answer = 0, b""
            try:
                while sent < 16 * 1024 * 1024:
                    if select.select([conn], [], [], 0)[0]:
                        answer = conn.recv(65536)
                        break
                    conn.sendall(chunk)
                    sent += len(chunk)
            except (BrokenPipeError, ConnectionResetError):
                pass
        assert sent < 4 * 1024 * 1024, "the gateway kept reading an endless header"
        if answer:
            assert answer.startswith(b"HTTP/1.1 431 ")
        assert http_get(gateway.port)[0] == 200
    assert _rss_kib(gateway.proc.pid) - before < 32 * 1024


def test_an_idle_connection_flood_meets_the_connection_limit(tmp_path: Path) -> None:
    config = write_config(
        tmp_path / "gw.toml", tmp_path / "redis", workers=1, max_connections=20, header_timeout_seconds=5.0
    )
    with Gateway(config) as gw:
        gw.wait_for("Application startup complete")
        pid = gw.proc.pid
        keeper = socket.create_connection(("127.0.0.1", gw.port), timeout=DEADLINE)
        keeper.sendall(b"GET /healthz HTTP/1.1\r\nhost: gw\r\n\r\n")
        assert read_answer(keeper)[0] == 200
        baseline = open_fds(pid)

        flood = [socket.create_connection(("127.0.0.1", gw.port), timeout=DEADLINE) for _ in range(200)]
        # The keep-alive client from before the flood is served throughout.
        keeper.sendall(b"GET /healthz HTTP/1.1\r\nhost: gw\r\n\r\n")
        assert read_answer(keeper)[0] == 200

        def closed_at_once() -> list[socket.socket] | None:
            """Beyond the hard cap (20 + 16) the gateway closes connections as they come."""
            readable = select.select(flood, [], [], 0)[0]
            return readable if len(readable) >= 200 - 36 else None

        closed = poll_until(closed_at_once, deadline=DEADLINE, what="the flood beyond the cap closed")
        for conn in closed:
            assert conn.recv(10) in (b"",)  # nothing sent, nothing answered: just closed
        assert open_fds(pid) <= baseline + 36

        statuses: list[int] = []
        for conn in flood:
            if conn in closed:
                continue
            conn.sendall(b"GET /healthz HTTP/1.1\r\nhost: gw\r\n\r\n")
            status, body = read_answer(conn)
            statuses.append(status)
            if status == 503:
                assert _error(body) == {
                    "message": "The gateway has too many open connections; retry shortly.",
                    "type": "service_unavailable_error",
                    "param": None,
                    "code": "too_many_connections",
                }
        assert set(statuses) <= {200, 503}
        assert statuses.count(200) <= 19 and statuses.count(503) >= 1
        for conn in flood:
            conn.close()
        keeper.close()
        poll_until(lambda: open_fds(pid) <= baseline, deadline=DEADLINE, what="the flood's descriptors freed")
        assert http_get(gw.port)[0] == 200


def test_a_trickling_body_does_not_hold_the_drain_open(tmp_path: Path) -> None:
    """SIGTERM with a request whose body never completes: the body deadline still applies during
    the drain (408), and the gateway exits long before its drain time is up."""
    config = write_config(
        tmp_path / "gw.toml", tmp_path / "redis", workers=1, body_timeout_seconds=1.0, drain_seconds=60.0
    )
    with Gateway(config) as gw:
        gw.wait_for("Application startup complete")
        conn = socket.create_connection(("127.0.0.1", gw.port), timeout=DEADLINE)
        conn.sendall(
            b"POST /api/v1/chats HTTP/1.1\r\nhost: gw\r\ncontent-type: application/json\r\n"
            b"content-length: 100\r\n\r\n{"
        )
        poll_until(lambda: holder(gw.port, conn, {gw.proc.pid}), what="the request accepted")
        start = time.monotonic()
        gw.proc.send_signal(signal.SIGTERM)
        status, body = read_answer(conn)
        conn.close()
        assert gw.proc.wait(DEADLINE) == -signal.SIGTERM
        took = time.monotonic() - start
    assert status == 408 and _error(body)["code"] == "request_timeout"
    assert took < 30.0  # the deadline, not the 60 s drain, ended it
