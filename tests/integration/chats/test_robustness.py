"""A turn that fails inside the gateway ends in `error`; a `pending` chat whose job was lost is
picked up by the reaper. Both start from a chat created on an API-only replica, so the state is
set up before any worker sees it."""

from __future__ import annotations

import copy
from typing import Any

import redis

from fake_providers.testing import FakeProviders
from gateway.chats.store import chat_key
from tests.conftest import GatewayFactory, base_config
from tests.integration.chats.helpers import client, poll, read_events, wait_status

CHAT = "/openai/v1/chat/completions"


def _configs(fake: FakeProviders, redis_url: str) -> tuple[dict[str, Any], dict[str, Any]]:
    worker = base_config(fake, redis_url)
    api_only = copy.deepcopy(worker)
    api_only["chats"] = {"worker": False}
    return api_only, worker


def _create(c: Any) -> dict[str, Any]:
    response = c.post("", json={"model": "gpt-4o-mini", "message": "hello"})
    assert response.status_code == 201, response.text
    chat: dict[str, Any] = response.json()
    return chat


def test_unexpected_exception_ends_the_turn_in_error(
    gateway_factory: GatewayFactory, fake: FakeProviders, redis_url: str, redis_sync: redis.Redis
) -> None:
    api_only, worker = _configs(fake, redis_url)
    api = gateway_factory(api_only)
    prefix = api_only["redis"]["key_prefix"]
    with client(api) as c:
        chat = _create(c)
        # A stored message the loop cannot decode: the turn raises while building the prompt.
        redis_sync.zadd(chat_key(prefix, chat["id"]) + ":msgs", {b'{"id":2,"broken":': 2})
        gateway_factory(worker)
        final = wait_status(c, chat["id"], "error")
        events = read_events(
            c,
            chat["id"],
            lambda evs: [e["data"].get("status") for e in evs[1:]][-1:] == [{"status": "error"}],
            last_event_id="0-0",
        )
    assert final["last_error"] == "The chat request failed unexpectedly."
    [error] = [e["data"] for e in events if e["event"] == "error"]
    assert error == {
        "type": "error",
        "chat_id": chat["id"],
        "error": {"message": "The chat request failed unexpectedly.", "kind": "generic", "retryable": False},
    }
    # the snapshot's current status, then every transition
    statuses = [e["data"]["status"]["status"] for e in events if e["event"] == "status"]
    assert statuses == ["error", "pending", "running", "error"]
    assert fake.requests(path=CHAT) == []
    # the worker let go of the chat
    assert redis_sync.hget(chat_key(prefix, chat["id"]), "worker") is None


def test_pending_chat_without_a_job_is_picked_up_by_the_reaper(
    gateway_factory: GatewayFactory, fake: FakeProviders, redis_url: str, redis_sync: redis.Redis
) -> None:
    api_only, worker = _configs(fake, redis_url)
    api = gateway_factory(api_only)
    prefix = api_only["redis"]["key_prefix"]
    jobs = f"{prefix}chats:jobs"
    with client(api) as c:
        chat = _create(c)
        # The replica "died" before its enqueue: the chat is pending and no job names it.
        [(entry_id, _fields)] = redis_sync.xrange(jobs)
        redis_sync.xdel(jobs, entry_id)
        assert redis_sync.zscore(f"{prefix}chats:pending", chat["id"]) == api.clock.now()
        # sweeps every 10 s (action timeout / 5); the lease is 30 s
        runner = gateway_factory({**worker, "chats": {"action_timeout_seconds": 50}})
        for _ in range(2):  # at +10 s and +20 s the mark is younger than a lease
            runner.clock.fire("chat_reaper")
            runner.clock.wait_for_timer_blocking("chat_reaper")  # armed again: the sweep is over
            assert c.get(f"/{chat['id']}").json()["status"] == "pending"
            assert redis_sync.xrange(jobs) == []
        runner.clock.fire("chat_reaper")  # +30 s
        wait_status(c, chat["id"], "waiting")
        messages = c.get(f"/{chat['id']}/messages").json()["messages"]
    assert [(m["role"], m["content"]) for m in messages] == [
        ("user", [{"type": "text", "text": "hello"}]),
        ("assistant", [{"type": "text", "text": "You said: hello"}]),
    ]
    assert len(fake.requests(path=CHAT)) == 1
    # the next sweep forgets the mark of a chat that moved on
    runner.clock.advance(31)
    runner.clock.fire("chat_reaper")

    def forgotten() -> bool:
        return redis_sync.zscore(f"{prefix}chats:pending", chat["id"]) is None

    poll(forgotten, what="pending mark removed")
