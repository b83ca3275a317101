"""Example values that validate against a JSON schema: the arguments of generated tool calls.

Deterministic: the same schema always gives the same value. Rules, in order:
`$ref` (local `#/...` pointers) is followed; `const` is used; `enum` gives its first value;
`anyOf`/`oneOf` use the first branch that is not `{"type": "null"}`; `allOf` merges object branches;
a type list uses its first non-null type. Objects get every property listed in `required` (every
property when nothing is required); arrays get `minItems` items (at least one unless `maxItems` is
0), distinct when `uniqueItems`; strings honour `format`, `minLength` and `maxLength` (not
`pattern`); numbers honour `minimum`, `maximum`, the exclusive bounds and `multipleOf`.
"""

from __future__ import annotations

import math
from typing import Any

_MAX_DEPTH = 8  # past this, arrays are empty and objects keep only required properties
_HARD_DEPTH = 32

_FORMATS = {
    "date-time": "2025-01-01T00:00:00Z",
    "date": "2025-01-01",
    "time": "00:00:00",
    "duration": "P1D",
    "email": "user@example.com",
    "hostname": "example.com",
    "ipv4": "192.0.2.1",
    "ipv6": "2001:db8::1",
    "uuid": "00000000-0000-4000-8000-000000000000",
    "uri": "https://example.com",
    "url": "https://example.com",
}


def example_for_schema(schema: Any) -> Any:
    """A value that validates against `schema` (None, a missing schema, gives `{}`)."""
    if schema is None:
        return {}
    return _Generator(schema).value(schema, 0, 0)


class _Generator:
    def __init__(self, root: Any) -> None:
        self._root = root

    def _resolve(self, ref: str) -> Any:
        if not ref.startswith("#"):
            return {}
        node = self._root
        for raw in ref.lstrip("#").split("/"):
            if not raw:
                continue
            key = raw.replace("~1", "/").replace("~0", "~")
            if isinstance(node, dict) and key in node:
                node = node[key]
            elif isinstance(node, list) and key.isdigit() and int(key) < len(node):
                node = node[int(key)]
            else:
                return {}
        return node

    def value(self, schema: Any, depth: int, variant: int) -> Any:
        if not isinstance(schema, dict):
            return "example" if schema is not False else None
        if "$ref" in schema and isinstance(schema["$ref"], str):
            if depth >= _HARD_DEPTH:  # a schema that requires itself forever: give up
                return None
            return self.value(self._resolve(schema["$ref"]), depth + 1, variant)
        if "const" in schema:
            return schema["const"]
        enum = schema.get("enum")
        if isinstance(enum, list) and enum:
            return enum[variant % len(enum)]
        for key in ("anyOf", "oneOf"):
            branches = schema.get(key)
            if isinstance(branches, list) and branches:
                return self.value(_first_not_null(branches), depth + 1, variant)
        branches = schema.get("allOf")
        if isinstance(branches, list) and branches:
            return self.value(_merge_all_of(schema, branches), depth + 1, variant)
        kind = _type_of(schema)
        if kind == "object":
            return self._object(schema, depth)
        if kind == "array":
            return self._array(schema, depth)
        if kind == "string":
            return _string(schema, variant)
        if kind == "integer":
            return _number(schema, variant, integer=True)
        if kind == "number":
            return _number(schema, variant, integer=False)
        if kind == "boolean":
            return variant % 2 == 0
        if kind == "null":
            return None
        return "example"

    def _object(self, schema: dict[str, Any], depth: int) -> dict[str, Any]:
        properties = schema.get("properties")
        if not isinstance(properties, dict):
            properties = {}
        required = schema.get("required")
        names = [name for name in required if isinstance(name, str)] if isinstance(required, list) else []
        if not names:
            names = list(properties)
        if depth >= _MAX_DEPTH:
            names = names if isinstance(required, list) else []
        return {name: self.value(properties.get(name, {}), depth + 1, 0) for name in names}

    def _array(self, schema: dict[str, Any], depth: int) -> list[Any]:
        min_items = _int(schema.get("minItems")) or 0
        max_items = _int(schema.get("maxItems"))
        count = max(min_items, 0 if depth >= _MAX_DEPTH else 1)
        if max_items is not None:
            count = min(count, max_items)
        items = schema.get("items", {})
        unique = schema.get("uniqueItems") is True
        return [self.value(items, depth + 1, index if unique else 0) for index in range(count)]


def _type_of(schema: dict[str, Any]) -> str | None:
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((entry for entry in kind if entry != "null"), kind[0] if kind else None)
    if isinstance(kind, str):
        return kind
    if "properties" in schema:
        return "object"
    if "items" in schema:
        return "array"
    return None


def _first_not_null(branches: list[Any]) -> Any:
    for branch in branches:
        if not (isinstance(branch, dict) and branch.get("type") == "null"):
            return branch
    return branches[0]


def _merge_all_of(schema: dict[str, Any], branches: list[Any]) -> dict[str, Any]:
    merged: dict[str, Any] = {key: value for key, value in schema.items() if key != "allOf"}
    properties: dict[str, Any] = dict(merged.get("properties") or {})
    required: list[Any] = list(merged.get("required") or [])
    for branch in branches:
        if not isinstance(branch, dict):
            continue
        for key, value in branch.items():
            if key == "properties" and isinstance(value, dict):
                properties.update(value)
            elif key == "required" and isinstance(value, list):
                required.extend(name for name in value if name not in required)
            else:
                merged.setdefault(key, value)
    if properties:
        merged["properties"] = properties
    if required:
        merged["required"] = required
    return merged


def _int(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return int(value)


def _string(schema: dict[str, Any], variant: int) -> str:
    text = _FORMATS.get(str(schema.get("format")), "example")
    if variant:
        text = f"{text}-{variant}" if text == "example" else text
    min_length = _int(schema.get("minLength")) or 0
    max_length = _int(schema.get("maxLength"))
    if len(text) < min_length:
        text += "x" * (min_length - len(text))
    if max_length is not None and len(text) > max_length:
        text = text[:max_length]
    return text


def _number(schema: dict[str, Any], variant: int, *, integer: bool) -> int | float:
    low = schema.get("minimum")
    exclusive_low = schema.get("exclusiveMinimum")
    high = schema.get("maximum")
    exclusive_high = schema.get("exclusiveMaximum")
    step = schema.get("multipleOf")
    unit = 1 if integer else 0.5
    candidate: float = 1 + variant
    if isinstance(low, int | float) and candidate < low:
        candidate = low
    if isinstance(exclusive_low, int | float) and candidate <= exclusive_low:
        candidate = exclusive_low + unit
    if isinstance(step, int | float) and step > 0:
        candidate = math.ceil(candidate / step) * step
    if isinstance(high, int | float) and candidate > high:
        candidate = high
    if isinstance(exclusive_high, int | float) and candidate >= exclusive_high:
        candidate = exclusive_high - unit
    if integer:
        return math.ceil(candidate)
    return float(candidate)
