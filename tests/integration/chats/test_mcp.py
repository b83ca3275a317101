"""MCP tools as built-in tools: listed from the fake MCP server (schemas repaired), run by the
gateway concurrently next to a dynamic tool of the same step."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from fake_providers.mcp import create_mcp_app
from fake_providers.testing import FakeProviders, serve
from tests.conftest import GatewayFactory, base_config
from tests.integration.chats.helpers import client, poll, read_events, wait_status
from tests.integration.chats.test_dynamic_tools import CHAT, WEATHER


@pytest.fixture(scope="module")
def mcp_url() -> Iterator[str]:
    with serve(create_mcp_app()) as served:
        yield served.base_url + "/mcp"


def _call(name: str, args: dict[str, Any], call_id: str) -> dict[str, Any]:
    return {"name": name, "arguments": args, "id": call_id}


def test_mixed_mcp_and_dynamic_calls(
    gateway_factory: GatewayFactory, fake: FakeProviders, redis_url: str, mcp_url: str
) -> None:
    config = base_config(fake, redis_url, chats={"mcp_servers": [{"name": "tools", "url": mcp_url}]})
    gw = gateway_factory(config)
    calls = [
        _call("add", {"a": 2, "b": 3}, "call_add"),
        _call("get_weather", {"city": "Paris"}, "call_w1"),
        _call("fail", {}, "call_fail"),
    ]
    fake.script([{"reply": {"tool_calls": calls}}])
    with client(gw) as c:
        r = c.post(
            "",
            json={
                "model": "gpt-4o-mini",
                "message": "go",
                "dynamic_tools": [WEATHER],
                "mcp_servers": ["tools"],
            },
        )
        assert r.status_code == 201, r.text
        chat_id = r.json()["id"]
        wait_status(c, chat_id, "requires_action")
        messages = c.get(f"/{chat_id}/messages").json()["messages"]
        events = read_events(
            c, chat_id, lambda evs: any(e["event"] == "action_required" for e in evs), last_event_id="0-0"
        )
    [sent] = fake.requests(path=CHAT)
    tools = {t["function"]["name"]: t["function"] for t in sent.body["tools"]}
    assert list(tools) == ["add", "ping", "lookup", "fail", "slow", "get_weather"]
    assert tools["ping"]["parameters"] == {"type": "object", "properties": {}}
    assert tools["lookup"]["parameters"] == {
        "type": "object",
        "properties": {
            "key": {"anyOf": [{"type": "string"}, {"type": "null"}]},
            "tags": {"type": "array", "items": {}},
        },
    }
    assert tools["add"]["parameters"]["required"] == ["a", "b"]
    # the assistant message has every call; tool messages only for the built-in ones, in call order
    assert [m["role"] for m in messages] == ["user", "assistant", "tool", "tool"]
    assistant = messages[1]["content"]
    assert [(p["tool_call_id"], p.get("mcp_server")) for p in assistant] == [
        ("call_add", "tools"),
        ("call_w1", None),
        ("call_fail", "tools"),
    ]
    add, fail = messages[2]["content"][0], messages[3]["content"][0]
    created = {p["tool_call_id"]: p["created_at"] for p in assistant}
    assert add.pop("created_at") >= created["call_add"]
    assert fail.pop("created_at") >= created["call_fail"]
    assert add == {
        "type": "tool-result",
        "tool_call_id": "call_add",
        "tool_name": "add",
        "mcp_server": "tools",
        "result": "5",
    }
    assert fail == {
        "type": "tool-result",
        "tool_call_id": "call_fail",
        "tool_name": "fail",
        "mcp_server": "tools",
        "result": json.dumps({"error": "lookup backend unavailable"}, separators=(",", ":")),
        "is_error": True,
    }
    [action] = [e["data"]["action_required"] for e in events if e["event"] == "action_required"]
    assert action == {
        "tool_calls": [{"tool_call_id": "call_w1", "tool_name": "get_weather", "args": '{"city":"Paris"}'}]
    }
    # results were published as parts too, in call order
    results = [
        e["data"]["message_part"]["part"]["tool_call_id"]
        for e in events
        if e["event"] == "message_part" and e["data"]["message_part"]["role"] == "tool"
    ]
    assert results == ["call_add", "call_fail"]


def test_unreachable_mcp_server_offers_no_tools(
    gateway_factory: GatewayFactory, fake: FakeProviders, redis_url: str
) -> None:
    from tests.conftest import free_port

    dead = f"http://127.0.0.1:{free_port()}/mcp"
    gw = gateway_factory(base_config(fake, redis_url, chats={"mcp_servers": [{"name": "gone", "url": dead}]}))
    with client(gw) as c:
        r = c.post("", json={"model": "gpt-4o-mini", "message": "hi", "mcp_servers": ["gone"]})
        wait_status(c, r.json()["id"], "waiting")
    [sent] = fake.requests(path=CHAT)
    assert "tools" not in sent.body


def test_interrupt_while_a_builtin_tool_runs(
    gateway_factory: GatewayFactory, fake: FakeProviders, redis_url: str, mcp_url: str
) -> None:
    config = base_config(fake, redis_url, chats={"mcp_servers": [{"name": "tools", "url": mcp_url}]})
    gw = gateway_factory(config)
    fake.script([{"reply": {"tool_calls": [_call("slow", {"seconds": 30}, "call_slow")]}}])
    with client(gw) as c:
        r = c.post("", json={"model": "gpt-4o-mini", "message": "go", "mcp_servers": ["tools"]})
        assert r.status_code == 201, r.text
        chat_id = r.json()["id"]

        def complete_call(evs: list[dict[str, Any]]) -> bool:
            return any(
                e["event"] == "message_part" and e["data"]["message_part"]["part"].get("args") is not None
                for e in evs
            )

        read_events(c, chat_id, complete_call, last_event_id="0-0")
        gw.clock.advance(7)  # the tool has been running a while
        interrupted = c.post(f"/{chat_id}/interrupt").json()
        assert interrupted["status"] == "waiting"

        def persisted() -> list[dict[str, Any]] | None:
            ms: list[dict[str, Any]] = c.get(f"/{chat_id}/messages").json()["messages"]
            return ms if ms[-1]["role"] == "tool" else None

        messages = poll(persisted, what="the interrupted step")
        assert c.get(f"/{chat_id}").json()["status"] == "waiting"
    assert [m["role"] for m in messages] == ["user", "assistant", "tool"]
    [call] = messages[1]["content"]
    [result] = messages[2]["content"]
    assert (call["tool_call_id"], call["args"]) == ("call_slow", '{"seconds":30}')
    # The result is a synthetic error stamped with the interrupt time, after the call's.
    assert result == {
        "type": "tool-result",
        "tool_call_id": "call_slow",
        "tool_name": "slow",
        "mcp_server": "tools",
        "result": json.dumps(
            {"error": "tool call was interrupted before it produced a result"}, separators=(",", ":")
        ),
        "is_error": True,
        "created_at": interrupted["updated_at"],
    }
    assert call["created_at"] < result["created_at"]


def test_an_mcp_call_past_its_timeout_becomes_an_error_result(
    gateway_factory: GatewayFactory, fake: FakeProviders, redis_url: str, mcp_url: str
) -> None:
    """The server's timeout_seconds bounds the call on the gateway's clock: the test fires the
    timer instead of waiting, the model gets an error result and the turn goes on."""
    servers = [{"name": "tools", "url": mcp_url, "timeout_seconds": 20}]
    gw = gateway_factory(base_config(fake, redis_url, chats={"mcp_servers": servers}))
    fake.script(
        [
            {"reply": {"tool_calls": [_call("slow", {"seconds": 30}, "call_slow")]}},
            {"reply": {"text": "the tool was too slow"}},
        ]
    )
    with client(gw) as c:
        r = c.post("", json={"model": "gpt-4o-mini", "message": "go", "mcp_servers": ["tools"]})
        assert r.status_code == 201, r.text
        chat_id = r.json()["id"]

        def complete_call(evs: list[dict[str, Any]]) -> bool:
            return any(
                e["event"] == "message_part" and e["data"]["message_part"]["part"].get("args") is not None
                for e in evs
            )

        read_events(c, chat_id, complete_call, last_event_id="0-0")
        timer = gw.clock.fire("mcp_timeout")  # the call's deadline (the listing's was disarmed)
        assert timer.deadline - timer.armed_at == 20

        def answered() -> list[dict[str, Any]] | None:
            ms: list[dict[str, Any]] = c.get(f"/{chat_id}/messages").json()["messages"]
            return ms if ms[-1]["role"] == "assistant" and len(ms) == 4 else None

        messages = poll(answered, what="the step after the timed-out call")
    assert [m["role"] for m in messages] == ["user", "assistant", "tool", "assistant"]
    [result] = messages[2]["content"]
    assert result["tool_call_id"] == "call_slow"
    assert result["is_error"] is True
    assert json.loads(result["result"]) == {
        "error": "MCP server 'tools' did not answer the call of 'slow' within 20 s"
    }
    assert messages[3]["content"][0]["text"] == "the tool was too slow"
    sent = fake.requests(path="/openai/v1/chat/completions")[-1]
    tool_message = sent.body["messages"][-1]
    assert tool_message["role"] == "tool" and "did not answer the call" in tool_message["content"]
