"""OpenAI's checks on a function tool's `parameters` schema, with OpenAI's messages.

Every mode: the schema must be a structurally valid JSON Schema (`None is not of type 'array'.`),
its root must be `type: "object"`, and every array schema needs `items`.
Strict mode (`strict: true`) adds, at every node, walking depth first and reporting the first
problem with its `In context=(...)` path: no unsupported keyword, a `type` on every node (or
`anyOf`/`$ref`/`enum`/`const`), and on every object `properties`, `additionalProperties: false`,
and `required` listing every property; then the size limits.
The size-limit messages are our wording (the exact OpenAI text is not known).
"""

from __future__ import annotations

from typing import Any

from fake_providers.validation.metaschema import metaschema_error

STRICT_UNSUPPORTED = (
    "allOf",
    "not",
    "oneOf",
    "if",
    "then",
    "else",
    "dependentRequired",
    "dependentSchemas",
    "patternProperties",
    "unevaluatedProperties",
    "propertyNames",
    "minProperties",
    "maxProperties",
    "uniqueItems",
    "contains",
    "minLength",
    "maxLength",
)

MAX_PROPERTIES = 5000
MAX_NESTING = 10
MAX_ENUM_VALUES = 1000
LARGE_ENUM = 250
MAX_LARGE_ENUM_CHARS = 15000
MAX_TOTAL_CHARS = 120000

_Path = tuple[str | int, ...]


def _context(path: _Path) -> str:
    return f"In context={path!r}"


def _types(node: dict[str, Any]) -> list[Any]:
    kind = node.get("type")
    return kind if isinstance(kind, list) else [kind]


def _children(node: dict[str, Any], path: _Path) -> list[tuple[Any, _Path]]:
    """Subschemas in the order the schema lists them, with their paths."""
    found: list[tuple[Any, _Path]] = []
    for key, value in node.items():
        if key in ("properties", "$defs", "definitions") and isinstance(value, dict):
            found += [(sub, (*path, key, name)) for name, sub in value.items()]
        elif key in ("items", "additionalProperties", "not") and isinstance(value, dict):
            found.append((value, (*path, key)))
        elif key in ("anyOf", "oneOf", "allOf", "prefixItems") and isinstance(value, list):
            found += [(sub, (*path, key, index)) for index, sub in enumerate(value)]
    return found


def _missing_items(node: Any, path: _Path) -> str | None:
    if not isinstance(node, dict):
        return None
    if "array" in _types(node) and "items" not in node and "prefixItems" not in node:
        return f"{_context(path)}, array schema missing items."
    for child, child_path in _children(node, path):
        problem = _missing_items(child, child_path)
        if problem is not None:
            return problem
    return None


def _strict_node(node: Any, path: _Path) -> str | None:
    if not isinstance(node, dict):
        return f"{_context(path)}, schema must have a 'type' key."
    for keyword in node:
        if keyword in STRICT_UNSUPPORTED:
            return f"{_context(path)}, '{keyword}' is not permitted."
    if "$ref" in node:
        return None
    if "anyOf" in node:
        if not path:
            return f"{_context(path)}, 'anyOf' is not permitted at the root."
        for index, branch in enumerate(node["anyOf"]):
            problem = _strict_node(branch, (*path, "anyOf", index))
            if problem is not None:
                return problem
        return None
    if "type" not in node:
        if "enum" in node or "const" in node:
            return None
        return f"{_context(path)}, schema must have a 'type' key."
    types = _types(node)
    if "object" in types:
        properties = node.get("properties")
        if properties is None:
            return f"{_context(path)}, object schema missing properties."
        if node.get("additionalProperties") is not False:
            return f"{_context(path)}, 'additionalProperties' is required to be supplied and to be false."
        required = node.get("required") or []
        missing = [name for name in properties if name not in required]
        if missing:
            listed = ", ".join(f"'{name}'" for name in missing)
            return (
                f"{_context(path)}, 'required' is required to be supplied and to be an array including every "
                f"key in properties. Missing {listed}."
            )
        for name, sub in properties.items():
            problem = _strict_node(sub, (*path, "properties", name))
            if problem is not None:
                return problem
    if "array" in types and "items" in node:
        problem = _strict_node(node["items"], (*path, "items"))
        if problem is not None:
            return problem
    for key in ("$defs", "definitions"):
        for name, sub in (node.get(key) or {}).items():
            problem = _strict_node(sub, (*path, key, name))
            if problem is not None:
                return problem
    return None


class _Sizes:
    def __init__(self) -> None:
        self.properties = 0
        self.nesting = 0
        self.enum_values = 0
        self.chars = 0
        self.large_enum: tuple[int, int] | None = None

    def measure(self, node: Any, level: int) -> None:
        if not isinstance(node, dict):
            return
        if "object" in _types(node) or "properties" in node:
            level += 1
            self.nesting = max(self.nesting, level)
        properties = node.get("properties")
        if isinstance(properties, dict):
            self.properties += len(properties)
            self.chars += sum(len(name) for name in properties)
        for key in ("$defs", "definitions"):
            if isinstance(node.get(key), dict):
                self.chars += sum(len(name) for name in node[key])
        enum = node.get("enum")
        if isinstance(enum, list):
            self.enum_values += len(enum)
            texts = [value for value in enum if isinstance(value, str)]
            self.chars += sum(len(value) for value in texts)
            total = sum(len(value) for value in texts)
            if len(enum) > LARGE_ENUM and len(texts) == len(enum) and total > MAX_LARGE_ENUM_CHARS:
                self.large_enum = (len(enum), total)
        if isinstance(node.get("const"), str):
            self.chars += len(node["const"])
        for child, _ in _children(node, ()):
            self.measure(child, level)

    def problem(self) -> str | None:
        if self.properties > MAX_PROPERTIES:
            return f"Schema has {self.properties} object properties in total, more than the limit of {MAX_PROPERTIES}."
        if self.nesting > MAX_NESTING:
            return f"Schema nests objects {self.nesting} levels deep, more than the limit of {MAX_NESTING}."
        if self.enum_values > MAX_ENUM_VALUES:
            return f"Schema has {self.enum_values} enum values in total, more than the limit of {MAX_ENUM_VALUES}."
        if self.large_enum is not None:
            count, chars = self.large_enum
            return (
                f"An enum of {count} string values totals {chars} characters, more than the limit of "
                f"{MAX_LARGE_ENUM_CHARS} for enums over {LARGE_ENUM} values."
            )
        if self.chars > MAX_TOTAL_CHARS:
            return (
                f"Property names, definition names, enum and const values total {self.chars} characters, "
                f"more than the limit of {MAX_TOTAL_CHARS}."
            )
        return None


def openai_tool_schema_error(parameters: object, *, strict: bool) -> str | None:
    """None when OpenAI accepts `parameters`; otherwise OpenAI's message for it.

    The message is what follows `Invalid schema for function '<name>': ` in OpenAI's error, e.g.
    `None is not of type 'array'.` or `In context=(), object schema missing properties.`.
    `parameters=None` means the tool has no parameters, which is accepted.
    """
    if parameters is None:
        return None
    problem = metaschema_error(parameters)
    if problem is not None:
        return problem + "."
    root_type = parameters.get("type") if isinstance(parameters, dict) else None
    if root_type != "object":
        return f"schema must be a JSON Schema of 'type: \"object\"', got 'type: \"{root_type}\"'."
    problem = _missing_items(parameters, ())
    if problem is not None or not strict:
        return problem
    problem = _strict_node(parameters, ())
    if problem is not None:
        return problem
    sizes = _Sizes()
    sizes.measure(parameters, 0)
    return sizes.problem()
