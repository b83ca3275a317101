"""The admin API's HTTP side over real sockets: request bodies capped at
``server.max_body_bytes`` (declared or chunked), and every answer, errors included, in OpenAI's
shape with an ``x-request-id``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import redis

from tests.conftest import GatewayFactory
from tests.integration.policy.test_policy import ADMIN, config

LIMIT = 2048
TOO_LARGE = {
    "message": f"Request body is larger than the limit of {LIMIT} bytes.",
    "type": "invalid_request_error",
    "param": None,
    "code": "request_too_large",
}


def chunks(total: int) -> Iterator[bytes]:
    yield b'{"alias": "'
    for _ in range(total // 512):
        yield b"x" * 512
    yield b'"}'


def test_admin_bodies_are_capped_at_the_configured_limit(
    gateway_factory: GatewayFactory, fake: Any, redis_url: str, redis_sync: redis.Redis
) -> None:
    cfg = config(fake, redis_url)
    cfg["server"] = {"max_body_bytes": LIMIT}
    gw = gateway_factory(cfg)
    url, auth = gw.root_url + "/admin/v1/keys", {"authorization": f"Bearer {ADMIN}"}
    declared = httpx.post(url, headers=auth, content=b'{"alias": "' + b"x" * LIMIT + b'"}')
    chunked = httpx.post(url, headers=auth, content=chunks(4 * LIMIT))
    for refused in (declared, chunked):
        assert refused.status_code == 413
        assert refused.json() == {"error": TOO_LARGE}
        assert refused.headers["x-request-id"].startswith("req_")
    assert "content-length" not in chunked.request.headers  # really sent without a declared size
    assert redis_sync.zcard(f"{gw.settings.redis.key_prefix}idx:keys") == 0  # nothing was created
    fits = httpx.post(url, headers=auth, content=b'{"alias": "' + b"x" * (LIMIT - 20) + b'"}')
    assert fits.status_code == 201, fits.text


def test_every_admin_answer_carries_a_fresh_request_id(
    gateway_factory: GatewayFactory, fake: Any, redis_url: str
) -> None:
    gw = gateway_factory(config(fake, redis_url))
    auth = {"authorization": f"Bearer {ADMIN}"}
    answers = [
        httpx.get(gw.root_url + "/admin/v1/keys", headers=auth),  # 200
        httpx.post(gw.root_url + "/admin/v1/teams", headers=auth, json={"id": "t1"}),  # 201
        httpx.get(gw.root_url + "/admin/v1/keys/nosuchkey000", headers=auth),  # 404 from an operation
        httpx.get(gw.root_url + "/admin/v1/keys"),  # 401 from the guard
        httpx.get(gw.root_url + "/admin/v1/self"),  # 401 from authentication
    ]
    assert [a.status_code for a in answers] == [200, 201, 404, 401, 401]
    ids = [a.headers["x-request-id"] for a in answers]
    assert all(i.startswith("req_") for i in ids) and len(set(ids)) == len(ids)
    assert all(a.headers["content-type"] == "application/json" for a in answers)
    assert answers[3].json()["error"]["message"] == "An admin API key is required."
