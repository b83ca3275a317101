"""Create -> stream -> dynamic tool -> requires_action -> tool-results -> completion, end to end."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from fake_providers.testing import FakeProviders
from gateway.chats.store import chat_key
from tests.conftest import GatewayFactory, RunningGateway
from tests.integration.chats.helpers import client, read_events, wait_status

CHAT = "/openai/v1/chat/completions"
WEATHER = {
    "name": "get_weather",
    "description": "Weather in a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


def create(gw: RunningGateway, **extra: Any) -> dict[str, Any]:
    body = {"model": "gpt-4o-mini", "message": "Weather in Paris?", "dynamic_tools": [WEATHER], **extra}
    with client(gw) as c:
        response = c.post("", json=body)
    assert response.status_code == 201, response.text
    chat: dict[str, Any] = response.json()
    return chat


def to_requires_action(
    gw: RunningGateway, fake: FakeProviders
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    fake.script(
        [
            {
                "reply": {
                    "tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}, "id": "call_w1"}]
                }
            }
        ]
    )
    chat = create(gw)
    with client(gw) as c:
        events = read_events(c, chat["id"], lambda evs: any(e["event"] == "action_required" for e in evs))
    return chat, events


def test_dynamic_tool_round_trip(
    gateway: RunningGateway, fake: FakeProviders, redis_sync: redis.Redis
) -> None:
    chat, events = to_requires_action(gateway, fake)
    assert chat["status"] == "pending"
    assert chat["title"] == "Weather in Paris?"
    [action] = [e for e in events if e["event"] == "action_required"]
    assert action["data"] == {
        "type": "action_required",
        "chat_id": chat["id"],
        "action_required": {
            "tool_calls": [
                {"tool_call_id": "call_w1", "tool_name": "get_weather", "args": '{"city":"Paris"}'}
            ]
        },
    }
    # every event after the snapshot's status and messages carries an id; ids increase
    assert all("id" in e for e in events if e["event"] not in ("status", "message", "action_required"))
    ids = [e["id"] for e in events if "id" in e]
    assert ids == sorted(ids, key=lambda i: tuple(int(x) for x in i.split("-")))
    # the model saw the dynamic tool with only properties and required
    [sent] = fake.requests(path=CHAT)
    assert sent.body["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "parameters": {
                    "type": "object",
                    "properties": {"city": {"type": "string"}},
                    "required": ["city"],
                },
                "description": "Weather in a city",
            },
        }
    ]
    assert sent.body["messages"] == [{"role": "user", "content": "Weather in Paris?"}]
    with client(gateway) as c:
        wait_status(c, chat["id"], "requires_action")
        result = {"results": [{"tool_call_id": "call_w1", "output": {"temp": 21}}]}
        response = c.post(f"/{chat['id']}/tool-results", json=result)
        assert response.status_code == 204, response.text
        # the same submission again: the chat is no longer waiting
        again = c.post(f"/{chat['id']}/tool-results", json=result)
        assert again.status_code == 409
        assert again.json()["message"] == "Chat is not waiting for tool results."
        wait_status(c, chat["id"], "waiting")
        messages = c.get(f"/{chat['id']}/messages").json()["messages"]
    roles = [m["role"] for m in messages]
    assert roles == ["user", "assistant", "tool", "assistant"]
    call = messages[1]["content"][0]
    assert (
        call["type"] == "tool-call"
        and call["tool_call_id"] == "call_w1"
        and call["args"] == '{"city":"Paris"}'
    )
    assert call["created_at"]
    tool = messages[2]["content"][0]
    assert tool == {
        "type": "tool-result",
        "tool_call_id": "call_w1",
        "tool_name": "get_weather",
        "result": '{"temp":21}',
    }
    assert messages[3]["content"] == [
        {"type": "text", "text": 'Tool results: get_weather returned {"temp":21}'}
    ]
    assert messages[3]["usage"]["input_tokens"] > 0
    # the follow-up step replayed the whole turn to the model
    second = fake.requests(path=CHAT)[1].body["messages"]
    assert second[1]["tool_calls"][0]["id"] == "call_w1"
    assert second[2] == {"role": "tool", "tool_call_id": "call_w1", "content": '{"temp":21}'}
    # Redis holds the chat under its hash tag
    prefix = gateway.settings.redis.key_prefix
    assert redis_sync.hget(chat_key(prefix, chat["id"]), "status") == b"waiting"
    assert redis_sync.zcard(chat_key(prefix, chat["id"]) + ":msgs") == 4


@pytest.mark.parametrize(
    ("results", "status", "message", "detail"),
    [
        ([], 400, "At least one tool result is required.", None),
        (
            [{"tool_call_id": "call_w1", "output": 1}, {"tool_call_id": "call_w1", "output": 2}],
            400,
            "Duplicate tool_call_id in results.",
            'Duplicate tool call ID "call_w1".',
        ),
        (
            [{"tool_call_id": "other", "output": 1}],
            400,
            "Missing tool result.",
            'Missing result for tool call "call_w1".',
        ),
        (
            [{"tool_call_id": "call_w1", "output": 1}, {"tool_call_id": "other", "output": 1}],
            400,
            "Unexpected tool result.",
            'No pending tool call with ID "other".',
        ),
        (
            [{"tool_call_id": "call_w1"}],
            400,
            "Tool result output must be valid JSON.",
            'Output for tool call "call_w1" is not valid JSON.',
        ),
    ],
)
def test_tool_results_validation(
    gateway: RunningGateway,
    fake: FakeProviders,
    results: list[dict[str, Any]],
    status: int,
    message: str,
    detail: str | None,
) -> None:
    chat, _ = to_requires_action(gateway, fake)
    with client(gateway) as c:
        wait_status(c, chat["id"], "requires_action")
        response = c.post(f"/{chat['id']}/tool-results", json={"results": results})
        expected: dict[str, Any] = {"message": message}
        if detail is not None:
            expected["detail"] = detail
        assert (response.status_code, response.json()) == (status, expected)
        assert c.get(f"/{chat['id']}").json()["status"] == "requires_action"


def test_tool_results_when_not_waiting(gateway: RunningGateway, fake: FakeProviders) -> None:
    chat = create(gateway, dynamic_tools=[])
    with client(gateway) as c:
        wait_status(c, chat["id"], "waiting")
        response = c.post(
            f"/{chat['id']}/tool-results", json={"results": [{"tool_call_id": "x", "output": 1}]}
        )
    assert response.status_code == 409
    assert response.json() == {
        "message": "Chat is not waiting for tool results.",
        "detail": 'Chat status is "waiting", expected "requires_action".',
    }


def test_interrupt_in_requires_action(gateway: RunningGateway, fake: FakeProviders) -> None:
    chat, _ = to_requires_action(gateway, fake)
    with client(gateway) as c:
        wait_status(c, chat["id"], "requires_action")
        response = c.post(f"/{chat['id']}/interrupt")
        assert response.status_code == 200
        assert response.json()["status"] == "waiting"
        messages = c.get(f"/{chat['id']}/messages").json()["messages"]
    tool = messages[-1]
    assert tool["role"] == "tool"
    part = tool["content"][0]
    assert part["is_error"] is True
    assert json.loads(part["result"]) == {"error": "Tool execution interrupted by user"}
    assert part["created_at"] == tool["created_at"]


def test_create_validation(gateway: RunningGateway) -> None:
    with client(gateway) as c:

        def post(**body: Any) -> tuple[int, Any]:
            r = c.post("", json={"model": "gpt-4o-mini", "message": "hi", **body})
            return r.status_code, r.json()["message"]

        assert post(dynamic_tools=[{"name": ""}]) == (400, "Dynamic tool name must not be empty.")
        assert post(dynamic_tools=[{"name": "a"}, {"name": "a"}]) == (400, "Duplicate dynamic tool name.")
        assert post(dynamic_tools=[{"name": f"t{i}"} for i in range(251)]) == (400, "Too many dynamic tools.")
        most = [{"name": f"t{i}"} for i in range(250)]
        assert (
            c.post("", json={"model": "gpt-4o-mini", "message": "hi", "dynamic_tools": most}).status_code
            == 201
        )
        for bad in ("get weather", "x" * 65, "fn.call"):
            r = c.post("", json={"model": "gpt-4o-mini", "message": "hi", "dynamic_tools": [{"name": bad}]})
            assert (r.status_code, r.json()) == (
                400,
                {
                    "message": "Invalid dynamic tool name.",
                    "detail": f"Dynamic tool name {bad!r} must be 1 to 64 letters, digits, underscores or dashes.",
                },
            )
        r = c.post(
            "",
            json={
                "model": "gpt-4o-mini",
                "message": "hi",
                "dynamic_tools": [{"name": "t", "input_schema": "{}"}],
            },
        )
        assert (r.status_code, r.json()["message"]) == (400, "Invalid dynamic tool input schema.")
        assert post(system_prompt="x" * 10_001) == (400, "System prompt exceeds maximum length.")
        assert c.post("", content=b"x" * (256 * 1024 + 1)).status_code == 413

        def pieces() -> Iterator[bytes]:  # no content-length: the limit is checked as it is read
            for _ in range(300):
                yield b"x" * 1024

        chunked = c.post("", content=pieces())
        assert chunked.request.headers["transfer-encoding"] == "chunked"
        assert (chunked.status_code, chunked.json()["message"]) == (413, "Request body too large.")
        assert c.get("/nope").status_code == 404


def test_chats_are_scoped_to_the_key(gateway_factory: GatewayFactory, fake: FakeProviders) -> None:
    from tests.conftest import OTHER_KEY

    gw = gateway_factory()
    chat = create(gw, dynamic_tools=[])
    with client(gw, OTHER_KEY) as other:
        assert other.get(f"/{chat['id']}").status_code == 404
        assert other.get("").json() == {"chats": []}
    with client(gw) as c:
        assert [x["id"] for x in c.get("").json()["chats"]] == [chat["id"]]
        assert c.delete(f"/{chat['id']}").status_code == 204
        assert c.get(f"/{chat['id']}").status_code == 404
