"""`repair_chat_tools` / `repair_responses_tools` per provider target: what happens to `strict`.

OpenAI's targets have strict mode; Anthropic's OpenAI endpoint ignores `strict` (so its schema gets
Anthropic's repair and the flag travels as it came); Gemini refuses the field, so it is removed."""

from __future__ import annotations

from typing import Any

from gateway.config import SchemaTarget
from gateway.schema_fix import Target, repair_schema
from gateway.upstream.tool_schemas import repair_chat_tools, repair_responses_tools

OPTIONAL = {"type": "object", "properties": {"q": {"type": ["string", "null"]}}}
FREE_FORM = {"type": "object", "properties": {"tags": {"type": "array"}}}  # strict cannot express it


def chat(parameters: Any, **extra: Any) -> list[dict[str, Any]]:
    return [{"type": "function", "function": {"name": "f", "parameters": parameters, **extra}}]


def test_openai_targets_keep_strict_mode() -> None:
    for target in (SchemaTarget.OPENAI, SchemaTarget.OPENAI_COMPATIBLE):
        [tool] = repair_chat_tools(chat(OPTIONAL, strict=True), target)
        assert tool["function"] == {
            "name": "f",
            "parameters": repair_schema(OPTIONAL, Target.OPENAI_STRICT).schema,
            "strict": True,
        }


def test_anthropic_target_repairs_for_anthropic_and_leaves_strict_alone() -> None:
    tools = chat(OPTIONAL, strict=True)
    assert repair_chat_tools(tools, SchemaTarget.ANTHROPIC) is tools  # valid 2020-12: untouched
    [tool] = repair_chat_tools(chat({"anyOf": [OPTIONAL]}, strict=True), SchemaTarget.ANTHROPIC)
    assert tool["function"] == {"name": "f", "parameters": OPTIONAL, "strict": True}


def test_gemini_target_removes_strict_even_without_parameters() -> None:
    [tool] = repair_chat_tools(chat(OPTIONAL, strict=True), SchemaTarget.GEMINI)
    assert tool["function"] == {
        "name": "f",
        "parameters": {"type": "object", "properties": {"q": {"type": "string", "nullable": True}}},
    }
    [bare] = repair_chat_tools(
        [{"type": "function", "function": {"name": "g", "strict": False}}], SchemaTarget.GEMINI
    )
    assert bare == {"type": "function", "function": {"name": "g"}}


def test_responses_strict_default_only_where_strict_mode_exists() -> None:
    """A Responses tool without `strict` is strict on OpenAI: one strict mode cannot express gets
    `strict: false`. Providers without strict mode get no such flag."""
    tools = [{"type": "function", "name": "f", "parameters": FREE_FORM}]
    [openai] = repair_responses_tools(tools, SchemaTarget.OPENAI)
    assert openai["strict"] is False
    [anthropic] = repair_responses_tools(tools, SchemaTarget.ANTHROPIC)
    assert anthropic is tools[0]  # an array without `items` is valid 2020-12
    [gemini] = repair_responses_tools(tools, SchemaTarget.GEMINI)
    assert gemini == {
        "type": "function",
        "name": "f",
        # Gemini needs `items`; the gemini pass gives arrays of strings
        "parameters": {
            "type": "object",
            "properties": {"tags": {"type": "array", "items": {"type": "string"}}},
        },
    }
    assert "strict" not in gemini
