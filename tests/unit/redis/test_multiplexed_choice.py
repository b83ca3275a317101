"""Where the policy's per-request calls go: the shared connection on one server (its address,
credentials, database and TLS from the url), redis-py's client for a cluster, a sentinel
deployment or a url with options the shared connection does not know. Nothing connects here."""

from __future__ import annotations

import ssl
from typing import Any

from gateway.clock import ManualClock
from gateway.config.settings import RedisSettings
from gateway.redis.connection import ADMISSION_NAME, multiplexed
from gateway.redis.multiplexed import Target


def target(passed: str | None, **settings: Any) -> Target | None:
    """The shared connection's target for ``settings`` and the url the lifespan passes in."""
    connection = multiplexed(RedisSettings(**settings), ManualClock(), passed)
    return None if connection is None else connection.target


def test_one_server_by_tcp_with_credentials_and_database() -> None:
    found = target("redis://gw:p%40ss@cache.internal:6380/2", command_timeout_seconds=1.5)
    assert found == Target(
        host="cache.internal", port=6380, username="gw", password="p@ss", db=2, name=ADMISSION_NAME
    )
    assert found.introductions() == [
        ("AUTH", "gw", "p@ss"),
        ("SELECT", 2),
        ("CLIENT", "SETNAME", ADMISSION_NAME),
    ]
    connection = multiplexed(RedisSettings(url="redis://h", command_timeout_seconds=1.5), ManualClock())
    assert connection is not None
    assert (connection.command_timeout, connection.connect_timeout) == (1.5, 1.5)


def test_the_embedded_server_by_its_socket() -> None:
    found = target("unix:///data/redis.sock?db=0")
    assert found is not None
    assert (found.path, found.db, str(found)) == ("/data/redis.sock", 0, "/data/redis.sock")
    assert found.introductions() == [("CLIENT", "SETNAME", ADMISSION_NAME)]


def test_a_password_alone_authenticates_the_default_user() -> None:
    found = target(None, url="redis://:only-a-password@h/0")
    assert found is not None
    assert found.introductions()[0] == ("AUTH", "only-a-password")


def test_tls_verifies_the_server_as_the_settings_say() -> None:
    found = target(None, url="rediss://h:6390/0", tls_check_hostname=False)
    assert found is not None and found.tls is not None
    context = found.tls()
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert not context.check_hostname


def test_redis_py_carries_them_elsewhere() -> None:
    assert target(None, url="redis+cluster://a:7000,b:7001") is None
    assert target("redis://a:7000", mode="cluster") is None
    assert target("redis://:pw@/0", mode="sentinel", sentinels=("s:26379",), service_name="main") is None
    # An option of the url that only redis-py's client knows.
    assert target("redis://h:6379/0?protocol=3") is None
    assert target("redis://h:6379/0?socket_keepalive=true") is None
    assert target(None) is None  # no url: the embedded server's is passed in
