"""Queued messages, reconnecting with Last-Event-ID, retries and the startup guard on the manual
clock, and the stale requires_action timeout."""

from __future__ import annotations

import json

from fake_providers.testing import FakeProviders
from tests.conftest import RunningGateway
from tests.integration.chats.helpers import client, poll, read_events, wait_status
from tests.integration.chats.test_dynamic_tools import CHAT, create, to_requires_action


def test_queue_while_requires_action_then_interrupt_promotes_fifo(
    gateway: RunningGateway, fake: FakeProviders
) -> None:
    chat, _ = to_requires_action(gateway, fake)
    with client(gateway) as c:
        wait_status(c, chat["id"], "requires_action")
        for i in range(20):
            r = c.post(f"/{chat['id']}/messages", json={"message": f"later {i}"})
            assert r.status_code == 200 and r.json()["queued"] is True
        full = c.post(f"/{chat['id']}/messages", json={"message": "one too many"})
        assert (full.status_code, full.json()) == (429, {"message": "Message queue is full."})
        page = c.get(f"/{chat['id']}/messages").json()
        assert [q["content"][0]["text"] for q in page["queued_messages"]] == [f"later {i}" for i in range(20)]
        assert c.post(f"/{chat['id']}/interrupt").status_code == 200

        def drained() -> bool:
            p = c.get(f"/{chat['id']}/messages").json()
            return not p["queued_messages"] and c.get(f"/{chat['id']}").json()["status"] == "waiting"

        poll(drained, what="queue drained")
        messages = c.get(f"/{chat['id']}/messages").json()["messages"]
    users = [m["content"][0]["text"] for m in messages if m["role"] == "user"]
    assert users == ["Weather in Paris?"] + [f"later {i}" for i in range(20)]
    # each promoted message got its own answer, in order
    answers = [
        m["content"][0]["text"]
        for m in messages
        if m["role"] == "assistant" and m["content"][0]["type"] == "text"
    ]
    assert answers == [f"You said: later {i}" for i in range(20)]
    # paging
    with client(gateway) as c:
        last_two = c.get(
            f"/{chat['id']}/messages", params={"before_id": messages[-1]["id"], "limit": 2}
        ).json()
        assert [m["id"] for m in last_two["messages"]] == [messages[-3]["id"], messages[-2]["id"]]
        after = c.get(f"/{chat['id']}/messages", params={"after_id": messages[-2]["id"]}).json()
        assert [m["id"] for m in after["messages"]] == [messages[-1]["id"]]


def test_reconnect_with_last_event_id(gateway: RunningGateway, fake: FakeProviders) -> None:
    chat = create(gateway, dynamic_tools=[])
    with client(gateway) as c:
        wait_status(c, chat["id"], "waiting")
        first = read_events(c, chat["id"], lambda evs: any(e["event"] == "queue_update" for e in evs))
        resume_at = first[-1]["id"]  # the snapshot's last frame: the id the client holds
        r = c.post(f"/{chat['id']}/messages", json={"message": "again"})
        assert r.json()["queued"] is False
        wait_status(c, chat["id"], "waiting")
        resumed = read_events(
            c,
            chat["id"],
            lambda evs: (
                sum(1 for e in evs if e["event"] == "status" and e["data"]["status"]["status"] == "waiting")
                >= 2
            ),
            last_event_id=resume_at,
        )
    kinds = [e["event"] for e in resumed]
    # the current status, then exactly what happened after the id we had
    assert kinds[0] == "status"
    after = [
        (e["event"], e["data"].get("status", {}).get("status"))
        for e in resumed[1:]
        if e["event"] != "message_part"
    ]
    assert after == [
        ("message", None),
        ("status", "pending"),
        ("status", "running"),
        ("message", None),
        ("status", "waiting"),
    ]
    texts = "".join(
        e["data"]["message_part"]["part"]["text"] for e in resumed if e["event"] == "message_part"
    )
    assert texts == "You said: again"
    ids = [e["id"] for e in resumed[1:]]
    assert ids == sorted(ids, key=lambda i: tuple(int(x) for x in i.split("-")))


