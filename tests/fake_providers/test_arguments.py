"""Generated tool arguments validate against their schema and are deterministic."""

from __future__ import annotations

from typing import Any

import pytest

from fake_providers.arguments import example_for_schema

CASES: list[tuple[Any, Any]] = [
    (None, {}),
    ({"type": "object", "properties": {}}, {}),
    (
        {
            "type": "object",
            "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
            "required": ["city"],
        },
        {"city": "example"},
    ),
    (
        {"type": "object", "properties": {"a": {"type": "boolean"}, "b": {"type": "null"}}},
        {"a": True, "b": None},
    ),
    ({"type": "object", "properties": {"u": {"enum": ["f", "c"]}, "k": {"const": 3}}}, {"u": "f", "k": 3}),
    ({"type": "object", "properties": {"n": {"type": ["null", "number"], "minimum": 2.5}}}, {"n": 2.5}),
    (
        {"type": "object", "properties": {"n": {"type": "integer", "exclusiveMinimum": 5, "multipleOf": 4}}},
        {"n": 8},
    ),
    ({"type": "object", "properties": {"n": {"type": "integer", "maximum": -3}}}, {"n": -3}),
    (
        {"type": "object", "properties": {"s": {"type": "string", "minLength": 10, "maxLength": 12}}},
        {"s": "examplexxx"},
    ),
    ({"type": "object", "properties": {"s": {"type": "string", "maxLength": 3}}}, {"s": "exa"}),
    (
        {
            "type": "object",
            "properties": {
                "d": {"type": "string", "format": "date-time"},
                "e": {"type": "string", "format": "email"},
            },
        },
        {"d": "2025-01-01T00:00:00Z", "e": "user@example.com"},
    ),
    (
        {"type": "object", "properties": {"tags": {"type": "array", "items": {"type": "string"}}}},
        {"tags": ["example"]},
    ),
    (
        {
            "type": "object",
            "properties": {
                "tags": {
                    "type": "array",
                    "items": {"enum": ["a", "b", "c"]},
                    "minItems": 2,
                    "uniqueItems": True,
                }
            },
        },
        {"tags": ["a", "b"]},
    ),
    ({"type": "object", "properties": {"none": {"type": "array", "items": {}, "maxItems": 0}}}, {"none": []}),
    (
        {
            "type": "object",
            "properties": {
                "v": {
                    "anyOf": [{"type": "null"}, {"type": "object", "properties": {"x": {"type": "integer"}}}]
                }
            },
        },
        {"v": {"x": 1}},
    ),
    (
        {
            "type": "object",
            "properties": {
                "m": {
                    "allOf": [
                        {"properties": {"a": {"type": "string"}}, "required": ["a"]},
                        {"properties": {"b": {"type": "integer"}}, "required": ["b"]},
                    ]
                }
            },
        },
        {"m": {"a": "example", "b": 1}},
    ),
    (
        {
            "type": "object",
            "properties": {"p": {"$ref": "#/$defs/point"}},
            "$defs": {"point": {"type": "object", "properties": {"x": {"type": "number"}}}},
        },
        {"p": {"x": 1.0}},
    ),
    ({"properties": {"untyped": {}}}, {"untyped": "example"}),
]


@pytest.mark.parametrize(("schema", "expected"), CASES)
def test_example_for_schema(schema: Any, expected: Any) -> None:
    assert example_for_schema(schema) == expected
    assert example_for_schema(schema) == example_for_schema(schema)


def test_recursive_schemas_terminate() -> None:
    tree = {
        "type": "object",
        "properties": {"value": {"type": "integer"}, "children": {"type": "array", "items": {"$ref": "#"}}},
        "required": ["value", "children"],
    }
    value = example_for_schema(tree)
    depth = 0
    while value["children"]:
        value = value["children"][0]
        depth += 1
    assert 1 < depth < 10
