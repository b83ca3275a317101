"""The shared connection of the policy's per-request calls (gateway/redis/multiplexed.py) against
private redis-servers: callers that send at once get their own replies on one connection, an
error reply raises what redis-py raises (``NOSCRIPT`` loads the script), a stalled server fails
the commands on the manual clock's timer, and the connection comes back after a restart, with
its credentials, database and name, over TLS too."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from redis.exceptions import AuthenticationError, DataError, NoScriptError, ResponseError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from gateway.clock import ManualClock
from gateway.config.settings import RedisSettings
from gateway.policy.store import Script
from gateway.redis.connection import ADMISSION_NAME, multiplexed
from gateway.redis.embedded import EmbeddedRedis
from gateway.redis.multiplexed import MultiplexedRedis
from gateway.testing import free_port, redis_server
from tests.integration.redis.test_rediss import make_ca, redis_behind_tls

TIMEOUT = 0.5


def shared(url: str, clock: ManualClock | None = None, **settings: object) -> MultiplexedRedis:
    connection = multiplexed(
        RedisSettings(url=url, command_timeout_seconds=TIMEOUT, **settings),  # type: ignore[arg-type]
        clock or ManualClock(),
    )
    assert connection is not None
    return connection


def names_of_clients(r: redis.Redis) -> list[str]:
    return [c["name"] for c in r.client_list()]


@pytest.fixture
def server() -> Iterator[EmbeddedRedis]:
    with redis_server() as private:
        yield private


@pytest.fixture
def plain(server: EmbeddedRedis) -> Iterator[redis.Redis]:
    with redis.Redis.from_url(server.url) as client:
        yield client


async def test_callers_sending_at_once_get_their_own_replies_on_one_connection(
    server: EmbeddedRedis, plain: redis.Redis
) -> None:
    plain.mset({f"k{i}": f"v{i}" for i in range(200)})
    conn = shared(server.url)
    try:
        replies = await asyncio.gather(*(conn.execute_command("GET", f"k{i}") for i in range(200)))
        assert replies == [f"v{i}".encode() for i in range(200)]
        # Run in the order sent: each INCR saw the ones before it.
        assert await asyncio.gather(*(conn.execute_command("INCR", "n") for _ in range(50))) == list(
            range(1, 51)
        )
        assert names_of_clients(plain).count(ADMISSION_NAME) == 1
        assert conn.in_flight == 0
    finally:
        await conn.aclose()


async def test_a_batch_returns_error_replies_in_place(server: EmbeddedRedis, plain: redis.Redis) -> None:
    plain.set("text", "not a number")
    conn = shared(server.url)
    try:
        replies = await conn.pipeline_execute(
            [
                ("SET", "a", 1),
                ("INCR", "text"),
                ("INCRBY", "a", 2),
                ("XADD", "s", "MAXLEN", "~", 10, "*", "e", b"\xff"),
            ]
        )
        assert replies[0] == b"OK"
        assert isinstance(replies[1], ResponseError)
        assert "not an integer" in str(replies[1])
        assert replies[2] == 3
        entries = plain.xrange("s")
        assert entries is not None and entries[0][1] == {b"e": b"\xff"}
        assert await conn.pipeline_execute([]) == []
    finally:
        await conn.aclose()


async def test_an_error_reply_raises_and_the_connection_stays_in_step(
    server: EmbeddedRedis, plain: redis.Redis
) -> None:
    plain.set("text", "not a number")
    conn = shared(server.url)
    try:
        with pytest.raises(ResponseError, match="not an integer"):
            await conn.execute_command("INCR", "text")
        with pytest.raises(ResponseError, match="wrong number of arguments"):
            await conn.execute_command("GET")
        with pytest.raises(DataError):  # refused before it is sent, as redis-py refuses it
            await conn.execute_command("SET", "text", None)
        assert await conn.execute_command("GET", "text") == b"not a number"
        assert conn.connected
    finally:
        await conn.aclose()


async def test_noscript_loads_the_script_and_calls_it_again(
    server: EmbeddedRedis, plain: redis.Redis
) -> None:
    script = Script("return {KEYS[1], ARGV[1], redis.call('INCR', KEYS[1])}")
    conn = shared(server.url)
    try:
        with pytest.raises(NoScriptError):
            await conn.evalsha(script.sha, 1, "counted", "x")
        assert await script(conn, ["counted"], ["x"]) == [b"counted", b"x", 1]
        assert plain.script_exists(script.sha) == [True]
        plain.script_flush()  # a failover or a flush forgets it again
        assert await script(conn, ["counted"], ["y"]) == [b"counted", b"y", 2]
    finally:
        await conn.aclose()


async def test_a_cancelled_caller_leaves_the_replies_in_step(
    server: EmbeddedRedis, plain: redis.Redis
) -> None:
    plain.set("k", "mine")
    conn = shared(server.url)
    try:
        blocked = asyncio.create_task(conn.execute_command("BLPOP", "queue", 0))
        await conn.execute_command("PING")  # the BLPOP went first; its reply blocks the others
        after = asyncio.create_task(conn.execute_command("GET", "k"))
        while conn.in_flight < 2:
            await asyncio.sleep(0)
        blocked.cancel()
        plain.rpush("queue", "for nobody")  # the BLPOP's reply, dropped
        assert await after == b"mine"
        assert blocked.cancelled()
        assert conn.in_flight == 0
    finally:
        await conn.aclose()


async def test_a_stalled_server_times_out_on_the_clock_and_the_next_command_reconnects(
    server: EmbeddedRedis, plain: redis.Redis
) -> None:
    clock = ManualClock()
    conn = shared(server.url, clock)
    assert server._proc is not None
    pid = server._proc.pid
    try:
        assert await conn.execute_command("SET", "n", 0) == b"OK"
        os.kill(pid, signal.SIGSTOP)
        try:
            calls = [asyncio.create_task(conn.execute_command("INCR", "n")) for _ in range(3)]
            while conn.in_flight < 3:
                await asyncio.sleep(0)
            await clock.wait_for_timer(conn.command_timer)
            assert clock.advance(TIMEOUT / 2) == []
            assert not any(call.done() for call in calls)
            assert clock.advance(TIMEOUT / 2) == [conn.command_timer]
            outcomes = await asyncio.gather(*calls, return_exceptions=True)
        finally:
            os.kill(pid, signal.SIGCONT)
        assert type(outcomes[0]) is RedisTimeoutError
        assert [type(o) for o in outcomes[1:]] == [RedisConnectionError, RedisConnectionError]
        assert not conn.connected
        # The server ran what it had received before the connection was dropped: a command that
        # timed out may have run (the admission's release exists for that).
        assert await conn.execute_command("GET", "n") == b"3"
        assert conn.connected
    finally:
        await conn.aclose()


def last_command(r: redis.Redis, name: str) -> str:
    [client] = [c for c in r.client_list() if c["name"] == name]
    return str(client["cmd"])


async def test_an_idle_connection_pings_and_a_busy_one_does_not(
    server: EmbeddedRedis, plain: redis.Redis
) -> None:
    clock = ManualClock()
    conn = shared(server.url, clock)
    try:
        assert await conn.execute_command("SET", "k", "v") == b"OK"
        first = await clock.wait_for_timer(conn.health_timer)
        assert first.deadline - first.armed_at == 30.0
        # Commands were sent in the first interval: no PING.
        assert conn.health_timer in clock.advance(30.0)
        await clock.wait_for_timer(conn.health_timer)  # looked, and armed again
        assert last_command(plain, ADMISSION_NAME) == "set" and conn.in_flight == 0
        # A whole interval with nothing sent: a PING, answered in the background.
        assert conn.health_timer in clock.advance(30.0)
        while last_command(plain, ADMISSION_NAME) != "ping":
            await asyncio.sleep(0.01)
        while conn.in_flight:
            await asyncio.sleep(0.01)
        assert conn.connected and len(clock.pending(conn.health_timer)) == 1
    finally:
        await conn.aclose()
    assert clock.pending(conn.health_timer) == []


async def test_a_connection_that_died_while_idle_is_dropped_before_a_command_needs_it(
    server: EmbeddedRedis,
) -> None:
    clock = ManualClock()
    conn = shared(server.url, clock)
    assert server._proc is not None
    pid = server._proc.pid
    try:
        assert await conn.execute_command("SET", "n", 1) == b"OK"
        await clock.wait_for_timer(conn.health_timer)
        os.kill(pid, signal.SIGSTOP)  # the server stops answering, the socket stays open
        try:
            assert conn.health_timer in clock.advance(30.0)
            await clock.wait_for_timer(conn.health_timer)  # looked: a command was sent, no PING
            assert conn.health_timer in clock.advance(30.0)  # the PING goes out
            while conn.in_flight == 0:
                await asyncio.sleep(0.01)
            await clock.wait_for_timer(conn.command_timer)
            assert clock.advance(TIMEOUT) == [conn.command_timer]
            while conn.connected:
                await asyncio.sleep(0.01)
        finally:
            os.kill(pid, signal.SIGCONT)
        # No command failed: the next one opens a new connection at once.
        assert await conn.execute_command("INCR", "n") == 2
        assert conn.connected
    finally:
        await conn.aclose()


async def test_the_connection_comes_back_after_the_server_restarts(tmp_path: Path) -> None:
    server = EmbeddedRedis(tmp_path, port=free_port())
    server.start()
    conn = shared(server.url)
    try:
        assert await conn.execute_command("SET", "kept", "1") == b"OK"
        server.stop()
        with pytest.raises(RedisConnectionError):
            await conn.execute_command("GET", "kept")
        with pytest.raises(RedisConnectionError):  # refused while it is down
            await conn.execute_command("GET", "kept")
        server.start()
        assert await conn.execute_command("GET", "kept") == b"1"
        with redis.Redis.from_url(server.url) as plain:
            assert ADMISSION_NAME in names_of_clients(plain)
    finally:
        await conn.aclose()
        server.stop()


async def test_credentials_and_database_from_the_url(server: EmbeddedRedis, plain: redis.Redis) -> None:
    plain.acl_setuser("gw", enabled=True, passwords=["+s3cret"], keys=["*"], commands=["+@all"])
    conn = shared(f"redis://gw:s3cret@127.0.0.1:{server.port}/3")
    wrong = shared(f"redis://gw:wrong@127.0.0.1:{server.port}/3")
    try:
        assert await conn.execute_command("SET", "where", "db3") == b"OK"
        assert plain.get("where") is None
        with redis.Redis(port=server.port, db=3) as db3:
            assert db3.get("where") == b"db3"
        (client,) = [c for c in plain.client_list() if c["name"] == ADMISSION_NAME]
        assert (client["user"], client["db"]) == ("gw", "3")
        with pytest.raises(AuthenticationError):
            await wrong.execute_command("GET", "where")
        assert not wrong.connected
    finally:
        await conn.aclose()
        await wrong.aclose()


async def test_a_password_for_the_default_user(server: EmbeddedRedis, plain: redis.Redis) -> None:
    plain.config_set("requirepass", "pw")
    conn = shared(f"redis://:pw@127.0.0.1:{server.port}/0")
    anonymous = shared(server.url)
    try:
        assert await conn.execute_command("PING") == b"PONG"
        with pytest.raises(AuthenticationError):  # NOAUTH
            await anonymous.execute_command("GET", "x")
    finally:
        await conn.aclose()
        await anonymous.aclose()


async def test_a_unix_socket(tmp_path: Path) -> None:
    server = EmbeddedRedis(tmp_path)  # no port: its socket in the data directory
    server.start()
    conn = shared(server.url)
    try:
        assert await conn.execute_command("SET", "over", "unix") == b"OK"
        with redis.Redis(unix_socket_path=str(server.socket_path)) as plain:
            assert plain.get("over") == b"unix"
    finally:
        await conn.aclose()
        server.stop()


async def test_tls_with_the_ca_that_signed_the_certificate_and_not_another(tmp_path: Path) -> None:
    wrong_ca, _, _ = make_ca(tmp_path, "wrong")
    with redis_behind_tls(tmp_path) as (plain, proxy, ca_file):
        url = f"rediss://127.0.0.1:{proxy.port}/0"
        conn = shared(url, tls_ca_file=str(ca_file))
        refused = shared(url, tls_ca_file=str(wrong_ca))
        try:
            assert await conn.execute_command("SET", "over", "tls") == b"OK"
            assert plain.get("over") == b"tls"
            assert proxy.handshakes == 1
            with pytest.raises(RedisConnectionError, match="certificate verify failed"):
                await refused.execute_command("PING")
        finally:
            await conn.aclose()
            await refused.aclose()


async def test_closed_means_closed(server: EmbeddedRedis) -> None:
    conn = shared(server.url)
    assert await conn.execute_command("PING") == b"PONG"
    await conn.aclose()
    with pytest.raises(RedisConnectionError):
        await conn.execute_command("PING")
