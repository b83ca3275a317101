"""Bad and foreign requests on every chat route get the chat API's error shape and change
nothing; a tool-results submission sent twice at once is taken once; a message sent with
``busy_behavior: interrupt`` stops the running turn, keeps its partial answer and runs next."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import redis

from fake_providers.testing import FakeProviders
from gateway.chats.store import chat_key
from tests.conftest import OTHER_KEY, GatewayFactory, RunningGateway, base_config
from tests.integration.chats.helpers import client, poll, read_events, wait_status
from tests.integration.chats.test_dynamic_tools import CHAT, create, to_requires_action

NOT_FOUND = {"message": "Resource not found or you do not have access to this resource"}


def _state(r: redis.Redis, gw: RunningGateway, chat_id: str) -> tuple[Any, ...]:
    base = chat_key(gw.settings.redis.key_prefix, chat_id)
    return (
        r.hgetall(base),
        r.zrange(base + ":msgs", 0, -1),
        r.lrange(base + ":queue", 0, -1),
        r.xlen(base + ":events"),
    )


def test_bad_and_foreign_requests_are_refused_and_change_nothing(
    gateway_factory: GatewayFactory, fake: FakeProviders, redis_sync: redis.Redis
) -> None:
    gw = gateway_factory()
    chat, _ = to_requires_action(gw, fake)
    chat_id = chat["id"]
    with client(gw) as c, client(gw, OTHER_KEY) as other:
        wait_status(c, chat_id, "requires_action")
        before = _state(redis_sync, gw, chat_id)
        result = {"results": [{"tool_call_id": "call_w1", "output": 1}]}
        refusals: list[tuple[str, Any, int, dict[str, Any]]] = [
            (
                "send, malformed JSON",
                c.post(f"/{chat_id}/messages", content=b"{nope"),
                400,
                {
                    "message": "Invalid request body.",
                    "detail": "JSON is malformed: object keys must be strings (byte 1)",
                },
            ),
            (
                "send, not an object",
                c.post(f"/{chat_id}/messages", json=["hi"]),
                400,
                {"message": "Invalid request body.", "detail": "Expected `object`, got `array`"},
            ),
            (
                "send, unknown field",
                c.post(f"/{chat_id}/messages", json={"message": "hi", "mode": "x"}),
                400,
                {"message": "Invalid request body.", "detail": "Object contains unknown field `mode`"},
            ),
            (
                "send, bad busy_behavior",
                c.post(f"/{chat_id}/messages", json={"message": "hi", "busy_behavior": "now"}),
                400,
                {
                    "message": "Invalid busy_behavior.",
                    "detail": 'busy_behavior must be "queue" or "interrupt", not \'now\'.',
                },
            ),
            (
                "send, empty message",
                c.post(f"/{chat_id}/messages", json={"message": " "}),
                400,
                {"message": "Message must not be empty."},
            ),
            (
                "tool-results, malformed JSON",
                c.post(f"/{chat_id}/tool-results", content=b"results"),
                400,
                {
                    "message": "Invalid request body.",
                    "detail": "JSON is malformed: invalid character (byte 0)",
                },
            ),
            (
                "tool-results, no tool_call_id",
                c.post(f"/{chat_id}/tool-results", json={"results": [{"output": 1}]}),
                400,
                {
                    "message": "Invalid request body.",
                    "detail": "Object missing required field `tool_call_id` - at `$.results[0]`",
                },
            ),
            (
                "messages, bad limit",
                c.get(f"/{chat_id}/messages", params={"limit": "ten"}),
                400,
                {"message": "Invalid limit.", "detail": "limit must be a non-negative integer."},
            ),
            (
                "messages, limit 0",
                c.get(f"/{chat_id}/messages", params={"limit": "0"}),
                400,
                {"message": "Invalid limit.", "detail": "limit must be between 1 and 1000."},
            ),
            (
                "messages, negative after_id",
                c.get(f"/{chat_id}/messages", params={"after_id": "-1"}),
                400,
                {"message": "Invalid after_id.", "detail": "after_id must be a non-negative integer."},
            ),
            ("unknown chat, get", c.get("/no-such-chat"), 404, NOT_FOUND),
            ("unknown chat, send", c.post("/no-such-chat/messages", json={"message": "hi"}), 404, NOT_FOUND),
            ("unknown chat, tool-results", c.post("/no-such-chat/tool-results", json=result), 404, NOT_FOUND),
            ("unknown chat, interrupt", c.post("/no-such-chat/interrupt"), 404, NOT_FOUND),
            ("unknown chat, stream", c.get("/no-such-chat/stream"), 404, NOT_FOUND),
            ("unknown chat, delete", c.delete("/no-such-chat"), 404, NOT_FOUND),
            ("other key, get", other.get(f"/{chat_id}"), 404, NOT_FOUND),
            ("other key, messages", other.get(f"/{chat_id}/messages"), 404, NOT_FOUND),
            ("other key, send", other.post(f"/{chat_id}/messages", json={"message": "hi"}), 404, NOT_FOUND),
            ("other key, tool-results", other.post(f"/{chat_id}/tool-results", json=result), 404, NOT_FOUND),
            ("other key, interrupt", other.post(f"/{chat_id}/interrupt"), 404, NOT_FOUND),
            ("other key, stream", other.get(f"/{chat_id}/stream"), 404, NOT_FOUND),
            ("other key, delete", other.delete(f"/{chat_id}"), 404, NOT_FOUND),
        ]
        for what, response, status, body in refusals:
            assert (response.status_code, response.json()) == (status, body), what
            assert response.headers["content-type"] == "application/json", what
        assert other.get("").json() == {"chats": []}
        # Nothing about the chat changed: not its record, messages, queue or stream.
        assert _state(redis_sync, gw, chat_id) == before
        # ... and it still takes its owner's results.
        assert c.post(f"/{chat_id}/tool-results", json=result).status_code == 204
        wait_status(c, chat_id, "waiting")


def test_the_same_tool_results_sent_twice_at_once_are_taken_once(
    gateway: RunningGateway, fake: FakeProviders
) -> None:
    chat, _ = to_requires_action(gateway, fake)
    result = {"results": [{"tool_call_id": "call_w1", "output": {"temp": 21}}]}
    with client(gateway) as c:
        wait_status(c, chat["id"], "requires_action")

        def submit(_: int) -> tuple[int, Any]:
            with client(gateway) as own:
                response = own.post(f"/{chat['id']}/tool-results", json=result)
            return response.status_code, response.json() if response.content else None

        with ThreadPoolExecutor(2) as pool:
            answers = sorted(pool.map(submit, range(2)), key=lambda a: a[0])
        assert answers[0] == (204, None)
        assert answers[1][0] == 409
        assert answers[1][1]["message"] == "Chat is not waiting for tool results."
        wait_status(c, chat["id"], "waiting")
        messages = c.get(f"/{chat['id']}/messages").json()["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "tool", "assistant"]
    assert len(fake.requests(path=CHAT)) == 2


def test_a_message_sent_with_interrupt_stops_the_turn_and_runs_next(
    gateway: RunningGateway, fake: FakeProviders
) -> None:
    # The first answer stalls mid-stream; the second request gets the default echo.
    fake.script([{"fault": "stall-3", "reply": {"text": "one two three four five six"}}])
    chat = create(gateway, dynamic_tools=[])
    with client(gateway) as c:
        read_events(
            c,
            chat["id"],
            lambda evs: any(e["event"] == "message_part" for e in evs),
            last_event_id="0-0",
        )
        sent = c.post(f"/{chat['id']}/messages", json={"message": "now this", "busy_behavior": "interrupt"})
        assert sent.status_code == 200
        assert sent.json()["queued"] is True

        def settled() -> list[dict[str, Any]] | None:
            if c.get(f"/{chat['id']}").json()["status"] != "waiting":
                return None
            page = c.get(f"/{chat['id']}/messages").json()
            return page["messages"] if len(page["messages"]) == 4 and not page["queued_messages"] else None

        messages = poll(settled, what="the interrupting message's turn")
    assert [m["role"] for m in messages] == ["user", "assistant", "user", "assistant"]
    partial = messages[1]["content"][0]["text"]
    assert partial and "one two three four five six".startswith(partial)
    assert messages[2]["content"] == [{"type": "text", "text": "now this"}]
    assert messages[3]["content"] == [{"type": "text", "text": "You said: now this"}]
    # The next turn saw the partial answer before the new message.
    second = fake.requests(path=CHAT)[1].body["messages"]
    assert second == [
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": partial},
        {"role": "user", "content": "now this"},
    ]


def test_each_assistant_message_records_usage_and_the_context_window(
    gateway_factory: GatewayFactory, fake: FakeProviders, redis_url: str
) -> None:
    config = base_config(fake, redis_url)
    config["models"] = [{"name": "gpt-4o-mini", "provider": "fake-openai", "context_window": 64000}]
    gw = gateway_factory(config)
    chat = create(gw, dynamic_tools=[])
    with client(gw) as c:
        wait_status(c, chat["id"], "waiting")
        [user, assistant] = c.get(f"/{chat['id']}/messages").json()["messages"]
    [sent] = fake.requests(path=CHAT)
    usage = assistant["usage"]
    assert usage["context_limit"] == 64000
    assert usage["input_tokens"] > 0 and usage["output_tokens"] > 0
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]
    assert assistant["model"] == "gpt-4o-mini"
    assert "usage" not in user
    assert sent.body["stream_options"] == {"include_usage": True}
