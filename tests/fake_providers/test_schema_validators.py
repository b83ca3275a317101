"""The two public schema validators: OpenAI's function parameters and Anthropic's input_schema."""

from __future__ import annotations

from typing import Any

import pytest

from fake_providers.validation import anthropic_input_schema_error, openai_tool_schema_error

OBJ = {"type": "object", "properties": {}}

OPENAI_ANY_MODE: list[tuple[Any, str | None]] = [
    (None, None),
    (OBJ, None),
    ({"type": "object"}, None),
    ({"type": "object", "properties": {"a": {"type": "string", "minLength": 1}}, "required": ["a"]}, None),
    ({"type": "object", "required": None}, "None is not of type 'array'."),
    ({"type": "object", "required": True}, "True is not of type 'array'."),
    ({"type": "object", "required": [1]}, "1 is not of type 'string'."),
    ({"type": "object", "required": ["a", "a"]}, "['a', 'a'] has non-unique elements."),
    ({"type": "object", "properties": []}, "[] is not of type 'object'."),
    ({"type": "object", "properties": {"a": []}}, "[] is not of type 'object', 'boolean'."),
    ({"type": "object", "additionalProperties": []}, "[] is not of type 'object', 'boolean'."),
    (
        {"type": "object", "properties": {"a": {"type": "strng"}}},
        "'strng' is not valid under any of the given schemas.",
    ),
    ({"type": "object", "properties": {"a": {"anyOf": []}}}, "[] should be non-empty."),
    (
        {"type": "object", "properties": {"a": {"type": "integer", "minimum": "1"}}},
        "'1' is not of type 'number'.",
    ),
    (
        {"type": "object", "properties": {"a": {"type": "string", "maxLength": -1}}},
        "-1 is less than the minimum of 0.",
    ),
    ({"properties": {}}, "schema must be a JSON Schema of 'type: \"object\"', got 'type: \"None\"'."),
    (
        {"type": "array", "items": {}},
        "schema must be a JSON Schema of 'type: \"object\"', got 'type: \"array\"'.",
    ),
    (True, "schema must be a JSON Schema of 'type: \"object\"', got 'type: \"None\"'."),
    ([], "[] is not of type 'object', 'boolean'."),
    (
        {"type": "object", "properties": {"paths": {"type": "array"}}},
        "In context=('properties', 'paths'), array schema missing items.",
    ),
    (
        {"type": "object", "properties": {"a": {"anyOf": [{"type": "string"}, {"type": ["array", "null"]}]}}},
        "In context=('properties', 'a', 'anyOf', 1), array schema missing items.",
    ),
]


@pytest.mark.parametrize(("schema", "expected"), OPENAI_ANY_MODE)
def test_openai_checks_without_strict(schema: Any, expected: str | None) -> None:
    assert openai_tool_schema_error(schema, strict=False) == expected


@pytest.mark.parametrize(("schema", "expected"), [case for case in OPENAI_ANY_MODE if case[1] is not None])
def test_structural_errors_come_first_in_strict_mode(schema: Any, expected: str) -> None:
    assert openai_tool_schema_error(schema, strict=True) == expected


def strict_object(properties: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
        **extra,
    }


