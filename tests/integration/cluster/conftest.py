"""The cluster suite: the gateway on a real Redis Cluster (three primaries, three replicas) and on
a Sentinel-managed primary, both of the redis-server binary the project ships, on loopback.

Every test here carries the ``cluster`` marker (``pytest -m cluster`` runs the suite alone,
``-m "not cluster"`` everything else). The cluster starts once per session; a test that kills a
node waits until the cluster is healthy again before it ends, so the next test finds all six.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from redis.cluster import ClusterNode, RedisCluster

from fake_providers.testing import FakeProviders
from gateway.clock import ManualClock
from gateway.redis.local_cluster import LocalCluster, LocalSentinel
from gateway.testing import RunningGateway, base_config, redis_cluster, redis_sentinel, serve_gateway

HERE = Path(__file__).parent


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "cluster: needs a local Redis Cluster or Sentinel set-up")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(str(item.path)).parents:
            item.add_marker(pytest.mark.cluster)


@pytest.fixture(scope="session")
def cluster() -> Iterator[LocalCluster]:
    with redis_cluster() as running:
        yield running


@pytest.fixture
def healthy_cluster(cluster: LocalCluster) -> Iterator[LocalCluster]:
    """The cluster, and after the test every node running again and every slot served."""
    try:
        yield cluster
    finally:
        for node in cluster.nodes:
            if not node.alive:
                cluster.restart(node)
        cluster.wait_healthy()


@pytest.fixture(scope="session")
def sentinel() -> Iterator[LocalSentinel]:
    with redis_sentinel() as running:
        yield running


@pytest.fixture
def cluster_sync(cluster: LocalCluster) -> Iterator[RedisCluster]:
    client = RedisCluster(startup_nodes=[ClusterNode("127.0.0.1", p) for p in cluster.ports])
    try:
        yield client
    finally:
        client.close()


ClusterGatewayFactory = Callable[..., RunningGateway[ManualClock]]


@pytest.fixture
def cluster_gateway(fake: FakeProviders, cluster: LocalCluster) -> Iterator[ClusterGatewayFactory]:
    """Serves gateways (a ManualClock each) whose Redis is the cluster."""
    with ExitStack() as stack:

        def start(config: dict[str, Any] | None = None, **overrides: Any) -> RunningGateway[ManualClock]:
            served = serve_gateway(config or base_config(fake, cluster.url, **overrides), clock=ManualClock())
            return stack.enter_context(served)

        yield start
