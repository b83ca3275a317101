"""The embedded redis-server: one per data directory, and a killed gateway's orphan is replaced
without losing its data."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import pytest
import redis

from gateway.redis.embedded import EmbeddedRedis, EmbeddedRedisError


def test_a_second_gateway_on_the_same_data_dir_is_refused(tmp_path: Path) -> None:
    first = EmbeddedRedis(tmp_path)
    first.start()
    try:
        with redis.Redis.from_url(first.url) as r:
            r.set("k", "v")
        second = EmbeddedRedis(tmp_path)
        with pytest.raises(EmbeddedRedisError, match="another gateway process runs the embedded Redis"):
            second.start()
        with redis.Redis.from_url(first.url) as r:  # the first server is untouched
            assert r.get("k") == b"v"
    finally:
        first.stop()
    again = EmbeddedRedis(tmp_path)  # stopped: the directory is free again
    again.start()
    try:
        with redis.Redis.from_url(again.url) as r:
            assert r.get("k") == b"v"  # append-only persistence
    finally:
        again.stop()


def test_an_orphaned_server_is_shut_down_and_its_data_kept(tmp_path: Path) -> None:
    orphan = EmbeddedRedis(tmp_path)
    orphan.start()
    assert orphan._proc is not None
    pid = orphan._proc.pid
    with redis.Redis.from_url(orphan.url) as r:
        r.set("k", "kept")
    orphan._release_lock()  # what a SIGKILLed gateway leaves: its lock gone, its server running
    orphan._proc = None
    fresh = EmbeddedRedis(tmp_path)
    fresh.start()
    try:
        assert fresh._proc is not None and fresh._proc.pid != pid
        with redis.Redis.from_url(fresh.url) as r:
            assert r.get("k") == b"kept"
    finally:
        fresh.stop()
        with contextlib.suppress(ChildProcessError):  # subprocess may have reaped it already
            os.waitpid(pid, 0)  # blocks until the orphan (our child here) has exited
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_a_server_that_exits_at_start_says_why_on_one_line_and_leaves_nothing(tmp_path: Path) -> None:
    (tmp_path / "appendonly.aof").write_bytes(b"*2\r\n$3\r\nSET\r\ngarbage")  # a damaged AOF
    server = EmbeddedRedis(tmp_path)
    with pytest.raises(EmbeddedRedisError) as info:
        server.start()
    message = str(info.value)
    assert message.startswith("redis-server exited with status 1 (its log, ")
    assert "Bad file format reading the append only file" in message
    assert "\n" not in message
    assert server._proc is None and server._lock is None  # no server, and the lock is free
    (tmp_path / "appendonly.aof").unlink()
    fresh = EmbeddedRedis(tmp_path)
    fresh.start()
    fresh.stop()


def test_an_unusable_data_dir_is_named(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(EmbeddedRedisError, match=r"^cannot create the data directory .*/file/redis: "):
        EmbeddedRedis(tmp_path / "file" / "redis").start()
