"""The chain tests of `tests/integration/responses/test_store_chains.py` again, the store's client a
cluster client: chains whose records are spread over every node, read with pipelines.
(Its two TTL tests open a single-server client of their own: they are left out.)"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from gateway.config.settings import RedisSettings
from gateway.redis.connection import connect
from gateway.redis.local_cluster import LocalCluster
from gateway.responses.store import ResponseStore
from tests.integration.responses.test_store_chains import (
    test_a_long_chain_is_read_whole_and_in_order,
    test_a_missing_ancestor_breaks_the_chain,
    test_forks_share_their_history,
    test_input_items_list_the_whole_context_and_skip_what_is_gone,
)

__all__ = [
    "test_a_long_chain_is_read_whole_and_in_order",
    "test_a_missing_ancestor_breaks_the_chain",
    "test_forks_share_their_history",
    "test_input_items_list_the_whole_context_and_skip_what_is_gone",
]


@pytest.fixture
async def store(cluster: LocalCluster) -> AsyncIterator[ResponseStore]:
    client = connect(RedisSettings(url=cluster.url))
    try:
        yield ResponseStore(client, prefix=f"gwstoretest{id(client)}:", ttl=600)
    finally:
        await client.aclose()
