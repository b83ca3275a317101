"""`tests/integration/chats/test_dynamic_tools.py` again, its Redis the cluster (every test, fixture and assertion
of that module, with `redis_url` and `redis_sync` pointing at the cluster)."""

from __future__ import annotations

import pytest
from redis.cluster import RedisCluster

from gateway.redis.local_cluster import LocalCluster
from tests.integration.chats.test_dynamic_tools import *  # noqa: F403


@pytest.fixture
def redis_url(cluster: LocalCluster) -> str:
    return cluster.url


@pytest.fixture
def redis_sync(cluster_sync: RedisCluster) -> RedisCluster:
    return cluster_sync
