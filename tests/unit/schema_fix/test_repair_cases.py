"""Real-world broken tool schemas and what each target makes of them (exact outputs).

Each case names where the shape was seen. "Err:" quotes the provider error it caused.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from gateway.schema_fix import RepairResult, Target, repair_schema, repair_tool_parameters

OPENAI = Target.OPENAI
STRICT = Target.OPENAI_STRICT
ANTHROPIC = Target.ANTHROPIC
GEMINI = Target.GEMINI
COMPAT = Target.OPENAI_COMPATIBLE

STRING = {"type": "string"}
NULL = {"type": "null"}


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [schema, NULL]}


def repair(schema: Any, target: Target) -> RepairResult:
    before = json.dumps(schema)
    result = repair_schema(schema, target)
    assert json.dumps(schema) == before, "input mutated"
    again = repair_schema(result.schema, target)
    assert again.schema is result.schema, "not idempotent"
    return result


# --- MCP servers ------------------------------------------------------------------------

# coder/coder PR #23538: MCP tools with no required list serialized by
# Go as `"required": null`. Err (yomorun/yomo PR #860, coaidev/coai#110):
# "Invalid schema for function 'ai-sfn': None is not of type 'array'."
REQUIRED_NULL = {
    "type": "object",
    "properties": {"path": {"type": "string", "description": "File path"}},
    "required": None,
}

# coder/coder PR #27252: zero-argument MCP tools with `"properties": null`.
PROPERTIES_NULL = {"type": "object", "properties": None}


@pytest.mark.parametrize("target", [OPENAI, COMPAT, ANTHROPIC, GEMINI])
def test_required_null_is_dropped(target: Target) -> None:
    result = repair(REQUIRED_NULL, target)
    assert result.schema == {
        "type": "object",
        "properties": {"path": {"type": "string", "description": "File path"}},
    }
    assert result.changed
    assert result.notes == ("#: required: null removed",)


def test_required_null_strict_makes_the_property_required_and_nullable() -> None:
    result = repair(REQUIRED_NULL, STRICT)
    assert result.strict_ok
    assert result.schema == {
        "type": "object",
        "properties": {"path": {"anyOf": [STRING, NULL], "description": "File path"}},
        "additionalProperties": False,
        "required": ["path"],
    }
    assert result.notes == (
        "#: required: null removed",
        "#: additionalProperties: false added",
        "#: optional properties made required and nullable: path",
    )


@pytest.mark.parametrize("target", [OPENAI, COMPAT, ANTHROPIC, GEMINI])
def test_properties_null_becomes_empty_object(target: Target) -> None:
    assert repair(PROPERTIES_NULL, target).schema == {"type": "object", "properties": {}}


def test_properties_null_strict() -> None:
    result = repair(PROPERTIES_NULL, STRICT)
    assert result.schema == {"type": "object", "properties": {}, "additionalProperties": False}
    assert result.strict_ok


def test_required_other_non_lists() -> None:
    # CherryHQ/cherry-studio#4188. Err: "Invalid schema for function 'x': True is not of type 'array'."
    assert repair({"type": "object", "properties": {"q": STRING}, "required": True}, OPENAI).schema == {
        "type": "object",
        "properties": {"q": STRING},
    }
    assert repair({"type": "object", "properties": {"q": STRING}, "required": {}}, ANTHROPIC).schema == {
        "type": "object",
        "properties": {"q": STRING},
    }
    # Duplicates and non-strings are not valid draft 2020-12 either.
    assert repair(
        {"type": "object", "properties": {"q": STRING}, "required": ["q", "q", 3]}, ANTHROPIC
    ).schema == {
        "type": "object",
        "properties": {"q": STRING},
        "required": ["q"],
    }


def test_draft3_required_true_moves_to_the_parent() -> None:
    schema = {
        "type": "object",
        "properties": {"q": {"type": "string", "required": True}, "n": {"type": "integer"}},
    }
    result = repair(schema, OPENAI)
    assert result.schema == {
        "type": "object",
        "properties": {"q": STRING, "n": {"type": "integer"}},
        "required": ["q"],
    }
    assert result.notes == (
        "#/properties/q: draft-3 boolean required: true removed",
        "#: 'q' added to required (draft-3 required: true on the property)",
    )


def test_properties_list_becomes_object() -> None:
    # FoundationAgents/OpenManus#1162. Err: "[] is not of type 'object', 'boolean'."
    schema = {"type": "object", "properties": [], "required": []}
    assert repair(schema, OPENAI).schema == {"type": "object", "properties": {}, "required": []}


def test_required_names_not_declared() -> None:
    schema = {"type": "object", "properties": {"a": STRING}, "required": ["a", "b"]}
    assert repair(schema, OPENAI).schema == {"type": "object", "properties": {"a": STRING}, "required": ["a"]}
    assert repair(schema, GEMINI).schema == {"type": "object", "properties": {"a": STRING}, "required": ["a"]}
    # Valid draft 2020-12: Anthropic gets it untouched.
    assert repair(schema, ANTHROPIC).schema is schema


def test_required_names_under_not_are_declared_instead_of_dropped() -> None:
    # Below `not`, accepting more would reject more at the top: the exact repair is used.
    schema = {
        "type": "object",
        "properties": {"a": STRING},
        "not": {"properties": {"a": STRING}, "required": ["b"]},
    }
    assert repair(schema, OPENAI).schema == {
        "type": "object",
        "properties": {"a": STRING},
        "not": {"properties": {"a": STRING, "b": {}}, "required": ["b"]},
    }
    # Outside `not` the name is dropped instead (accepting more is safe there).
    assert repair(schema["not"], OPENAI).schema == {"type": "object", "properties": {"a": STRING}}


# --- roots ------------------------------------------------------------------------------


def test_typeless_root_gets_type_object() -> None:
    # browserbase/stagehand#1159. Err: "schema must be a JSON Schema of 'type: "object"', got 'type: "None"'."
    schema = {"properties": {"url": STRING}, "required": ["url"]}
    for target in (OPENAI, ANTHROPIC, GEMINI):
        result = repair(schema, target)
        assert result.schema == {"type": "object", "properties": {"url": STRING}, "required": ["url"]}
        assert list(result.schema) == ["type", "properties", "required"]  # type: ignore[arg-type]
        assert result.notes == ("#: root has no type; set to 'object'",)


@pytest.mark.parametrize("root", [None, [], "x", True, {}, {"type": "null"}, {"type": ["object", "null"]}])
@pytest.mark.parametrize("target", [OPENAI, COMPAT, ANTHROPIC, GEMINI])
def test_odd_roots_become_an_empty_object(root: Any, target: Target) -> None:
    expected: dict[str, Any] = {"type": "object", "properties": {}}
    if target is ANTHROPIC and isinstance(root, dict):
        expected = {"type": "object"}  # Anthropic does not require `properties`
    assert repair(root, target).schema == expected


def test_object_root_without_properties() -> None:
    # spring-projects/spring-ai#4776. Err: "In context=(), object schema missing properties."
    schema = {"type": "object"}
    assert repair(schema, OPENAI).schema == {"type": "object", "properties": {}}
    assert repair(schema, ANTHROPIC).schema is schema


def test_root_ref_is_inlined() -> None:
    # Generators that emit the arguments model as a definition (zod-to-json-schema with
    # a name, Pydantic TypeAdapter of a recursive model).
    schema = {
        "$ref": "#/$defs/Args",
        "$defs": {"Args": {"type": "object", "properties": {"q": STRING}, "required": ["q"]}},
    }
    expected = {
        "type": "object",
        "properties": {"q": STRING},
        "required": ["q"],
        "$defs": {"Args": {"type": "object", "properties": {"q": STRING}, "required": ["q"]}},
    }
    assert repair(schema, OPENAI).schema == expected
    assert repair(schema, ANTHROPIC).schema == expected


# --- arrays and type lists ----------------------------------------------------------------


def test_array_without_items() -> None:
    # MCP filesystem server `read_multiple_files.paths` (sigoden/aichat PR #1049);
    # apify/apify-mcp-server#36. Err: "In context=('properties', 'paths'), array schema missing items."
    schema = {
        "type": "object",
        "properties": {"paths": {"type": "array", "description": "Paths"}},
        "required": ["paths"],
    }
    fixed = {
        "type": "object",
        "properties": {"paths": {"type": "array", "description": "Paths", "items": {}}},
        "required": ["paths"],
    }
    assert repair(schema, OPENAI).schema == fixed
    assert repair(schema, COMPAT).schema == fixed
    assert repair(schema, ANTHROPIC).schema is schema  # valid 2020-12

    strict = repair(schema, STRICT)
    assert not strict.strict_ok  # "array of anything" has no strict form
    assert strict.schema == fixed
    assert strict.notes[-1] == (
        "strict mode cannot express #/properties/paths/items: a value of any type cannot be expressed"
    )

    gemini = repair(schema, GEMINI)
    # cline/cline#7339. Err: "parameters.properties[paths].items: missing field."
    assert gemini.schema == {
        "type": "object",
        "properties": {"paths": {"type": "array", "description": "Paths", "items": STRING}},
        "required": ["paths"],
    }
    assert not gemini.meaning_kept


def test_nested_array_without_items() -> None:
    # heypinchy/pinchy PR #380: "In context=('properties', 'filters', 'items'), array schema missing items."
    schema = {"type": "object", "properties": {"filters": {"type": "array", "items": {"type": "array"}}}}
    assert repair(schema, OPENAI).schema == {
        "type": "object",
        "properties": {"filters": {"type": "array", "items": {"type": "array", "items": {}}}},
    }


def test_type_list_with_array_variant() -> None:
    # campfirein/byterover-cli#42. Err: "In context=('properties', 'interaction', 'type', '1'), array schema
    # missing items." Type lists become anyOf, array branches get items.
    schema = {
        "type": "object",
        "properties": {"interaction": {"type": ["string", "array"], "description": "Raw text(s)"}},
        "required": ["interaction"],
    }
    assert repair(schema, OPENAI).schema == {
        "type": "object",
        "properties": {
            "interaction": {"anyOf": [STRING, {"type": "array", "items": {}}], "description": "Raw text(s)"}
        },
        "required": ["interaction"],
    }
    assert repair(schema, ANTHROPIC).schema is schema


def test_type_list_moves_keywords_into_their_branch() -> None:
    schema = {
        "type": "object",
        "properties": {
            "v": {
                "type": ["string", "integer", "null"],
                "maxLength": 3,
                "minimum": 1,
                "enum": ["a", 2, None, 2.5],
            }
        },
    }
    assert repair(schema, OPENAI).schema == {
        "type": "object",
        "properties": {
            "v": {
                "anyOf": [
                    {"type": "string", "maxLength": 3, "enum": ["a"]},
                    {"type": "integer", "minimum": 1, "enum": [2]},
                    {"type": "null", "enum": [None]},
                ]
            }
        },
    }


def test_nullable_type_list_for_gemini() -> None:
    # zed-industries/zed#53919, voocel/litellm#9. Err: "Proto field is not repeating, cannot start list."
    schema = {"type": "object", "properties": {"s": {"type": ["string", "null"], "description": "d"}}}
    assert repair(schema, GEMINI).schema == {
        "type": "object",
        "properties": {"s": {"type": "string", "description": "d", "nullable": True}},
    }


def test_tuple_items() -> None:
    schema = {
        "type": "object",
        "properties": {"pair": {"type": "array", "items": [STRING, {"type": "integer"}]}},
    }
    # Exact 2020-12 form for Anthropic (draft-7 tuples allow any further items).
    assert repair(schema, ANTHROPIC).schema == {
        "type": "object",
        "properties": {"pair": {"type": "array", "prefixItems": [STRING, {"type": "integer"}]}},
    }
    # OpenAI: prefixItems plus items accepting any position (wider, valid for any reading).
    assert repair(schema, OPENAI).schema == {
        "type": "object",
        "properties": {
            "pair": {
                "type": "array",
                "items": {},
                "prefixItems": [STRING, {"type": "integer"}],
            }
        },
    }
    closed = {
        "type": "object",
        "properties": {"pair": {"type": "array", "items": [STRING], "additionalItems": False}},
    }
    assert repair(closed, OPENAI).schema == {
        "type": "object",
        "properties": {"pair": {"type": "array", "items": STRING, "prefixItems": [STRING], "maxItems": 1}},
    }


def test_draft4_exclusive_bounds() -> None:
    schema = {
        "type": "object",
        "properties": {"n": {"type": "integer", "minimum": 0, "exclusiveMinimum": True}},
    }
    assert repair(schema, ANTHROPIC).schema == {
        "type": "object",
        "properties": {"n": {"type": "integer", "exclusiveMinimum": 0}},
    }
    assert repair(schema, GEMINI).schema == {
        "type": "object",
        "properties": {"n": {"type": "integer", "minimum": 1}},
    }


# --- top-level combinators -----------------------------------------------------------------

# dearlordylord/huly-mcp#66 and marianfoo/mcp-sap-docs PR #51: "at least one of" written as a
# root anyOf of `required` lists. Err (anthropics/claude-code#5973): "tools.21.custom.input_schema:
# input_schema does not support oneOf, allOf, or anyOf at the top level"
AT_LEAST_ONE = {
    "type": "object",
    "required": ["project"],
    "properties": {"project": STRING, "title": STRING, "description": STRING},
    "anyOf": [{"required": ["title"]}, {"required": ["description"]}],
}


def test_root_any_of_of_required_lists() -> None:
    merged = {
        "type": "object",
        "properties": {"project": STRING, "title": STRING, "description": STRING},
        "required": ["project"],
    }
    result = repair(AT_LEAST_ONE, ANTHROPIC)
    assert result.schema == merged
    assert result.notes == ("#: top-level anyOf merged into one object schema",)
    assert repair(AT_LEAST_ONE, GEMINI).schema == merged
    assert repair(AT_LEAST_ONE, STRICT).schema == {
        "type": "object",
        "properties": {"project": STRING, "title": _nullable(STRING), "description": _nullable(STRING)},
        "required": ["project", "title", "description"],
        "additionalProperties": False,
    }
    # Non-strict OpenAI keeps the exact constraint.
    assert repair(AT_LEAST_ONE, OPENAI).schema is AT_LEAST_ONE


def test_root_union_of_closed_objects() -> None:
    # zod discriminated union as emitted by zod-to-json-schema for an MCP server.
    schema = {
        "anyOf": [
            {
                "type": "object",
                "properties": {"action": {"type": "string", "const": "create"}, "name": STRING},
                "required": ["action", "name"],
                "additionalProperties": False,
            },
            {
                "type": "object",
                "properties": {"action": {"type": "string", "const": "delete"}, "id": {"type": "integer"}},
                "required": ["action", "id"],
                "additionalProperties": False,
            },
        ],
        "$schema": "http://json-schema.org/draft-07/schema#",
    }
    assert repair(schema, ANTHROPIC).schema == {
        "type": "object",
        "$schema": "http://json-schema.org/draft-07/schema#",
        "properties": {
            "action": {
                "anyOf": [{"type": "string", "const": "create"}, {"type": "string", "const": "delete"}]
            },
            "name": STRING,
            "id": {"type": "integer"},
        },
        "required": ["action"],
        "additionalProperties": False,
    }


def test_root_union_with_open_branch_leaves_the_field_unconstrained() -> None:
    schema = {
        "oneOf": [
            {"type": "object", "properties": {"a": {"type": "integer"}}},
            {
                "type": "object",
                "properties": {"b": {"type": "string", "description": "B"}},
                "additionalProperties": False,
            },
        ]
    }
    # The open first branch allows any `b` (its description is kept as a hint); the closed
    # second branch forbids `a`, so `a` keeps the first branch's schema.
    assert repair(schema, ANTHROPIC).schema == {
        "type": "object",
        "properties": {"a": {"type": "integer"}, "b": {"description": "B"}},
    }


def test_root_all_of_is_merged() -> None:
    schema = {
        "allOf": [
            {"type": "object", "properties": {"a": STRING}, "required": ["a"]},
            {"type": "object", "properties": {"b": {"type": "integer"}}, "required": ["b"]},
        ]
    }
    assert repair(schema, ANTHROPIC).schema == {
        "type": "object",
        "properties": {"a": STRING, "b": {"type": "integer"}},
        "required": ["a", "b"],
    }


# --- Pydantic -----------------------------------------------------------------------------

# Pydantic v1 wraps a referenced model with a description in a one-branch allOf.
PYDANTIC_V1 = {
    "title": "Args",
    "type": "object",
    "properties": {
        "color": {"description": "Pick one", "allOf": [{"$ref": "#/definitions/Color"}]},
        "size": {"title": "Size", "default": 1, "type": "integer"},
    },
    "required": ["color"],
    "definitions": {
        "Color": {
            "title": "Color",
            "description": "An enumeration.",
            "enum": ["red", "green"],
            "type": "string",
        }
    },
}


def test_pydantic_v1_all_of_ref() -> None:
    assert repair(PYDANTIC_V1, OPENAI).schema is PYDANTIC_V1
    assert repair(PYDANTIC_V1, ANTHROPIC).schema is PYDANTIC_V1
    color = {"description": "Pick one", "title": "Color", "enum": ["red", "green"], "type": "string"}
    strict = repair(PYDANTIC_V1, STRICT)
    assert strict.strict_ok
    # 567-labs/instructor#1074. Err: "In context=('properties', 'error'), 'default' is not permitted."
    assert strict.schema == {
        "title": "Args",
        "type": "object",
        "properties": {"color": color, "size": {"anyOf": [{"type": "integer"}, NULL], "title": "Size"}},
        "required": ["color", "size"],
        "definitions": PYDANTIC_V1["definitions"],
        "additionalProperties": False,
    }
    assert repair(PYDANTIC_V1, GEMINI).schema == {
        "title": "Args",
        "type": "object",
        "properties": {"color": color, "size": {"title": "Size", "default": 1, "type": "integer"}},
        "required": ["color"],
    }


def test_pydantic_v2_optional_field() -> None:
    schema = {
        "properties": {
            "city": {"title": "City", "type": "string"},
            "unit": {"anyOf": [STRING, NULL], "default": None, "title": "Unit"},
        },
        "required": ["city"],
        "title": "Weather",
        "type": "object",
    }
    assert repair(schema, OPENAI).schema is schema
    assert repair(schema, STRICT).schema == {
        "properties": {
            "city": {"title": "City", "type": "string"},
            "unit": {"anyOf": [STRING, NULL], "title": "Unit"},
        },
        "required": ["city", "unit"],
        "title": "Weather",
        "type": "object",
        "additionalProperties": False,
    }
    assert repair(schema, GEMINI).schema == {
        "properties": {
            "city": {"title": "City", "type": "string"},
            "unit": {"default": None, "title": "Unit", "nullable": True, "type": "string"},
        },
        "required": ["city"],
        "title": "Weather",
        "type": "object",
    }


def test_ref_with_siblings_is_inlined_for_strict() -> None:
    # openai/openai-python `lib/_pydantic.py` does the same ("we can't use `$ref`s if there are
    # also other properties defined").
    schema = {
        "type": "object",
        "properties": {"p": {"$ref": "#/$defs/P", "description": "the p"}},
        "required": ["p"],
        "$defs": {"P": {"type": "object", "properties": {"x": {"type": "integer"}}, "required": ["x"]}},
    }
    result = repair(schema, STRICT)
    assert result.schema == {
        "type": "object",
        "properties": {
            "p": {
                "type": "object",
                "properties": {"x": {"type": "integer"}},
                "required": ["x"],
                "description": "the p",
                "additionalProperties": False,
            }
        },
        "required": ["p"],
        "$defs": {
            "P": {
                "type": "object",
                "properties": {"x": {"type": "integer"}},
                "required": ["x"],
                "additionalProperties": False,
            }
        },
        "additionalProperties": False,
    }


RECURSIVE = {
    "type": "object",
    "properties": {"tree": {"$ref": "#/$defs/Node"}},
    "required": ["tree"],
    "$defs": {
        "Node": {
            "type": "object",
            "properties": {"name": STRING, "children": {"type": "array", "items": {"$ref": "#/$defs/Node"}}},
            "required": ["name"],
        }
    },
}


def test_recursive_schema_strict_keeps_refs() -> None:
    result = repair(RECURSIVE, STRICT)
    assert result.strict_ok
    assert result.schema["$defs"]["Node"] == {  # type: ignore[index]
        "type": "object",
        "properties": {
            "name": STRING,
            "children": {"anyOf": [{"type": "array", "items": {"$ref": "#/$defs/Node"}}, NULL]},
        },
        "required": ["name", "children"],
        "additionalProperties": False,
    }


def test_recursive_schema_gemini_is_unrolled_then_cut() -> None:
    result = repair(RECURSIVE, GEMINI)
    level2 = {
        "type": "object",
        "properties": {"name": STRING, "children": {"type": "array", "items": {"type": "object"}}},
        "required": ["name"],
    }
    assert result.schema == {
        "type": "object",
        "properties": {
            "tree": {
                "type": "object",
                "properties": {"name": STRING, "children": {"type": "array", "items": level2}},
                "required": ["name"],
            }
        },
        "required": ["tree"],
    }
    assert result.meaning_kept
    assert (
        "#/properties/tree/properties/children/items/properties/children/items: recursive $ref '#/$defs/Node'"
        in (result.notes[-1])
    )


# --- strict-only --------------------------------------------------------------------------


def test_strict_drops_unsupported_format() -> None:
    # can1357/oh-my-pi#206 (Firecrawl MCP). Err: "In context=('properties', 'url'), 'uri' is not a valid format."
    schema = {
        "type": "object",
        "properties": {"url": {"type": "string", "format": "uri"}},
        "required": ["url"],
    }
    assert repair(schema, STRICT).schema == {
        "type": "object",
        "properties": {"url": STRING},
        "required": ["url"],
        "additionalProperties": False,
    }
    assert repair(schema, OPENAI).schema is schema


def test_strict_free_form_object_falls_back_to_non_strict() -> None:
    schema = {"type": "object", "properties": {"headers": {"type": "object", "additionalProperties": STRING}}}
    result = repair(schema, STRICT)
    assert not result.strict_ok
    assert result.schema is schema  # the non-strict repair: nothing to change
    assert not result.changed
    assert result.notes == (
        "strict mode cannot express #/properties/headers: additionalProperties other than false "
        "(free-form object) cannot be expressed",
    )


def test_strict_valid_schema_is_returned_as_is() -> None:
    schema = {
        "type": "object",
        "properties": {"q": STRING, "n": {"type": ["integer", "null"]}},
        "required": ["q", "n"],
        "additionalProperties": False,
    }
    # Type lists are rewritten for every OpenAI target; the anyOf form is
    # what strict mode documents for nullable fields too.
    result = repair(schema, STRICT)
    assert result.schema == {**schema, "properties": {"q": STRING, "n": _nullable({"type": "integer"})}}
    already = result.schema
    assert repair(already, STRICT).schema is already


def test_strict_one_of_becomes_any_of_and_not_is_dropped() -> None:
    schema = {
        "type": "object",
        "properties": {"v": {"oneOf": [STRING, {"type": "integer"}], "not": {"const": "x"}}},
        "required": ["v"],
    }
    result = repair(schema, STRICT)
    assert result.schema == {
        "type": "object",
        "properties": {"v": {"anyOf": [STRING, {"type": "integer"}]}},
        "required": ["v"],
        "additionalProperties": False,
    }
    assert result.notes == (
        "#/properties/v: oneOf rewritten as anyOf",
        "#/properties/v: keyword 'not' is not supported in strict mode; removed",
        "#: additionalProperties: false added",
    )


def test_strict_openapi_nullable() -> None:
    schema = {"type": "object", "properties": {"s": {"type": "string", "nullable": True}}, "required": ["s"]}
    assert repair(schema, STRICT).schema == {
        "type": "object",
        "properties": {"s": _nullable(STRING)},
        "required": ["s"],
        "additionalProperties": False,
    }


def test_strict_size_limit() -> None:
    schema = {
        "type": "object",
        "properties": {"e": {"type": "string", "enum": [f"v{i}" for i in range(1001)]}},
    }
    result = repair(schema, STRICT)
    assert not result.strict_ok
    assert "strict mode cannot express #: 1001 enum values exceed the limit of 1000" in result.notes


# --- Gemini-only --------------------------------------------------------------------------


def test_gemini_integer_enum_is_dropped() -> None:
    # microsoft/azure-devops-mcp#139. Err: "Invalid value at '...enum[1]' (TYPE_STRING), 2"
    schema = {
        "type": "object",
        "properties": {"level": {"type": "integer", "enum": [1, 2, 4]}},
        "required": ["level"],
    }
    result = repair(schema, GEMINI)
    assert result.schema == {
        "type": "object",
        "properties": {"level": {"type": "integer"}},
        "required": ["level"],
    }
    assert result.meaning_kept


def test_gemini_const_in_any_of() -> None:
    # zed-extensions/mcp-server-brave-search#12. Err: "Unknown name "const" at '...any_of[0]'"
    schema = {"type": "object", "properties": {"mode": {"anyOf": [{"const": "fast"}, {"const": "slow"}]}}}
    assert repair(schema, GEMINI).schema == {
        "type": "object",
        "properties": {
            "mode": {"anyOf": [{"enum": ["fast"], "type": "string"}, {"enum": ["slow"], "type": "string"}]}
        },
    }


def test_gemini_removes_unknown_keywords() -> None:
    # BerriAI/litellm#14330: "Unknown name "additionalProperties" ... Cannot find field."
    schema = {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "type": "object",
        "properties": {"n": {"type": "number", "exclusiveMinimum": 0, "examples": [1]}},
        "additionalProperties": False,
    }
    result = repair(schema, GEMINI)
    assert result.schema == {"type": "object", "properties": {"n": {"type": "number", "minimum": 0}}}
    assert result.meaning_kept


def test_gemini_typeless_property() -> None:
    # danny-avila/LibreChat#6971. Err: "parameters.properties[commit_hash].type: must be specified when not
    # using one_of, any_of or all_of fields"
    schema = {"type": "object", "properties": {"commit_hash": {"description": "Hash"}}}
    result = repair(schema, GEMINI)
    assert result.schema == {
        "type": "object",
        "properties": {"commit_hash": {"description": "Hash", "type": "string"}},
    }
    assert not result.meaning_kept


# --- repair_tool_parameters ---------------------------------------------------------------


def test_repair_tool_parameters_absent() -> None:
    assert repair_tool_parameters(None, OPENAI) == RepairResult(None, False, ())
    assert repair_tool_parameters(None, ANTHROPIC).schema == {"type": "object", "properties": {}}
    assert repair_tool_parameters(None, GEMINI).schema is None


def test_repair_tool_parameters_gemini_zero_arguments() -> None:
    # pipecat-ai/pipecat-flows#110, agno-agi/agno#2112. Err: "parameters.properties: should be non-empty for
    # OBJECT type"
    result = repair_tool_parameters({"type": "object", "properties": {}}, GEMINI)
    assert result.schema is None
    assert result.changed
    schema = {"type": "object", "properties": {"a": STRING}}
    assert repair_tool_parameters(schema, GEMINI).schema is schema


# --- general guarantees --------------------------------------------------------------------

VALID_EVERYWHERE = {
    "type": "object",
    "properties": {
        "query": {"type": "string", "description": "What to look for"},
        "limit": {"type": "integer", "minimum": 1},
    },
    "required": ["query", "limit"],
}


@pytest.mark.parametrize("target", [OPENAI, COMPAT, ANTHROPIC, GEMINI])
def test_valid_schema_is_returned_identical(target: Target) -> None:
    schema = copy.deepcopy(VALID_EVERYWHERE)
    result = repair_schema(schema, target)
    assert result.schema is schema
    assert not result.changed
    assert result.notes == ()
    assert result.strict_ok and result.meaning_kept


def test_strict_valid_schema_identical() -> None:
    schema = {**copy.deepcopy(VALID_EVERYWHERE), "additionalProperties": False}
    assert repair_schema(schema, STRICT).schema is schema


def test_unchanged_subtrees_are_shared() -> None:
    schema = {
        "type": "object",
        "properties": {"big": {"type": "object", "properties": {"x": STRING}}, "bad": {"type": "array"}},
    }
    out = repair_schema(schema, OPENAI).schema
    assert isinstance(out, dict)
    assert out["properties"]["big"] is schema["properties"]["big"]  # type: ignore[index]
    assert out["properties"]["bad"] == {"type": "array", "items": {}}
    assert schema["properties"]["bad"] == {"type": "array"}  # type: ignore[index]


def test_target_accepts_its_string_value() -> None:
    assert (
        repair_schema(PROPERTIES_NULL, "openai-strict").schema
        == repair_schema(PROPERTIES_NULL, STRICT).schema
    )
    with pytest.raises(ValueError, match="'mistral' is not a valid Target"):
        repair_schema(PROPERTIES_NULL, "mistral")


def test_keyword_values_of_the_wrong_shape_are_dropped() -> None:
    # Valid JSON Schema needs e.g. `enum` to be an array and `minLength` a non-negative integer;
    # a wrong value constrains nothing, so dropping it keeps the meaning exactly.
    schema = {
        "type": "object",
        "properties": {
            "s": {"type": "string", "minLength": -1, "pattern": 3, "description": None},
            "e": {"type": "string", "enum": None},
            "n": {"type": "number", "multipleOf": 0, "minimum": "5"},
        },
    }
    result = repair(schema, ANTHROPIC)
    assert result.schema == {
        "type": "object",
        "properties": {"s": STRING, "e": STRING, "n": {"type": "number"}},
    }
    assert result.notes == (
        "#/properties/s: minLength: the number -1 is not a valid value; removed",
        "#/properties/s: pattern: the number 3 is not a valid value; removed",
        "#/properties/s: description: null is not a valid value; removed",
        "#/properties/e: enum: null is not a valid value; removed",
        "#/properties/n: multipleOf: the number 0 is not a valid value; removed",
        "#/properties/n: minimum: the string '5' is not a valid value; removed",
    )
