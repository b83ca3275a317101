"""A chat turn taken over after its gateway replica is killed, with the chats on a Redis Cluster:
the same test as on one Redis (tests/integration/chats/test_replicas.py), its store the cluster."""

from __future__ import annotations

from pathlib import Path

import pytest
from redis.cluster import RedisCluster

from fake_providers.testing import FakeProviders
from gateway.clock import ManualClock
from gateway.redis.local_cluster import LocalCluster
from tests.integration.chats.test_replicas import replica_config
from tests.integration.chats.test_replicas import (
    test_a_killed_replica_s_turn_is_taken_over_by_the_other as taken_over,
)

__all__ = ["replica_config"]


@pytest.fixture
def redis_url(cluster: LocalCluster) -> str:
    return cluster.url


@pytest.fixture
def redis_sync(cluster_sync: RedisCluster) -> RedisCluster:
    return cluster_sync


def test_a_killed_replica_s_turn_is_taken_over_on_a_cluster(
    replica_config: tuple[Path, str],
    fake: FakeProviders,
    fake_clock: ManualClock,
    redis_sync: RedisCluster,
    tmp_path: Path,
) -> None:
    taken_over(replica_config, fake, fake_clock, redis_sync, tmp_path)  # type: ignore[arg-type]
