"""How long records live: the configured TTL, and chains that stay whole while they are used."""

from __future__ import annotations

import pytest
import redis

from fake_providers.testing import FakeProviders
from tests.conftest import GatewayFactory, RunningGateway
from tests.integration.responses.support import (
    CHAT_PATH,
    SLACK,
    TTL,
    post,
    record_key,
    responses_config,
    stored,
)


@pytest.fixture
def gw(gateway_factory: GatewayFactory, fake: FakeProviders, redis_url: str) -> RunningGateway:
    return gateway_factory(responses_config(fake, redis_url))


def create(gw: RunningGateway, text: str, previous: str | None = None) -> str:
    body = {"model": "chat-model", "input": text}
    if previous is not None:
        body["previous_response_id"] = previous
    answer = post(gw, body)
    assert answer.status_code == 200, answer.text
    return str(answer.json()["id"])


def test_a_new_record_lives_the_configured_ttl(gw: RunningGateway, redis_sync: redis.Redis) -> None:
    response_id = create(gw, "Hello")
    key = record_key(gw, response_id)
    assert key == f"{gw.settings.redis.key_prefix}resp:{{{response_id}}}"
    assert TTL - 5 <= redis_sync.ttl(key) <= TTL
    # Every record has a TTL: nothing outlives its configuration.
    for other in redis_sync.scan_iter(match=f"{gw.settings.redis.key_prefix}resp:*"):
        assert redis_sync.ttl(other) > 0


def test_the_default_ttl_is_thirty_days(
    gateway_factory: GatewayFactory, fake: FakeProviders, redis_url: str, redis_sync: redis.Redis
) -> None:
    config = responses_config(fake, redis_url)
    del config["responses"]
    gw = gateway_factory(config)
    response_id = create(gw, "Hello")
    assert 30 * 86400 - 5 <= redis_sync.ttl(record_key(gw, response_id)) <= 30 * 86400


def test_continuing_a_chain_keeps_its_ancestors_alive(gw: RunningGateway, redis_sync: redis.Redis) -> None:
    first = create(gw, "one")
    second = create(gw, "two", first)
    # The parent was extended when the follow-up read it: it outlives its child.
    assert TTL + SLACK - 5 <= redis_sync.ttl(record_key(gw, first)) <= TTL + SLACK
    assert TTL - 5 <= redis_sync.ttl(record_key(gw, second)) <= TTL

    # Time passes (as the records see it): the root is about to expire.
    redis_sync.expire(record_key(gw, first), 100)
    third = create(gw, "three", second)  # not yet due for a whole-chain touch
    assert redis_sync.ttl(record_key(gw, first)) <= 100
    assert stored(redis_sync, gw, third)["meta"]["chain_touched_at"] == gw.clock.now()

    gw.clock.advance(SLACK / 2)
    fourth = create(gw, "four", third)  # due: every ancestor is extended
    for ancestor in (first, second, third):
        assert TTL + SLACK - 5 <= redis_sync.ttl(record_key(gw, ancestor)) <= TTL + SLACK
    assert stored(redis_sync, gw, fourth)["meta"]["chain_touched_at"] == gw.clock.now()
    assert stored(redis_sync, gw, fourth)["meta"]["block"] == [first, second, third]


def test_a_chain_with_a_lost_ancestor_is_not_found(
    gw: RunningGateway, fake: FakeProviders, redis_sync: redis.Redis
) -> None:
    first = create(gw, "one")
    second = create(gw, "two", first)
    redis_sync.delete(record_key(gw, first))  # expired, or deleted by its owner
    fake.clear()
    answer = post(gw, {"model": "chat-model", "input": "three", "previous_response_id": second})
    assert answer.status_code == 400
    assert answer.json()["error"] == {
        "message": f"Previous response with id '{first}' not found.",
        "type": "invalid_request_error",
        "param": "previous_response_id",
        "code": "previous_response_not_found",
    }
    assert fake.requests(path=CHAT_PATH) == []


def test_chain_length_is_capped(gateway_factory: GatewayFactory, fake: FakeProviders, redis_url: str) -> None:
    gw = gateway_factory(
        responses_config(fake, redis_url, responses={"ttl_seconds": TTL, "max_chain_length": 3})
    )
    first = create(gw, "one")
    second = create(gw, "two", first)
    third = create(gw, "three", second)
    answer = post(gw, {"model": "chat-model", "input": "four", "previous_response_id": third})
    assert answer.status_code == 400
    assert answer.json()["error"] == {
        "message": "This conversation has reached the gateway's limit of 3 chained responses; start a new one "
        "without 'previous_response_id'.",
        "type": "invalid_request_error",
        "param": "previous_response_id",
        "code": "chain_too_long",
    }