def test_retry_event_and_error_on_the_manual_clock(gateway: RunningGateway, fake: FakeProviders) -> None:
    fake.script([{"fault": "429", "times": 1}])
    chat = create(gateway, dynamic_tools=[])
    gateway.clock.wait_for_timer_blocking("retry_backoff")
    with client(gateway) as c:
        events = read_events(
            c, chat["id"], lambda evs: any(e["event"] == "retry" for e in evs), last_event_id="0-0"
        )
        [retry] = [e["data"]["retry"] for e in events if e["event"] == "retry"]
        assert retry["attempt"] == 1
        assert retry["delay_ms"] == 1000
        assert retry["kind"] == "rate_limit"
        assert retry["provider"] == "openai"
        assert retry["status_code"] == 429
        assert retry["retrying_at"].endswith("Z")
        gateway.clock.fire("retry_backoff")
        wait_status(c, chat["id"], "waiting")
    assert len(fake.requests(path=CHAT)) == 2


def test_terminal_error_sets_error_status(gateway: RunningGateway, fake: FakeProviders) -> None:
    fake.script([{"fault": "401"}])
    chat = create(gateway, dynamic_tools=[])
    with client(gateway) as c:
        final = wait_status(c, chat["id"], "error")
        events = read_events(
            c, chat["id"], lambda evs: any(e["event"] == "error" for e in evs), last_event_id="0-0"
        )
    [error] = [e["data"]["error"] for e in events if e["event"] == "error"]
    assert error["kind"] == "auth"
    assert error["provider"] == "openai"
    assert error["retryable"] is False
    assert error["status_code"] == 401
    assert "detail" in error
    assert final["last_error"] == error["message"]


def test_startup_guard_fires_once_then_the_retry_succeeds(
    gateway: RunningGateway, fake: FakeProviders
) -> None:
    fake.script([{"fault": "silence"}])
    chat = create(gateway, dynamic_tools=[])
    clock = gateway.clock
    clock.fire("startup_guard")
    clock.wait_for_timer_blocking("retry_backoff")
    with client(gateway) as c:
        events = read_events(
            c, chat["id"], lambda evs: any(e["event"] == "retry" for e in evs), last_event_id="0-0"
        )
        [retry] = [e["data"]["retry"] for e in events if e["event"] == "retry"]
        assert (retry["attempt"], retry["kind"]) == (1, "startup_timeout")
        clock.fire("retry_backoff")
        wait_status(c, chat["id"], "waiting")
    # armed twice (one per attempt), fired once, the second disarmed by the first chunk
    assert clock.history("startup_guard") == ["armed", "fired", "armed", "cancelled"]


def test_stale_requires_action_times_out(gateway: RunningGateway, fake: FakeProviders) -> None:
    chat, _ = to_requires_action(gateway, fake)
    with client(gateway) as c:
        wait_status(c, chat["id"], "requires_action")
        gateway.clock.advance(301)
        gateway.clock.fire("chat_reaper")
        final = wait_status(c, chat["id"], "error")
        messages = c.get(f"/{chat['id']}/messages").json()["messages"]
    assert final["last_error"] == "Dynamic tool execution timed out"
    part = messages[-1]["content"][0]
    assert part["is_error"] is True
    assert json.loads(part["result"]) == {"error": "Dynamic tool execution timed out"}
    call = messages[-2]["content"][0]
    assert call["created_at"] <= part["created_at"]


def test_interrupt_while_running_keeps_partial_output(gateway: RunningGateway, fake: FakeProviders) -> None:
    fake.script([{"fault": "stall-3", "reply": {"text": "one two three four five"}}])
    chat = create(gateway, dynamic_tools=[])
    with client(gateway) as c:
        read_events(
            c,
            chat["id"],
            lambda evs: sum(1 for e in evs if e["event"] == "message_part") >= 1,
            last_event_id="0-0",
        )
        assert c.post(f"/{chat['id']}/interrupt").json()["status"] == "waiting"

        def assistant() -> list[dict[str, object]] | None:
            ms = c.get(f"/{chat['id']}/messages").json()["messages"]
            return ms if ms[-1]["role"] == "assistant" else None

        messages = poll(assistant, what="partial assistant message")
    text = messages[-1]["content"][0]["text"]
    assert "one two three four five".startswith(text) and text