OPENAI_STRICT: list[tuple[Any, str | None]] = [
    (strict_object({}), None),
    (
        strict_object(
            {"a": {"type": ["string", "null"]}, "b": {"anyOf": [{"type": "integer"}, {"type": "null"}]}}
        ),
        None,
    ),
    (
        strict_object(
            {"e": {"enum": ["x", "y"]}, "r": {"$ref": "#/$defs/node"}},
            **{"$defs": {"node": strict_object({})}},
        ),
        None,
    ),
    ({"type": "object"}, "In context=(), object schema missing properties."),
    (
        {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]},
        "In context=(), 'additionalProperties' is required to be supplied and to be false.",
    ),
    (
        {
            "type": "object",
            "properties": {"a": {"type": "string"}},
            "additionalProperties": True,
            "required": ["a"],
        },
        "In context=(), 'additionalProperties' is required to be supplied and to be false.",
    ),
    (
        {
            "type": "object",
            "properties": {"a": {"type": "string"}, "b": {"type": "string"}},
            "additionalProperties": False,
        },
        "In context=(), 'required' is required to be supplied and to be an array including every key in properties. "
        "Missing 'a', 'b'.",
    ),
    (
        strict_object(
            {
                "permissions": {
                    "type": "object",
                    "properties": {"read": {"type": "boolean"}},
                    "required": ["read"],
                }
            }
        ),
        "In context=('properties', 'permissions'), 'additionalProperties' is required to be supplied and to be false.",
    ),
    (
        strict_object({"items": {"type": "array", "items": {}}}),
        "In context=('properties', 'items', 'items'), schema must have a 'type' key.",
    ),
    (
        strict_object({"name": {"type": "string", "minLength": 1}}),
        "In context=('properties', 'name'), 'minLength' is not permitted.",
    ),
    (
        strict_object({"a": {"allOf": [{"type": "string"}]}}),
        "In context=('properties', 'a'), 'allOf' is not permitted.",
    ),
    (strict_object({}, anyOf=[strict_object({})]), "In context=(), 'anyOf' is not permitted at the root."),
    (
        strict_object({"a": {"anyOf": [{"type": "object", "properties": {}}]}}),
        "In context=('properties', 'a', 'anyOf', 0), 'additionalProperties' is required to be supplied and to be false.",
    ),
    (
        strict_object({"e": {"type": "string", "enum": [f"v{i}" for i in range(1001)]}}),
        "Schema has 1001 enum values in total, more than the limit of 1000.",
    ),
]


@pytest.mark.parametrize(("schema", "expected"), OPENAI_STRICT)
def test_openai_strict_mode(schema: Any, expected: str | None) -> None:
    assert openai_tool_schema_error(schema, strict=True) == expected


def test_strict_rules_do_not_apply_without_strict() -> None:
    assert (
        openai_tool_schema_error({"type": "object", "properties": {"a": {"type": "string"}}}, strict=False)
        is None
    )


def test_strict_nesting_limit() -> None:
    schema = strict_object({})
    for _ in range(10):
        schema = strict_object({"n": schema})
    assert (
        openai_tool_schema_error(schema, strict=True)
        == "Schema nests objects 11 levels deep, more than the limit of 10."
    )


INVALID = (
    "input_schema: JSON schema is invalid. It must match JSON Schema draft 2020-12 "
    "(https://json-schema.org/draft/2020-12). Learn more about tool use at https://docs.claude.com/en/docs/tool-use."
)

ANTHROPIC: list[tuple[Any, str | None]] = [
    ({"type": "object"}, None),
    ({"type": "object", "properties": {"a": {"type": "string", "minLength": 1}}, "required": ["a"]}, None),
    ({"type": "object", "properties": {"a": {"oneOf": [{"type": "string"}, {"type": "integer"}]}}}, None),
    ([], "input_schema: Input should be a valid dictionary"),
    ({"properties": {}}, "input_schema.type: Field required"),
    ({"type": "array"}, "input_schema.type: Input should be 'object'"),
    (
        {"type": "object", "anyOf": [{"required": ["a"]}]},
        "input_schema: input_schema does not support oneOf, allOf, or anyOf at the top level",
    ),
    ({"type": "object", "required": None}, INVALID),
    ({"type": "object", "required": ["a", "a"]}, INVALID),
    ({"type": "object", "properties": {"n": {"type": "number", "minimum": "0"}}}, INVALID),
]


@pytest.mark.parametrize(("schema", "expected"), ANTHROPIC)
def test_anthropic_input_schema(schema: Any, expected: str | None) -> None:
    assert anthropic_input_schema_error(schema) == expected
