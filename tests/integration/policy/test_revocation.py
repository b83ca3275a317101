"""Revocation over two real gateway processes on one Redis: a key blocked, rotated or deleted
through replica A is refused by replica B on B's very next request, on every route — the
proxied ones (checked by the admission script) and those that admit nothing (reading and
deleting its stored responses and chats, posting tool results, counting tokens), checked with
one read of the key's version — although B has the key in its cache (``cache_ttl_seconds`` is
an hour here, so nothing but that check can tell B).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from fake_providers.testing import FakeProviders
from tests.conftest import base_config
from tests.integration.chats.test_replicas import Replica, start, to_toml, wait_healthy

ADMIN = "admin-key-revocation-0123456789"
MSG = [{"role": "user", "content": "hello"}]
Probe = Callable[[httpx.Client], httpx.Response]


@pytest.fixture(scope="module")
def replicas(
    fake_session: FakeProviders, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Replica, Replica]]:
    tmp = tmp_path_factory.mktemp("revocation")
    config = base_config(fake_session, redis_url)
    config["admin"] = {"keys": [{"name": "ops", "key": ADMIN}]}
    config["policy"] = {"time_source": "redis", "cache_ttl_seconds": 3600}
    config["server"] = {"models_refresh_seconds": 3600}
    path = tmp / "gateway.toml"
    path.write_text(to_toml(config), encoding="utf-8")
    started: list[Replica] = []
    try:
        for name in ("a", "b"):
            started.append(start(name, path, tmp))
        for replica in started:
            wait_healthy(replica, deadline=30)
        yield started[0], started[1]
    except BaseException:
        for replica in started:
            print(replica.tails())
        raise
    finally:
        for replica in started:
            if replica.proc.poll() is None:
                replica.proc.kill()
            replica.proc.wait(5)


def admin(replica: Replica, method: str, path: str, body: object = None) -> httpx.Response:
    r = httpx.request(
        method,
        replica.root + "/admin/v1" + path,
        headers={"authorization": f"Bearer {ADMIN}"},
        json=body,
        timeout=10,
    )
    assert r.status_code < 300, r.text
    return r


def client(replica: Replica, secret: str) -> httpx.Client:
    return httpx.Client(base_url=replica.root, headers={"authorization": f"Bearer {secret}"}, timeout=20)


class Owned:
    """What a key owns on B: a stored response and a chat (made before the change)."""

    def __init__(self, http: httpx.Client) -> None:
        created = http.post("/v1/responses", json={"model": "gpt-4o-mini", "input": "hi", "store": True})
        assert created.status_code == 200, created.text
        self.response = created.json()["id"]
        chat = http.post("/api/v1/chats", json={"model": "gpt-4o-mini", "message": "hi"})
        assert chat.status_code == 201, chat.text
        self.chat = chat.json()["id"]

    def probes(self) -> dict[str, Probe]:
        """Every kind of request the key might make, by name (:data:`PROBES`)."""
        r, c = self.response, self.chat
        return {
            "chat completion": lambda h: h.post(
                "/v1/chat/completions", json={"model": "gpt-4o-mini", "messages": MSG}
            ),
            "models": lambda h: h.get("/v1/models"),
            "read response": lambda h: h.get(f"/v1/responses/{r}"),
            "read input items": lambda h: h.get(f"/v1/responses/{r}/input_items"),
            "count input tokens": lambda h: h.post(
                "/v1/responses/input_tokens", json={"model": "gpt-4o-mini", "input": "hi"}
            ),
            "list chats": lambda h: h.get("/api/v1/chats"),
            "read chat": lambda h: h.get(f"/api/v1/chats/{c}"),
            "chat messages": lambda h: h.get(f"/api/v1/chats/{c}/messages"),
            "tool results": lambda h: h.post(
                f"/api/v1/chats/{c}/tool-results",
                json={"tool_results": [{"tool_call_id": "call_1", "output": "x"}]},
            ),
            "delete response": lambda h: h.delete(f"/v1/responses/{r}"),
            "delete chat": lambda h: h.delete(f"/api/v1/chats/{c}"),
        }


PROBES = (
    "chat completion",
    "models",
    "read response",
    "read input items",
    "count input tokens",
    "list chats",
    "read chat",
    "chat messages",
    "tool results",
    "delete response",
    "delete chat",
)


def refused_everywhere(http: httpx.Client, owned: Owned, *messages: str) -> None:
    for name, probe in owned.probes().items():
        answer = probe(http)
        assert answer.status_code == 401, (name, answer.status_code, answer.text)
        assert any(m in answer.text for m in messages), (name, answer.text)


def warm(http: httpx.Client, owned: Owned) -> None:
    """B reads the key (and caches it) through every read-only route."""
    for name, probe in owned.probes().items():
        if name.startswith("delete") or name == "tool results":
            continue
        answer = probe(http)
        assert answer.status_code == 200, (name, answer.text)


def apply(a: Replica, change: str, kid: str, team: str | None) -> tuple[str, ...]:
    """Make ``change`` through A; the refusal messages B may answer with."""
    if change == "block":
        admin(a, "POST", f"/keys/{kid}/block")
        return ("This API key has been blocked.",)
    if change == "rotate":
        admin(a, "POST", f"/keys/{kid}/rotate", {"grace_seconds": 0})
        return ("Incorrect API key provided",)
    if change == "delete":
        admin(a, "DELETE", f"/keys/{kid}")
        # The first request finds it deleted; later ones, forgotten, an unknown key.
        return ("This API key has been deleted.", "Incorrect API key provided")
    assert team is not None
    admin(a, "PATCH", f"/teams/{team}", {"status": "blocked"})
    return ("This API key has been blocked.",)


@pytest.mark.parametrize("change", ["block", "rotate", "delete", "block team"])
def test_a_change_on_a_is_refused_on_bs_very_next_request(
    replicas: tuple[Replica, Replica], change: str
) -> None:
    """For each route, a key whose first request after the change is that route's."""
    a, b = replicas
    for i, name in enumerate(PROBES):
        team = None
        if change == "block team":
            team = admin(a, "POST", "/teams", {"id": f"revocation-{i}"}).json()["id"]
        created = admin(a, "POST", "/keys", {"team_id": team}).json()
        with client(b, created["key"]) as http:
            owned = Owned(http)  # B now has the key (and its team) in its cache
            warm(http, owned)
            messages = apply(a, change, created["id"], team)
            answer = owned.probes()[name](http)
            assert answer.status_code == 401, (change, name, answer.status_code, answer.text)
            assert any(m in answer.text for m in messages), (change, name, answer.text)
            refused_everywhere(http, owned, *messages)


