"""Stateful chats on a Claude model: the steps go to the fake Anthropic upstream as Messages
requests (the Anthropic dialect adapter), a dynamic tool call makes the round trip, and the
chat's events and messages are the same as on any other model."""

from __future__ import annotations

from typing import Any

from fake_providers.testing import FakeProviders
from gateway.testing import add_anthropic
from tests.conftest import GatewayFactory, base_config
from tests.integration.chats.helpers import client, read_events, wait_status
from tests.integration.chats.test_dynamic_tools import WEATHER

MESSAGES = "/anthropic/v1/messages"


def test_a_chat_on_claude_with_a_dynamic_tool_round_trip(
    gateway_factory: GatewayFactory, fake: FakeProviders, redis_url: str
) -> None:
    gw = gateway_factory(add_anthropic(base_config(fake, redis_url), fake))
    fake.script(
        [
            {
                "reply": {
                    "tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}, "id": "toolu_w1"}]
                }
            },
            {"reply": {"text": "Sunny in Paris."}},
        ]
    )
    with client(gw) as c:
        created = c.post(
            "", json={"model": "claude", "message": "Weather in Paris?", "dynamic_tools": [WEATHER]}
        )
        assert created.status_code == 201, created.text
        chat_id = created.json()["id"]
        events = read_events(c, chat_id, lambda evs: any(e["event"] == "action_required" for e in evs))
        [action] = [e for e in events if e["event"] == "action_required"]
        assert action["data"]["action_required"]["tool_calls"] == [
            {"tool_call_id": "toolu_w1", "tool_name": "get_weather", "args": '{"city":"Paris"}'}
        ]
        # The step asked Claude in its own dialect, with the dynamic tool as an Anthropic tool.
        [first] = fake.requests(path=MESSAGES)
        assert first.body["model"] == "claude-haiku-4-5"
        assert first.body["stream"] is True
        assert first.body["max_tokens"] == 4096
        assert first.body["messages"] == [
            {"role": "user", "content": [{"type": "text", "text": "Weather in Paris?"}]}
        ]
        assert first.body["tools"] == [
            {
                "name": "get_weather",
                "description": "Weather in a city",
                "input_schema": {
                    "type": "object",
                    "properties": {"city": {"type": "string"}},
                    "required": ["city"],
                },
            }
        ]

        answered = c.post(
            f"/{chat_id}/tool-results",
            json={"results": [{"tool_call_id": "toolu_w1", "output": {"temp": 21}}]},
        )
        assert answered.status_code == 204, answered.text
        wait_status(c, chat_id, "waiting")
        messages = c.get(f"/{chat_id}/messages").json()["messages"]

    # The second step carried the call and its result back in Anthropic's blocks.
    second = fake.requests(path=MESSAGES)[1].body
    assert second["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "Weather in Paris?"}]},
        {
            "role": "assistant",
            "content": [
                {"type": "tool_use", "id": "toolu_w1", "name": "get_weather", "input": {"city": "Paris"}}
            ],
        },
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": "toolu_w1", "content": '{"temp":21}'}],
        },
    ]
    roles = [(m["role"], [p["type"] for p in m["content"]]) for m in messages]
    assert roles == [
        ("user", ["text"]),
        ("assistant", ["tool-call"]),
        ("tool", ["tool-result"]),
        ("assistant", ["text"]),
    ]
    final: dict[str, Any] = messages[-1]
    assert final["content"][0]["text"] == "Sunny in Paris."
    assert final["model"] == "claude"
    usage = final["usage"]
    assert usage["input_tokens"] > 0 and usage["output_tokens"] > 0
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]
    assert messages[1]["content"][0]["created_at"]
    # The turn's events streamed the answer as parts, as on every other model.
    texts = [e["data"] for e in events if e["event"] == "message_part"]
    assert any(p["message_part"]["part"].get("tool_name") == "get_weather" for p in texts)
