"""The chain tests of `tests/integration/responses/test_store_chains.py` again, the store's client a
cluster client: chains whose records are spread over every node, read with pipelines.
(Its two TTL tests open a single-server client of their own: they are left out.) And the
history writes of `tests/integration/responses/test_history.py`: a record and its history list
lie in different slots (often on different nodes), and one pipeline still writes both."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from gateway.config.settings import RedisSettings
from gateway.redis.connection import connect
from gateway.redis.local_cluster import LocalCluster
from gateway.responses.store import ResponseStore
from tests.integration.responses.test_history import (
    test_a_branch_written_with_its_record_gets_its_own_list,
    test_a_copy_of_thousands_of_turns_is_written_whole,
    test_a_record_naming_a_place_its_turn_lost_is_not_continued_there,
    test_a_turn_is_written_in_one_round_trip,
    test_scripts_the_server_forgot_are_sent_again,
)
from tests.integration.responses.test_store_chains import (
    test_a_long_chain_is_read_whole_and_in_order,
    test_a_missing_ancestor_breaks_the_chain,
    test_forks_share_their_history,
    test_input_items_list_the_whole_context_and_skip_what_is_gone,
)

__all__ = [
    "test_a_branch_written_with_its_record_gets_its_own_list",
    "test_a_copy_of_thousands_of_turns_is_written_whole",
    "test_a_long_chain_is_read_whole_and_in_order",
    "test_a_missing_ancestor_breaks_the_chain",
    "test_a_record_naming_a_place_its_turn_lost_is_not_continued_there",
    "test_a_turn_is_written_in_one_round_trip",
    "test_forks_share_their_history",
    "test_input_items_list_the_whole_context_and_skip_what_is_gone",
    "test_scripts_the_server_forgot_are_sent_again",
]


@pytest.fixture
async def store(cluster: LocalCluster) -> AsyncIterator[ResponseStore]:
    client = connect(RedisSettings(url=cluster.url))
    try:
        yield ResponseStore(client, prefix=f"gwstoretest{id(client)}:", ttl=600)
    finally:
        await client.aclose()
