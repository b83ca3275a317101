"""The gateway's features on a Redis Cluster, in one process."""

from __future__ import annotations

from typing import Any

import httpx
from redis.cluster import RedisCluster

from fake_providers.testing import FakeProviders
from gateway.chats.store import chat_key
from tests.integration.chats.helpers import client, read_events, wait_status
from tests.integration.cluster.conftest import ClusterGatewayFactory

MSG = [{"role": "user", "content": "hello"}]


def test_chat_completions_responses_and_chats_on_a_cluster(
    cluster_gateway: ClusterGatewayFactory, fake: FakeProviders, cluster_sync: RedisCluster
) -> None:
    gw = cluster_gateway()
    ready = httpx.get(gw.root_url + "/readyz", timeout=10)
    assert ready.status_code == 200, ready.text  # the cluster answers its PING
    with gw.http() as http:
        r = http.post("/v1/chat/completions", json={"model": "gpt-4o-mini", "messages": MSG})
        assert r.status_code == 200, r.text
        first = http.post("/v1/responses", json={"model": "gpt-4o-mini", "input": "one"})
        assert first.status_code == 200, first.text
        second = http.post(
            "/v1/responses",
            json={"model": "gpt-4o-mini", "input": "two", "previous_response_id": first.json()["id"]},
        )
        assert second.status_code == 200, second.text
        items = http.get(f"/v1/responses/{second.json()['id']}/input_items")
        assert items.status_code == 200, items.text
    with client(gw) as c:
        created = c.post("", json={"model": "gpt-4o-mini", "message": "hi"})
        assert created.status_code == 201, created.text
        chat: dict[str, Any] = created.json()
        wait_status(c, chat["id"], "waiting")
        events = read_events(c, chat["id"], lambda evs: any(e["event"] == "status" for e in evs))
        assert events
    prefix = gw.settings.redis.key_prefix
    assert cluster_sync.hget(chat_key(prefix, chat["id"]), "status") == b"waiting"
