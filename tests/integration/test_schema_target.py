"""`providers.schema_target`: an OpenAI-compatible provider in front of another model family gets
that family's tool-schema repair. Gemini's OpenAI endpoint (the fake's `/gemini/v1beta/openai`)
refuses `additionalProperties`, `$schema`, `$ref`/`$defs`, `const`, type arrays and `strict`
(api-semantics §5): with `schema_target = "gemini"` none of them reaches it, on Chat Completions,
on Responses (over its Chat API) and in chats' dynamic tools. The tests assert the literal tools
the fake received."""

from __future__ import annotations

from typing import Any

import pytest

from fake_providers.testing import FakeProviders
from tests.conftest import GatewayFactory, RunningGateway, base_config
from tests.integration.chats.helpers import client, poll

GEMINI_CHAT = "/gemini/v1beta/openai/chat/completions"
VLLM_CHAT = "/vllm/v1/chat/completions"
HELLO = [{"role": "user", "content": "Use the tool"}]

# What pydantic / zod emit for a model with an Optional URL, a timestamp, a Literal and a nested
# model, plus an MCP server's `required: null`.
SENT: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "properties": {
        "q": {"type": ["string", "null"], "format": "uri"},
        "when": {"type": "string", "format": "date-time"},
        "mode": {"const": "fast"},
        "item": {"$ref": "#/$defs/Item"},
        "note": {"anyOf": [{"type": "string"}, {"type": "null"}]},
    },
    "required": None,
    "additionalProperties": False,
    "$defs": {
        "Item": {
            "type": "object",
            "properties": {"n": {"type": "integer", "exclusiveMinimum": 0}},
            "required": ["n"],
            "additionalProperties": False,
        }
    },
}
# Gemini's subset: no $schema/additionalProperties/$defs, the $ref inlined, type arrays and null
# branches -> nullable, const -> a one-value enum, `uri` (not a Gemini format) dropped while
# `date-time` stays, exclusiveMinimum -> minimum (exact for integers).
GEMINI: dict[str, Any] = {
    "type": "object",
    "properties": {
        "q": {"type": "string", "nullable": True},
        "when": {"type": "string", "format": "date-time"},
        "mode": {"enum": ["fast"], "type": "string"},
        "item": {"type": "object", "properties": {"n": {"type": "integer", "minimum": 1}}, "required": ["n"]},
        "note": {"nullable": True, "type": "string"},
    },
}
# What a provider without `schema_target` (`openai-compatible`) gets: only structural repairs.
OPENAI_COMPATIBLE: dict[str, Any] = {
    **{k: v for k, v in SENT.items() if k != "required"},
    "properties": {
        **SENT["properties"],
        "q": {"anyOf": [{"type": "string", "format": "uri"}, {"type": "null"}]},
    },
}
GEMINI_FORBIDDEN = ("additionalProperties", "$schema", "$ref", "$defs", "const", "exclusiveMinimum", "strict")


def keys_anywhere(value: Any) -> set[str]:
    if isinstance(value, dict):
        return set(value) | {k for v in value.values() for k in keys_anywhere(v)}
    if isinstance(value, list):
        return {k for v in value for k in keys_anywhere(v)}
    return set()


def chat_tool(parameters: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {"name": "lookup", "description": "Look something up", "parameters": parameters, **extra},
    }


@pytest.fixture
def gw(gateway_factory: GatewayFactory, fake: FakeProviders, redis_url: str) -> RunningGateway:
    config = base_config(fake, redis_url)
    config["providers"] += [
        {
            "name": "gemini",
            "kind": "openai-compatible",
            "base_url": fake.base_url + "/gemini/v1beta/openai",
            "api_key": "g",
            "models_path": "",
            "schema_target": "gemini",
        },
        {
            # Anthropic's OpenAI SDK endpoint, played by the fake vLLM: Claude's schema rules.
            "name": "claude-compat",
            "kind": "openai-compatible",
            "base_url": fake.base_url + "/vllm/v1",
            "models_path": "",
            "schema_target": "anthropic",
        },
    ]
    config["models"] += [
        {"name": "gemini-flash", "provider": "gemini", "upstream_model": "gemini-2.5-flash"},
        {"name": "claude-compat", "provider": "claude-compat", "upstream_model": "claude-haiku-4-5"},
    ]
    return gateway_factory(config)


