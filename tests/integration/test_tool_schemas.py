"""Broken tool schemas that MCP servers and client libraries really send: repaired on the way
through the gateway, accepted by the fake providers' validators (OpenAI non-strict, OpenAI strict,
Anthropic), and received upstream exactly as the tables below say."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from fake_providers.testing import FakeProviders
from fake_providers.validation import anthropic_input_schema_error, openai_tool_schema_error
from gateway.testing import add_anthropic
from tests.conftest import GATEWAY_KEY, GatewayFactory, RunningGateway, base_config

HELLO = [{"role": "user", "content": "Use the tool"}]
MESSAGES_PATH = "/anthropic/v1/messages"
CHAT_PATH = "/openai/v1/chat/completions"
RESPONSES_PATH = "/openai/v1/responses"

Q = {"type": "string"}
Q_NULLABLE = {"anyOf": [{"type": "string"}, {"type": "null"}]}

# Each shape was seen in the wild (see tests/unit/schema/test_repair_cases.py for where):
# shape -> (what the client sends, what OpenAI gets, what OpenAI strict gets, what Anthropic gets).
# A strict schema of None means strict mode cannot express it: the tool goes out non-strict with
# the OpenAI repair.
CASES: dict[str, tuple[dict[str, Any], dict[str, Any], dict[str, Any] | None, dict[str, Any]]] = {
    "required_null": (  # yomo PR #860, coai#110
        {"type": "object", "properties": {"q": Q}, "required": None},
        {"type": "object", "properties": {"q": Q}},
        {"type": "object", "properties": {"q": Q_NULLABLE}, "additionalProperties": False, "required": ["q"]},
        {"type": "object", "properties": {"q": Q}},
    ),
    "required_object": (  # MCP servers serialising an empty Go map / JS object
        {"type": "object", "properties": {"q": Q}, "required": {}},
        {"type": "object", "properties": {"q": Q}},
        {"type": "object", "properties": {"q": Q_NULLABLE}, "additionalProperties": False, "required": ["q"]},
        {"type": "object", "properties": {"q": Q}},
    ),
    "properties_null": (  # tools without arguments from MCP servers
        {"type": "object", "properties": None},
        {"type": "object", "properties": {}},
        {"type": "object", "properties": {}, "additionalProperties": False},
        {"type": "object", "properties": {}},
    ),
    "typeless_root": (  # stagehand#1159
        {"properties": {"q": Q}},
        {"type": "object", "properties": {"q": Q}},
        {"type": "object", "properties": {"q": Q_NULLABLE}, "additionalProperties": False, "required": ["q"]},
        {"type": "object", "properties": {"q": Q}},
    ),
    "type_array": (  # zed#53919 (and every pydantic Optional)
        {"type": "object", "properties": {"v": {"type": ["string", "null"]}}},
        {"type": "object", "properties": {"v": Q_NULLABLE}},
        {"type": "object", "properties": {"v": Q_NULLABLE}, "additionalProperties": False, "required": ["v"]},
        {"type": "object", "properties": {"v": {"type": ["string", "null"]}}},  # valid 2020-12: kept
    ),
    "array_without_items": (  # sigoden/aichat PR #1049
        {"type": "object", "properties": {"tags": {"type": "array"}}},
        {"type": "object", "properties": {"tags": {"type": "array", "items": {}}}},
        None,  # items of any type: strict mode has no way to say it
        {"type": "object", "properties": {"tags": {"type": "array"}}},  # valid 2020-12: kept
    ),
    "required_names_absent": (  # MCP servers listing a removed parameter
        {"type": "object", "properties": {"a": Q}, "required": ["a", "b"]},
        {"type": "object", "properties": {"a": Q}, "required": ["a"]},
        {"type": "object", "properties": {"a": Q}, "required": ["a"], "additionalProperties": False},
        {"type": "object", "properties": {"a": Q}, "required": ["a", "b"]},  # valid 2020-12: kept
    ),
    "nested_required_null": (  # the same bug one level down, in array items
        {
            "type": "object",
            "properties": {
                "rows": {
                    "type": "array",
                    "items": {"type": "object", "properties": {"k": Q}, "required": None},
                }
            },
        },
        {
            "type": "object",
            "properties": {"rows": {"type": "array", "items": {"type": "object", "properties": {"k": Q}}}},
        },
        {
            "type": "object",
            "properties": {
                "rows": {
                    "anyOf": [
                        {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "properties": {"k": Q_NULLABLE},
                                "additionalProperties": False,
                                "required": ["k"],
                            },
                        },
                        {"type": "null"},
                    ]
                }
            },
            "additionalProperties": False,
            "required": ["rows"],
        },
        {
            "type": "object",
            "properties": {"rows": {"type": "array", "items": {"type": "object", "properties": {"k": Q}}}},
        },
    ),
    "root_any_of": (  # pydantic Union models as the whole argument (Anthropic refuses a top-level anyOf)
        {
            "anyOf": [
                {"type": "object", "properties": {"id": Q}},
                {"type": "object", "properties": {"name": Q}},
            ]
        },
        {
            "type": "object",
            "anyOf": [
                {"type": "object", "properties": {"id": Q}},
                {"type": "object", "properties": {"name": Q}},
            ],
            "properties": {},
        },
        None,
        # merged into one object; each branch allows the other's property with any value
        {"type": "object", "properties": {"id": {}, "name": {}}},
    ),
}


def chat_tool(parameters: dict[str, Any], *, strict: bool = False) -> dict[str, Any]:
    function: dict[str, Any] = {
        "name": "lookup",
        "description": "Look something up",
        "parameters": parameters,
    }
    if strict:
        function["strict"] = True
    return {"type": "function", "function": function}


FORCE = {"type": "function", "function": {"name": "lookup"}}


@pytest.mark.parametrize("shape", list(CASES))
def test_openai_gets_the_structural_repair(gateway: RunningGateway, fake: FakeProviders, shape: str) -> None:
    schema, openai_schema, _, _ = CASES[shape]
    reply = gateway.openai().chat.completions.create(
        model="gpt-4o-mini", messages=HELLO, tools=[chat_tool(schema)], tool_choice=FORCE
    )
    assert reply.choices[0].finish_reason == "tool_calls"  # the fake's validator accepted it
    [sent] = fake.requests(path=CHAT_PATH)[-1].body["tools"]
    assert sent == chat_tool(openai_schema)


@pytest.mark.parametrize("shape", list(CASES))
def test_openai_strict_gets_the_strict_repair_or_a_non_strict_tool(
    gateway: RunningGateway, fake: FakeProviders, shape: str
) -> None:
    schema, openai_schema, strict_schema, _ = CASES[shape]
    reply = gateway.openai().chat.completions.create(
        model="gpt-4o-mini", messages=HELLO, tools=[chat_tool(schema, strict=True)], tool_choice=FORCE
    )
    assert reply.choices[0].finish_reason == "tool_calls"
    [sent] = fake.requests(path=CHAT_PATH)[-1].body["tools"]
    if strict_schema is None:
        assert sent["function"] == {**chat_tool(openai_schema)["function"], "strict": False}
    else:
        assert sent == chat_tool(strict_schema, strict=True)
        assert openai_tool_schema_error(strict_schema, strict=True) is None


@pytest.fixture
def claude(gateway_factory: GatewayFactory, fake: FakeProviders, redis_url: str) -> RunningGateway:
    return gateway_factory(add_anthropic(base_config(fake, redis_url), fake, api_key="k"))


@pytest.mark.parametrize("shape", list(CASES))
@pytest.mark.parametrize("strict", [False, True], ids=["plain", "strict"])
def test_anthropic_gets_an_object_root_and_valid_2020_12(
    claude: RunningGateway, fake: FakeProviders, shape: str, strict: bool
) -> None:
    schema, _, _, anthropic_schema = CASES[shape]
    reply = claude.openai().chat.completions.create(
        model="claude", messages=HELLO, tools=[chat_tool(schema, strict=strict)], tool_choice=FORCE
    )
    assert reply.choices[0].finish_reason == "tool_calls"  # the fake Anthropic accepted it
    [sent] = fake.requests(path=MESSAGES_PATH)[-1].body["tools"]
    assert sent["input_schema"] == anthropic_schema
    assert anthropic_input_schema_error(anthropic_schema) is None


@pytest.mark.parametrize("shape", ["required_null", "properties_null", "type_array", "array_without_items"])
def test_the_fake_refuses_the_same_schema_sent_directly(fake: FakeProviders, shape: str) -> None:
    """Proof that the tests above can fail: without the repair, the provider says 400."""
    response = httpx.post(
        fake.openai_base_url + "/chat/completions",
        json={"model": "gpt-4o-mini", "messages": HELLO, "tools": [chat_tool(CASES[shape][0], strict=True)]},
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_function_parameters"


@pytest.mark.parametrize("shape", ["required_null", "typeless_root", "root_any_of"])
def test_anthropic_refuses_the_same_schema_sent_directly(fake: FakeProviders, shape: str) -> None:
    response = httpx.post(
        fake.anthropic_base_url + "/v1/messages",
        headers={"x-api-key": "k", "anthropic-version": "2023-06-01"},
        json={
            "model": "claude-haiku-4-5",
            "max_tokens": 10,
            "messages": HELLO,
            "tools": [{"name": "lookup", "input_schema": CASES[shape][0]}],
        },
    )
    assert response.status_code == 400
    assert response.json()["error"]["message"].startswith("tools.0.custom.input_schema")


def test_valid_tools_are_forwarded_untouched(gateway: RunningGateway, fake: FakeProviders) -> None:
    schema = {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]}
    gateway.openai().chat.completions.create(model="gpt-4o-mini", messages=HELLO, tools=[chat_tool(schema)])
    assert fake.requests(path=CHAT_PATH)[-1].body["tools"] == [chat_tool(schema)]


def responses_tool(parameters: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"type": "function", "name": "lookup", "parameters": parameters, **extra}


@pytest.fixture
def responses_gw(gateway_factory: GatewayFactory, fake: FakeProviders, redis_url: str) -> RunningGateway:
    config = base_config(fake, redis_url)
    config["models"].append(
        {"name": "resp-model", "provider": "fake-openai", "upstream_model": "gpt-4o-mini", "api": "responses"}
    )
    return gateway_factory(config)


def test_responses_tools_without_strict(responses_gw: RunningGateway, fake: FakeProviders) -> None:
    """OpenAI normalizes a Responses tool without `strict` into strict mode. A schema strict mode can
    express travels with only the structural repair (OpenAI tightens it); one it cannot gets
    `strict: false`, so OpenAI neither refuses nor tightens it."""
    expressible, openai_expressible, _, _ = CASES["required_null"]
    inexpressible, openai_inexpressible, _, _ = CASES["array_without_items"]
    valid = {"type": "object", "properties": {"q": Q}, "required": ["q"]}
    answer = responses_gw.openai().responses.create(
        model="resp-model",
        input="Use the tool",
        tools=[responses_tool(expressible), responses_tool(inexpressible), responses_tool(valid)],
    )
    assert answer.status == "completed"
    [entry] = fake.requests(path=RESPONSES_PATH)
    assert entry.body["tools"] == [
        responses_tool(openai_expressible),
        responses_tool(openai_inexpressible, strict=False),
        responses_tool(valid),  # untouched: byte for byte what the client sent
    ]
    assert entry.headers["authorization"] == "Bearer sk-upstream-openai"


def test_gateway_key_is_not_what_the_upstream_gets(responses_gw: RunningGateway, fake: FakeProviders) -> None:
    responses_gw.openai().responses.create(model="resp-model", input="hi")
    assert GATEWAY_KEY not in str(fake.requests(path=RESPONSES_PATH)[-1].headers)
