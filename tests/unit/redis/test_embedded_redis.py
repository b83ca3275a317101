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


def _mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def _aof_files(data: Path) -> list[Path]:
    """The AOF: one file in the data directory (Redis 6), or a directory of them (Redis 7+)."""
    return [p for p in [*data.glob("appendonly*"), *data.glob("appendonlydir/*")] if p.is_file()]


def test_the_data_dir_and_the_aof_are_private_to_the_gateways_user(tmp_path: Path) -> None:
    data = tmp_path / "fresh" / "redis"
    server = EmbeddedRedis(data)
    server.start()
    try:
        with redis.Redis.from_url(server.url) as r:
            r.set("k", "v")
    finally:
        server.stop()
    files = _aof_files(data)
    assert files, "no AOF written"
    assert {_mode(p) for p in [data, *data.glob("appendonlydir")]} == {0o700}
    assert {p.name: _mode(p) for p in [*files, data / "redis.log"]} == {
        p.name: 0o600 for p in [*files, data / "redis.log"]
    }


def test_an_existing_world_readable_data_dir_is_made_private(tmp_path: Path) -> None:
    """A data directory an older gateway left 0755 with a 0644 AOF is tightened at start."""
    first = EmbeddedRedis(tmp_path)
    first.start()
    first.stop()
    dirs = [tmp_path, *tmp_path.glob("appendonlydir")]
    files = [*_aof_files(tmp_path), tmp_path / "redis.log"]
    for path in dirs:
        path.chmod(0o755)
    for path in files:
        path.chmod(0o644)
    again = EmbeddedRedis(tmp_path)
    again.start()
    try:
        assert {_mode(p) for p in dirs} == {0o700}
        assert {_mode(p) for p in files if p.exists()} == {0o600}
    finally:
        again.stop()