@pytest.mark.parametrize("strict", [False, True], ids=["plain", "strict"])
def test_chat_completions_tools_get_the_gemini_repair(
    gw: RunningGateway, fake: FakeProviders, strict: bool
) -> None:
    extra = {"strict": True} if strict else {}
    reply = gw.openai().chat.completions.create(
        model="gemini-flash",
        messages=HELLO,
        tools=[chat_tool(SENT, **extra)],
        tool_choice={"type": "function", "function": {"name": "lookup"}},
    )
    assert reply.choices[0].finish_reason == "tool_calls"
    [entry] = fake.requests(path=GEMINI_CHAT)
    # `strict` is gone too: Gemini has no strict mode and refuses the field.
    assert entry.body["tools"] == [chat_tool(GEMINI)]
    assert not keys_anywhere(entry.body["tools"]) & set(GEMINI_FORBIDDEN)


def test_without_schema_target_the_kind_decides(gateway: RunningGateway, fake: FakeProviders) -> None:
    """The other side of the switch: an `openai-compatible` provider without `schema_target` gets
    only the structural repair, with everything Gemini would refuse still in it."""
    gateway.openai().chat.completions.create(model="llama", messages=HELLO, tools=[chat_tool(SENT)])
    [entry] = fake.requests(path=VLLM_CHAT)
    assert entry.body["tools"] == [chat_tool(OPENAI_COMPATIBLE)]
    assert keys_anywhere(entry.body["tools"]) >= {"additionalProperties", "$schema", "$ref", "$defs", "const"}


def test_responses_over_a_gemini_chat_upstream(gw: RunningGateway, fake: FakeProviders) -> None:
    tools = [
        {"type": "function", "name": "lookup", "parameters": SENT},
        {"type": "function", "name": "strict_lookup", "parameters": SENT, "strict": True},
    ]
    answer = gw.openai().responses.create(
        model="gemini-flash",
        input="Use the tool",
        tools=tools,
        tool_choice={"type": "function", "name": "lookup"},
    )
    assert answer.status == "completed"
    assert answer.output[0].type == "function_call"
    [entry] = fake.requests(path=GEMINI_CHAT)
    assert entry.body["tools"] == [
        {"type": "function", "function": {"name": "lookup", "parameters": GEMINI}},
        {"type": "function", "function": {"name": "strict_lookup", "parameters": GEMINI}},
    ]
    # the client's own tools are echoed back untouched
    assert [t.model_dump(exclude_none=True)["parameters"] for t in answer.tools] == [SENT, SENT]


def test_chats_dynamic_tools_get_the_gemini_repair(gw: RunningGateway, fake: FakeProviders) -> None:
    # A dynamic tool contributes only `properties` and `required` (chatd spec §5.3).
    schema = {"type": "object", "properties": SENT["properties"] | {"item": GEMINI["properties"]["item"]}}
    with client(gw) as c:
        created = c.post(
            "",
            json={
                "model": "gemini-flash",
                "message": "Look it up",
                "dynamic_tools": [{"name": "lookup", "input_schema": schema}],
            },
        )
    assert created.status_code == 201, created.text
    entry = poll(lambda: next(iter(fake.requests(path=GEMINI_CHAT)), None), what="the step's request")
    assert entry.body["tools"] == [{"type": "function", "function": {"name": "lookup", "parameters": GEMINI}}]


def test_anthropic_target_on_an_openai_compatible_provider(gw: RunningGateway, fake: FakeProviders) -> None:
    """Anthropic's OpenAI endpoint: a top-level `anyOf` (which Claude refuses) is merged into one
    object; a type array, valid draft 2020-12, is kept as it came (the `openai-compatible` repair
    rewrites it as an `anyOf`)."""
    root_any_of = {
        "anyOf": [
            {"type": "object", "properties": {"id": {"type": "string"}}},
            {"type": "object", "properties": {"name": {"type": "string"}}},
        ]
    }
    kept = {"type": "object", "properties": {"v": {"type": ["string", "null"]}}}
    tools = [chat_tool(root_any_of), {"type": "function", "function": {"name": "other", "parameters": kept}}]
    gw.openai().chat.completions.create(model="claude-compat", messages=HELLO, tools=tools)
    [entry] = fake.requests(path=VLLM_CHAT)
    assert entry.body["tools"] == [
        chat_tool({"type": "object", "properties": {"id": {}, "name": {}}}),
        {"type": "function", "function": {"name": "other", "parameters": kept}},
    ]
