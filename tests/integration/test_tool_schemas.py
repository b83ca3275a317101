"""Broken tool schemas that MCP servers and client libraries really send: repaired on the way
through the gateway, accepted by the fake providers' validators, exactly as repaired."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from fake_providers.testing import FakeProviders
from gateway.schema_fix import Target, repair_schema
from tests.conftest import RunningGateway

HELLO = [{"role": "user", "content": "Use the tool"}]

# Each shape was seen in the wild; see tests/unit/schema for where.
BROKEN: dict[str, dict[str, Any]] = {
    "required_null": {"type": "object", "properties": {"q": {"type": "string"}}, "required": None},
    "properties_null": {"type": "object", "properties": None},
    "typeless_root": {"properties": {"q": {"type": "string"}}},
    "type_array": {"type": "object", "properties": {"v": {"type": ["string", "null"]}}},
    "array_without_items": {"type": "object", "properties": {"tags": {"type": "array"}}},
    "required_names_absent": {
        "type": "object",
        "properties": {"a": {"type": "string"}},
        "required": ["a", "b"],
    },
}


def tool(parameters: dict[str, Any], *, strict: bool = False) -> dict[str, Any]:
    function: dict[str, Any] = {
        "name": "lookup",
        "description": "Look something up",
        "parameters": parameters,
    }
    if strict:
        function["strict"] = True
    return {"type": "function", "function": function}


@pytest.mark.parametrize("shape", list(BROKEN))
@pytest.mark.parametrize("strict", [False, True], ids=["plain", "strict"])
def test_broken_schema_is_repaired_and_accepted(
    gateway: RunningGateway, fake: FakeProviders, shape: str, strict: bool
) -> None:
    schema = BROKEN[shape]
    reply = gateway.openai().chat.completions.create(
        model="gpt-4o-mini",
        messages=HELLO,
        tools=[tool(schema, strict=strict)],
        tool_choice={"type": "function", "function": {"name": "lookup"}},
    )
    assert reply.choices[0].finish_reason == "tool_calls"
    sent = fake.requests(path="/openai/v1/chat/completions")[-1].body["tools"][0]["function"]
    result = repair_schema(schema, Target.OPENAI_STRICT if strict else Target.OPENAI)
    assert sent["parameters"] == result.schema
    assert sent.get("strict", False) is (strict and result.strict_ok)


@pytest.mark.parametrize("shape", ["required_null", "properties_null", "type_array", "array_without_items"])
def test_the_fake_refuses_the_same_schema_sent_directly(fake: FakeProviders, shape: str) -> None:
    """Proof that the test above can fail: without the repair, the provider says 400."""
    response = httpx.post(
        fake.openai_base_url + "/chat/completions",
        json={"model": "gpt-4o-mini", "messages": HELLO, "tools": [tool(BROKEN[shape], strict=True)]},
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_function_parameters"


def test_valid_tools_are_forwarded_untouched(gateway: RunningGateway, fake: FakeProviders) -> None:
    schema = {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]}
    gateway.openai().chat.completions.create(model="gpt-4o-mini", messages=HELLO, tools=[tool(schema)])
    assert fake.requests(path="/openai/v1/chat/completions")[-1].body["tools"] == [tool(schema)]
