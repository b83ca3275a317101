"""Is this a structurally valid JSON Schema (draft 2020-12)? The first problem, worded like Python's
`jsonschema` package (which OpenAI's messages come from): `None is not of type 'array'`.

Only keyword *shapes* are checked (what the meta-schema checks), not whether a `$ref` resolves.
Keywords are visited in the order the schema lists them, depth first; the first problem wins.
"""

from __future__ import annotations

from typing import Any

SIMPLE_TYPES = ("array", "boolean", "integer", "null", "number", "object", "string")

_SCHEMA_KEYWORDS = frozenset(
    {
        "additionalProperties",
        "items",
        "not",
        "if",
        "then",
        "else",
        "contains",
        "propertyNames",
        "unevaluatedItems",
        "unevaluatedProperties",
        "additionalItems",
        "contentSchema",
    }
)
_SCHEMA_MAP_KEYWORDS = frozenset(
    {"properties", "patternProperties", "$defs", "definitions", "dependentSchemas"}
)
_SCHEMA_LIST_KEYWORDS = frozenset({"allOf", "anyOf", "oneOf", "prefixItems"})
_NUMBER_KEYWORDS = frozenset({"maximum", "exclusiveMaximum", "minimum", "exclusiveMinimum"})
_COUNT_KEYWORDS = frozenset(
    {
        "maxLength",
        "minLength",
        "maxItems",
        "minItems",
        "maxContains",
        "minContains",
        "maxProperties",
        "minProperties",
    }
)
_STRING_KEYWORDS = frozenset(
    {
        "title",
        "description",
        "pattern",
        "format",
        "$comment",
        "$id",
        "$schema",
        "$ref",
        "$anchor",
        "$dynamicRef",
    }
)
_BOOLEAN_KEYWORDS = frozenset({"uniqueItems", "readOnly", "writeOnly", "deprecated"})


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_integer(value: Any) -> bool:
    return _is_number(value) and float(value).is_integer()


def _not_schema(value: Any) -> str:
    return f"{value!r} is not of type 'object', 'boolean'"


def _unique(values: list[Any]) -> bool:
    seen: list[Any] = []
    for value in values:
        if any(value == other and type(value) is type(other) for other in seen):
            return False
        seen.append(value)
    return True


def _keyword_error(keyword: str, value: Any) -> str | None:
    """A problem with the keyword's own value (not its subschemas)."""
    if keyword == "type":
        valid = (
            value in SIMPLE_TYPES
            if isinstance(value, str)
            else (
                isinstance(value, list)
                and bool(value)
                and all(entry in SIMPLE_TYPES for entry in value)
                and _unique(value)
            )
        )
        return None if valid else f"{value!r} is not valid under any of the given schemas"
    if keyword in ("required", "enum"):
        if not isinstance(value, list):
            return f"{value!r} is not of type 'array'"
        if keyword == "required":
            for entry in value:
                if not isinstance(entry, str):
                    return f"{entry!r} is not of type 'string'"
            if not _unique(value):
                return f"{value!r} has non-unique elements"
        return None
    if keyword in _NUMBER_KEYWORDS:
        return None if _is_number(value) else f"{value!r} is not of type 'number'"
    if keyword == "multipleOf":
        if not _is_number(value):
            return f"{value!r} is not of type 'number'"
        return None if value > 0 else f"{value!r} is less than or equal to the minimum of 0"
    if keyword in _COUNT_KEYWORDS:
        if not _is_integer(value):
            return f"{value!r} is not of type 'integer'"
        return None if value >= 0 else f"{value!r} is less than the minimum of 0"
    if keyword in _STRING_KEYWORDS:
        return None if isinstance(value, str) else f"{value!r} is not of type 'string'"
    if keyword in _BOOLEAN_KEYWORDS:
        return None if isinstance(value, bool) else f"{value!r} is not of type 'boolean'"
    if keyword == "dependentRequired":
        if not isinstance(value, dict):
            return f"{value!r} is not of type 'object'"
        for names in value.values():
            if not isinstance(names, list):
                return f"{names!r} is not of type 'array'"
    return None


def metaschema_error(schema: Any) -> str | None:
    """The first structural problem in `schema`, or None when it is a valid JSON Schema."""
    if isinstance(schema, bool):
        return None
    if not isinstance(schema, dict):
        return _not_schema(schema)
    for keyword, value in schema.items():
        problem = _keyword_error(keyword, value)
        if problem is not None:
            return problem
        if keyword in _SCHEMA_KEYWORDS:
            problem = metaschema_error(value)
        elif keyword in _SCHEMA_MAP_KEYWORDS:
            if not isinstance(value, dict):
                return f"{value!r} is not of type 'object'"
            problem = next((found for sub in value.values() if (found := metaschema_error(sub))), None)
        elif keyword in _SCHEMA_LIST_KEYWORDS:
            if not isinstance(value, list):
                return f"{value!r} is not of type 'array'"
            if not value:
                return "[] should be non-empty"
            problem = next((found for sub in value if (found := metaschema_error(sub))), None)
        if problem is not None:
            return problem
    return None
