"""Chats on a Responses upstream: follow-ups chain with `previous_response_id` (spec §6); a
forgotten response, a fallback deployment and later steps of a turn replay the history."""

from __future__ import annotations

from typing import Any

from fake_providers.testing import FakeProviders
from tests.conftest import GatewayFactory, base_config
from tests.integration.chats.helpers import client, wait_status

RESPONSES = "/openai/v1/responses"


def _gateway(gateway_factory: GatewayFactory, fake: FakeProviders, redis_url: str, **chats: Any) -> Any:
    config = base_config(fake, redis_url)
    config["models"] = [
        *config["models"],
        {
            "name": "gpt-r",
            "provider": "fake-openai",
            "upstream_model": "gpt-4o-mini",
            "api": "responses",
            "fallbacks": ["gpt-r-backup"],
        },
        {"name": "gpt-r-backup", "provider": "fake-openai", "upstream_model": "gpt-4o", "api": "responses"},
    ]
    if chats:
        config["chats"] = chats
    return gateway_factory(config)


def _msg(role: str, text: str) -> dict[str, Any]:
    return {"type": "message", "role": role, "content": text}


def _start(c: Any) -> dict[str, Any]:
    r = c.post("", json={"model": "gpt-r", "message": "hello", "system_prompt": "Be brief."})
    assert r.status_code == 201, r.text
    chat: dict[str, Any] = r.json()
    wait_status(c, chat["id"], "waiting")
    return chat


def _send(c: Any, chat_id: str, text: str) -> None:
    r = c.post(f"/{chat_id}/messages", json={"message": text})
    assert r.json()["queued"] is False
    wait_status(c, chat_id, "waiting")


def test_follow_up_chains_on_the_stored_response(
    gateway_factory: GatewayFactory, fake: FakeProviders, redis_url: str
) -> None:
    gw = _gateway(gateway_factory, fake, redis_url)
    with client(gw) as c:
        chat = _start(c)
        _send(c, chat["id"], "again")
        messages = c.get(f"/{chat['id']}/messages").json()["messages"]
    first, second = fake.requests(path=RESPONSES)
    [r1, r2] = fake.stored_responses()
    assert first.body["input"] == [_msg("system", "Be brief."), _msg("user", "hello")]
    assert "previous_response_id" not in first.body
    assert (first.body["store"], first.body["stream"], first.body["model"]) == (True, True, "gpt-4o-mini")
    # the follow-up: system + the new user message + the previous answer's id
    assert second.body["input"] == [_msg("system", "Be brief."), _msg("user", "again")]
    assert second.body["previous_response_id"] == r1
    assert [(m["role"], m.get("provider_response_id"), m.get("deployment")) for m in messages] == [
        ("system", None, None),
        ("user", None, None),
        ("assistant", r1, "fake-openai/gpt-4o-mini"),
        ("user", None, None),
        ("assistant", r2, "fake-openai/gpt-4o-mini"),
    ]
    assert messages[4]["content"] == [{"type": "text", "text": "You said: again"}]
    assert messages[4]["usage"]["input_tokens"] > 0


def test_forgotten_response_replays_the_history(
    gateway_factory: GatewayFactory, fake: FakeProviders, redis_url: str
) -> None:
    gw = _gateway(gateway_factory, fake, redis_url)
    with client(gw) as c:
        chat = _start(c)
        [r1] = fake.stored_responses()
        assert fake.forget_response(r1)
        _send(c, chat["id"], "again")
        messages = c.get(f"/{chat['id']}/messages").json()["messages"]
    _, chained, replay = fake.requests(path=RESPONSES)
    assert chained.body["previous_response_id"] == r1
    assert "previous_response_id" not in replay.body
    assert replay.body["input"] == [
        _msg("system", "Be brief."),
        _msg("user", "hello"),
        _msg("assistant", "You said: hello"),
        _msg("user", "again"),
    ]
    assert messages[-1]["content"] == [{"type": "text", "text": "You said: again"}]
    # no retry event or error: the replay is not a retry
    assert messages[-1]["provider_response_id"] == fake.stored_responses()[-1]