def test_a_rotated_keys_new_secret_works_on_b_at_once(replicas: tuple[Replica, Replica]) -> None:
    a, b = replicas
    created = admin(a, "POST", "/keys", {}).json()
    with client(b, created["key"]) as http:
        owned = Owned(http)
    rotated = admin(a, "POST", f"/keys/{created['id']}/rotate", {"grace_seconds": 0}).json()
    with client(b, rotated["key"]) as http:
        assert http.get(f"/v1/responses/{owned.response}").status_code == 200
        assert http.get(f"/api/v1/chats/{owned.chat}").status_code == 200


def test_an_unblocked_key_works_again_on_b_at_once(replicas: tuple[Replica, Replica]) -> None:
    a, b = replicas
    created = admin(a, "POST", "/keys", {"alias": "rev-unblock"}).json()
    secret, kid = created["key"], created["id"]
    with client(b, secret) as http:
        owned = Owned(http)
        admin(a, "POST", f"/keys/{kid}/block")
        assert http.get(f"/v1/responses/{owned.response}").status_code == 401
        admin(a, "POST", f"/keys/{kid}/unblock")
        assert http.get(f"/v1/responses/{owned.response}").status_code == 200
        answer: Any = http.post("/v1/chat/completions", json={"model": "gpt-4o-mini", "messages": MSG})
        assert answer.status_code == 200, answer.text