def test_fallback_deployment_replays_and_later_steps_replay(
    gateway_factory: GatewayFactory, fake: FakeProviders, redis_url: str
) -> None:
    gw = _gateway(gateway_factory, fake, redis_url)
    with client(gw) as c:
        chat = _start(c)
        [r1] = fake.stored_responses()
        # the primary deployment refuses the follow-up (model_not_found fails over at once)
        fake.script([{"fault": "404"}])
        _send(c, chat["id"], "again")
        messages = c.get(f"/{chat['id']}/messages").json()["messages"]
    _, chained, fallback = fake.requests(path=RESPONSES)
    assert (chained.body["model"], chained.body["previous_response_id"]) == ("gpt-4o-mini", r1)
    assert fallback.body["model"] == "gpt-4o"
    assert "previous_response_id" not in fallback.body
    assert fallback.body["input"] == [
        _msg("system", "Be brief."),
        _msg("user", "hello"),
        _msg("assistant", "You said: hello"),
        _msg("user", "again"),
    ]
    assert messages[-1]["deployment"] == "fake-openai/gpt-4o"


def test_store_off_never_chains(gateway_factory: GatewayFactory, fake: FakeProviders, redis_url: str) -> None:
    gw = _gateway(gateway_factory, fake, redis_url, upstream_store=False)
    with client(gw) as c:
        chat = _start(c)
        _send(c, chat["id"], "again")
        messages = c.get(f"/{chat['id']}/messages").json()["messages"]
    first, second = fake.requests(path=RESPONSES)
    assert first.body["store"] is False and second.body["store"] is False
    assert "previous_response_id" not in second.body
    assert len(second.body["input"]) == 4
    assert all("provider_response_id" not in m for m in messages)


def test_tool_results_step_replays_then_the_next_turn_chains(
    gateway_factory: GatewayFactory, fake: FakeProviders, redis_url: str
) -> None:
    from tests.integration.chats.test_dynamic_tools import WEATHER

    gw = _gateway(gateway_factory, fake, redis_url)
    fake.script(
        [
            {
                "reply": {
                    "tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}, "id": "call_w1"}]
                }
            }
        ]
    )
    with client(gw) as c:
        r = c.post("", json={"model": "gpt-r", "message": "Weather?", "dynamic_tools": [WEATHER]})
        chat_id = r.json()["id"]
        wait_status(c, chat_id, "requires_action")
        results = {"results": [{"tool_call_id": "call_w1", "output": {"temp": 21}}]}
        assert c.post(f"/{chat_id}/tool-results", json=results).status_code == 204
        wait_status(c, chat_id, "waiting")
        _send(c, chat_id, "thanks")
        messages = c.get(f"/{chat_id}/messages").json()["messages"]
    first, after_tools, follow_up = fake.requests(path=RESPONSES)
    assert first.body["tools"] == [
        {
            "type": "function",
            "name": "get_weather",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
            "description": "Weather in a city",
            "strict": False,
        }
    ]
    call = messages[1]["content"][0]
    assert (call["type"], call["tool_call_id"], call["args"]) == ("tool-call", "call_w1", '{"city":"Paris"}')
    assert call["created_at"]
    # the turn continued after tool results: a full replay, not a chain
    assert "previous_response_id" not in after_tools.body
    assert after_tools.body["input"] == [
        _msg("user", "Weather?"),
        {
            "type": "function_call",
            "call_id": "call_w1",
            "name": "get_weather",
            "arguments": '{"city":"Paris"}',
        },
        {"type": "function_call_output", "call_id": "call_w1", "output": '{"temp":21}'},
    ]
    assert follow_up.body["previous_response_id"] == messages[3]["provider_response_id"]
    assert follow_up.body["input"] == [_msg("user", "thanks")]
