"""Property-based tests for gateway.schema_fix.

Schemas are generated with hypothesis, broken shapes included (null/odd `required`, null
`properties`, type lists, arrays without items, tuple items, draft-3 and draft-4
leftovers, `$defs`/`$ref` with recursion, root combinators, non-object roots). For every
target we check:

* the input is not mutated;
* repair is idempotent, and the second pass returns the very same object;
* a schema that already follows the target's rules comes back as the same object;
* meaning: instances valid under the original (drawn from the schema, then filtered by
  the small validator below) stay valid under the repair -- for OpenAI strict, with the
  strict convention that a missing optional property is sent as null;
* the repaired schema follows the target's rules (own checker below), and the fake
  providers' validators accept it when those modules exist.

The validator covers the generated subset only. It reads invalid keyword values as "no
constraint" (which is what the repair's removals assume), draft-7 tuple `items`,
draft-3 `required: true`, draft-4 boolean exclusive bounds and OpenAPI `nullable`.
"""

from __future__ import annotations

import copy
import json
import random
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from fake_providers.validation import anthropic_input_schema_error, openai_tool_schema_error
from gateway.schema_fix import RepairResult, Target, repair_schema

SETTINGS = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

TYPES = ["string", "integer", "number", "boolean", "null", "object", "array"]

# The keywords each target takes, as the providers document them (stated here, not imported
# from gateway.schema_fix: the checker must not share its lists with what it checks).
# OpenAI structured outputs (strict mode):
STRICT_KEYWORDS = frozenset(
    {
        *("type", "properties", "required", "additionalProperties", "items", "anyOf", "enum", "const"),
        *("$defs", "definitions", "$ref", "description", "title", "pattern", "format", "multipleOf"),
        *("maximum", "exclusiveMaximum", "minimum", "exclusiveMinimum", "minItems", "maxItems"),
    }
)
# Gemini's `Schema` object (an OpenAPI 3.0 subset):
GEMINI_KEYWORDS = frozenset(
    {
        *("type", "format", "title", "description", "nullable", "enum", "maxItems", "minItems"),
        *("properties", "required", "minProperties", "maxProperties", "minLength", "maxLength"),
        *("pattern", "example", "anyOf", "propertyOrdering", "default", "items", "minimum", "maximum"),
    }
)
NAMES = ["a", "b", "c", "d"]

# --------------------------------------------------------------------------------------
# schema generation


def _leaf(broken: bool) -> st.SearchStrategy[Any]:
    typed = st.sampled_from(["string", "integer", "number", "boolean", "null"]).flatmap(_typed_leaf)
    options: list[st.SearchStrategy[Any]] = [
        typed,
        st.just({}),
        st.just({"description": "anything"}),
        st.lists(st.sampled_from(TYPES[:5]), min_size=2, max_size=3, unique=True).map(
            lambda ts: {"type": ts}
        ),
        st.lists(st.sampled_from(["x", "y", 1, 2.5, True, None]), min_size=1, max_size=3, unique=True).map(
            lambda vs: {"enum": vs}
        ),
        st.sampled_from(["x", 3, None, False]).map(lambda v: {"const": v}),
        st.just({"$ref": "#/$defs/D0"}),
        st.just({"$ref": "#/$defs/Node"}),
    ]
    if broken:
        options += [
            st.just({"type": "String"}),
            st.just({"type": ["string"]}),
            st.just({"type": "text"}),
            st.just({"type": None}),
            st.just({"type": "string", "nullable": True}),
            st.just({"type": "integer", "minimum": 1, "exclusiveMinimum": True}),
            st.just({"type": "number", "maximum": 5, "exclusiveMaximum": False}),
            st.just({"type": "string", "required": True}),
            st.just({"type": "string", "format": "uri"}),
            st.just({"type": ["string", "null"], "enum": ["x", None]}),
            st.just({"type": ["integer", "string"], "minLength": 2, "minimum": 3}),
            # keyword values of the wrong shape
            st.just({"type": "string", "minLength": -1, "pattern": 3}),
            st.just({"enum": None}),
            st.just({"type": "number", "multipleOf": 0, "minimum": "5"}),
            st.just({"type": "integer", "description": None, "title": 7}),
            st.just({"$ref": 5}),
        ]
    return st.one_of(options)


def _typed_leaf(type_name: str) -> st.SearchStrategy[Any]:
    base: dict[str, Any] = {"type": type_name}
    extras: list[st.SearchStrategy[Any]] = [st.just({})]
    if type_name == "string":
        extras += [
            st.just({"minLength": 1}),
            st.just({"maxLength": 2}),
            st.just({"pattern": "^a"}),
            st.just({"enum": ["x", "y"]}),
            st.just({"format": "date-time"}),
        ]
    if type_name in ("integer", "number"):
        extras += [
            st.just({"minimum": 0}),
            st.just({"maximum": 10}),
            st.just({"exclusiveMinimum": 2}),
            st.just({"exclusiveMaximum": 7}),
            st.just({"enum": [1, 2]}),
        ]
    return st.one_of(extras).map(lambda extra: {**base, **extra})


def _object(children: st.SearchStrategy[Any], broken: bool) -> st.SearchStrategy[Any]:
    props = st.dictionaries(st.sampled_from(NAMES), children, max_size=3)
    required_options: list[st.SearchStrategy[Any]] = [
        st.lists(st.sampled_from(NAMES), max_size=3, unique=True),
        st.just(None),
    ]
    additional: list[st.SearchStrategy[Any]] = [st.just(None), st.just(False), st.just(True), children]
    if broken:
        required_options += [
            st.just({}),
            st.just(True),
            st.lists(st.sampled_from(NAMES), min_size=2, max_size=3).map(lambda r: [*r, r[0], 7]),
        ]

    @st.composite
    def build(draw: st.DrawFn) -> dict[str, Any]:
        node: dict[str, Any] = {}
        if draw(st.booleans()) or not broken:
            node["type"] = "object"
        shape = draw(st.integers(0, 9 if broken else 5))
        if shape <= 5:
            node["properties"] = draw(props)
        elif shape == 6:
            node["properties"] = None
        elif shape == 7:
            node["properties"] = []
        required = draw(st.one_of(required_options))
        if required is not None or (broken and draw(st.booleans())):
            if not broken and isinstance(required, list):
                declared = node.get("properties") or {}
                required = [name for name in required if name in declared]
            node["required"] = required
        addl = draw(st.one_of(additional))
        if addl is not None:
            node["additionalProperties"] = addl
        return node

    return build()


def _array(children: st.SearchStrategy[Any], broken: bool) -> st.SearchStrategy[Any]:
    @st.composite
    def build(draw: st.DrawFn) -> dict[str, Any]:
        node: dict[str, Any] = {"type": "array"}
        shape = draw(st.integers(0, 4 if broken else 1))
        if shape <= 1:
            node["items"] = draw(children)
        elif shape == 2:
            node["items"] = draw(st.lists(children, min_size=1, max_size=2))
            extra = draw(st.sampled_from([None, False, {"type": "string"}]))
            if extra is not None:
                node["additionalItems"] = extra
        elif shape == 3:
            node["items"] = None
        if draw(st.booleans()):
            node["minItems"] = 1
        if draw(st.booleans()):
            node["maxItems"] = 3
        return node

    return build()


def _combinator(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.tuples(
        st.sampled_from(["anyOf", "oneOf", "allOf"]), st.lists(children, min_size=1, max_size=3)
    ).map(lambda kv: {kv[0]: kv[1]})


def schema_nodes(broken: bool) -> st.SearchStrategy[Any]:
    def extend(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
        options = [_object(children, broken), _array(children, broken), _combinator(children)]
        if broken:
            options += [
                children.map(lambda c: {"not": c}),
                st.tuples(children, children).map(lambda cs: {"if": cs[0], "then": cs[1]}),
                children.map(
                    lambda c: {
                        "type": "object",
                        "patternProperties": {"^x": c},
                        "additionalProperties": False,
                    }
                ),
                children.map(
                    lambda c: {"type": "object", "properties": {"a": c}, "dependentSchemas": {"a": c}}
                ),
            ]
        return st.one_of(options)

    return st.recursive(_leaf(broken), extend, max_leaves=8)


DEFS = {
    "D0": {"type": "object", "properties": {"v": {"type": "string"}}, "required": ["v"]},
    "Node": {
        "type": "object",
        "properties": {"value": {"type": "integer"}, "next": {"$ref": "#/$defs/Node"}},
        "required": ["value"],
    },
}


class _Strategies:
    """Strategies built once per flavour (building them per draw is slow)."""

    def __init__(self, broken: bool) -> None:
        self.broken = broken
        self.nodes = schema_nodes(broken)
        self.objects = _object(self.nodes, broken)
        self.object_lists = st.lists(self.objects, min_size=1, max_size=3)


_BROKEN = _Strategies(broken=True)
_CLEAN = _Strategies(broken=False)
_ODD_ROOTS = st.sampled_from([None, [], "x", True, {"type": "null"}, {}, {"type": ["object", "null"]}])


@st.composite
def tool_schemas(draw: st.DrawFn, broken: bool = True) -> Any:
    """A tool parameter schema: usually an object root, sometimes a broken one."""
    flavour = _BROKEN if broken else _CLEAN
    kind = draw(st.integers(0, 12 if broken else 8))
    if kind <= 6:
        root = draw(flavour.objects)
        root.setdefault("type", "object")
    elif kind == 7:
        root = {"type": "object", "anyOf": draw(flavour.object_lists)}
    elif kind == 8:
        root = {
            "type": "object",
            "properties": {name: {"type": "string"} for name in ("a", "b")},
            "anyOf": [{"required": ["a"]}, {"required": ["b"]}],
        }
    elif kind == 9:
        root = {"$ref": "#/$defs/D0"}
    elif kind == 10:
        root = draw(_ODD_ROOTS)
    elif kind == 11:
        root = {"oneOf": draw(flavour.object_lists)}
    else:
        root = {"allOf": draw(flavour.object_lists)[:2]}
    if isinstance(root, dict) and _mentions_defs(root):
        root = {**root, "$defs": copy.deepcopy(DEFS)}
    return root


def _mentions_defs(value: Any) -> bool:
    return "#/$defs/" in json.dumps(value)


# --------------------------------------------------------------------------------------
# the oracle: the `jsonschema` library, on a draft 2020-12 reading of each schema


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return bool(a == b)


def _resolve(root: Any, ref: str) -> Any:
    if ref == "#":
        return root
    if not ref.startswith("#/"):
        return None
    node = root
    for part in ref[2:].split("/"):
        if isinstance(node, dict) and part in node:
            node = node[part]
        else:
            return None
    return node


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _is_schema(value: Any) -> bool:
    return isinstance(value, dict | bool)


class _Reading:
    """A schema as draft 2020-12, the way tool schemas are read in the wild.

    Invalid keyword values mean "no constraint" (what the repair's removals assume); a
    `type` is matched case-insensitively and unknown type names are no constraint; draft-7
    tuple `items` (with `additionalItems`) become `prefixItems` (and `items`); draft-3
    `required: true` on a property joins its parent's `required`; draft-4 boolean
    `exclusiveMinimum`/`exclusiveMaximum` turn their bound exclusive; OpenAPI
    `nullable: true` also admits null; a `$ref` that does not resolve is no constraint.
    `closed_world` (OpenAI strict's reading of the original): a schema without
    `additionalProperties` admits no undeclared key. Everything else is passed on to
    `jsonschema` as it is.
    """

    def __init__(self, root: Any, *, closed_world: bool) -> None:
        self.root = root
        self.closed_world = closed_world

    def schema(self, node: Any) -> Any:
        if isinstance(node, bool):
            return node
        if not isinstance(node, dict):
            return True
        out: dict[str, Any] = {}
        for key, value in node.items():
            self._keyword(out, node, key, value)
        listed = node.get("required")
        required = [name for name in listed if isinstance(name, str)] if isinstance(listed, list) else []
        properties = node.get("properties")
        if isinstance(properties, dict):
            required += [
                n for n, sub in properties.items() if isinstance(sub, dict) and sub.get("required") is True
            ]
        if required:
            out["required"] = list(dict.fromkeys(required))
        if self.closed_world and "additionalProperties" not in node:
            out["additionalProperties"] = False
        if node.get("nullable") is True:
            definitions = {k: out.pop(k) for k in ("$defs", "definitions") if k in out}
            out = {"anyOf": [{"type": "null"}, out], **definitions}
        return out

    def _keyword(self, out: dict[str, Any], node: dict[str, Any], key: str, value: Any) -> None:
        if key in ("required", "nullable", "additionalItems", "then", "else", "$schema", "$id"):
            # Read with the node (`required`, `nullable`) or with `items` / `if`; the reading is
            # draft 2020-12 with the root as its base, whatever `$schema` and `$id` say.
            return
        if key == "$ref":
            if isinstance(value, str) and _is_schema(_resolve(self.root, value)):
                out[key] = value
        elif key == "type":
            names = [value] if isinstance(value, str) else value if isinstance(value, list) else []
            known = [n.lower() for n in names if isinstance(n, str) and n.lower() in TYPES]
            if known:
                out[key] = known[0] if isinstance(value, str) else list(dict.fromkeys(known))
        elif key == "enum":
            if isinstance(value, list):
                out[key] = copy.deepcopy(value)
        elif key in ("minimum", "maximum"):
            exclusive = "exclusiveMinimum" if key == "minimum" else "exclusiveMaximum"
            if _is_number(value):
                out[exclusive if node.get(exclusive) is True else key] = value
        elif key in ("exclusiveMinimum", "exclusiveMaximum"):
            if _is_number(value):
                out[key] = value
        elif key in ("minLength", "maxLength", "minItems", "maxItems", "minProperties", "maxProperties"):
            if _is_count(value):
                out[key] = value
        elif key == "multipleOf":
            if _is_number(value) and value > 0:
                out[key] = value
        elif key == "pattern":
            if isinstance(value, str):
                out[key] = value
        elif key == "items":
            if isinstance(value, list) and not isinstance(node.get("prefixItems"), list):
                out["prefixItems"] = [self.schema(sub) for sub in value]
                if _is_schema(node.get("additionalItems")):
                    out["items"] = self.schema(node["additionalItems"])
            elif _is_schema(value):
                out[key] = self.schema(value)
        elif key in ("additionalProperties", "not", "contains", "propertyNames"):
            if _is_schema(value):
                out[key] = self.schema(value)
        elif key == "if":
            if _is_schema(value):
                out[key] = self.schema(value)
                out.update({k: self.schema(node[k]) for k in ("then", "else") if _is_schema(node.get(k))})
        elif key in ("properties", "patternProperties", "dependentSchemas", "$defs", "definitions"):
            if isinstance(value, dict):
                out[key] = {name: self.schema(sub) for name, sub in value.items()}
        elif key in ("anyOf", "oneOf", "allOf", "prefixItems"):
            if isinstance(value, list) and value:
                out[key] = [self.schema(sub) for sub in value]
        else:
            out[key] = copy.deepcopy(value)


class Oracle:
    """Whether an instance is valid under a schema, decided by `jsonschema` (draft 2020-12)
    on the schema's :class:`_Reading`. Two switches for OpenAI strict's convention:

    `strict_view`: a missing property counts as present-with-null (for the repaired schema);
    `closed_world`: an object without `additionalProperties` admits no undeclared key (for
    the original: strict mode reads absent `additionalProperties` as false).
    """

    def __init__(self, root: Any, *, strict_view: bool = False, closed_world: bool = False) -> None:
        reading = _Reading(root, closed_world=closed_world).schema(root)
        self._validator = Draft202012Validator(reading)
        if strict_view:
            walk(reading, self._optional_as_null)
            self._validator = Draft202012Validator(reading)

    def _optional_as_null(self, node: Any, path: tuple[str, ...]) -> None:
        """A required property whose schema admits null may be left out (it reads as null)."""
        if not isinstance(node, dict):
            return
        properties, required = node.get("properties"), node.get("required")
        if isinstance(properties, dict) and isinstance(required, list):
            node["required"] = [
                name
                for name in required
                if name not in properties
                or not self._validator.evolve(schema=properties[name]).is_valid(None)
            ]

    def valid(self, instance: Any) -> bool:
        return bool(self._validator.is_valid(instance))


# --------------------------------------------------------------------------------------
# instances drawn from a schema (candidates; the oracle filters them)


class Sampler:
    """`closed`: never invent undeclared keys (OpenAI strict convention: objects are closed)."""

    def __init__(self, root: Any, rnd: random.Random, *, closed: bool = False) -> None:
        self.root = root
        self.rnd = rnd
        self.closed = closed

    def value(self, schema: Any, depth: int = 0) -> Any:
        rnd = self.rnd
        if not isinstance(schema, dict) or depth > 6:
            return self._scalar()
        ref = schema.get("$ref")
        if isinstance(ref, str):
            target = _resolve(self.root, ref)
            if isinstance(target, dict):
                return self.value({**target, **{k: v for k, v in schema.items() if k != "$ref"}}, depth + 1)
        for key in ("anyOf", "oneOf", "allOf"):
            branches = schema.get(key)
            if isinstance(branches, list) and branches and rnd.random() < 0.7:
                branch = rnd.choice(branches)
                rest = {k: v for k, v in schema.items() if k != key}
                merged = {**branch, **rest} if isinstance(branch, dict) else rest
                if key == "allOf" and all(isinstance(b, dict) for b in branches):
                    for other in branches:
                        merged = {**merged, **other}
                return self.value(merged, depth + 1)
        if isinstance(schema.get("enum"), list) and schema["enum"]:
            return copy.deepcopy(rnd.choice(schema["enum"]))
        if "const" in schema:
            return copy.deepcopy(schema["const"])
        if schema.get("nullable") is True and rnd.random() < 0.2:
            return None
        type_value = schema.get("type")
        if isinstance(type_value, list):
            type_value = rnd.choice(type_value) if type_value else None
        if isinstance(type_value, str):
            type_value = type_value.lower()
        if type_value not in TYPES:
            if isinstance(schema.get("properties"), dict) or "required" in schema:
                type_value = "object"
            elif "items" in schema:
                type_value = "array"
            else:
                return self._scalar()
        return self._typed(schema, type_value, depth)

    def _scalar(self) -> Any:
        if self.closed:
            return self.rnd.choice(["a", "x", 0, 3, 2.5, True, None, [], {}, ["a"]])
        return self.rnd.choice(["a", "x", 0, 3, 2.5, True, None, [], {}, ["a"], {"k": 1}])

    def _typed(self, schema: dict[str, Any], type_name: str, depth: int) -> Any:
        rnd = self.rnd
        if type_name == "null":
            return None
        if type_name == "boolean":
            return rnd.random() < 0.5
        if type_name in ("integer", "number"):
            number = rnd.randint(-2, 12)
            return number + 0.5 if type_name == "number" and rnd.random() < 0.3 else number
        if type_name == "string":
            return rnd.choice(["", "a", "ab", "abc", "b", "x"])
        if type_name == "array":
            size = rnd.randint(0, 3)
            items = schema.get("items")
            prefix = schema.get("prefixItems")
            out = []
            for i in range(size):
                if isinstance(prefix, list) and i < len(prefix):
                    out.append(self.value(prefix[i], depth + 1))
                elif isinstance(items, list):
                    out.append(
                        self.value(items[i] if i < len(items) else schema.get("additionalItems"), depth + 1)
                    )
                else:
                    out.append(self.value(items, depth + 1))
            return out
        props = schema.get("properties")
        props = props if isinstance(props, dict) else {}
        required = schema.get("required") if isinstance(schema.get("required"), list) else []
        obj: dict[str, Any] = {}
        for name, sub in props.items():
            if name in required or rnd.random() < 0.6:
                obj[name] = self.value(sub, depth + 1)
        extra = schema.get("additionalProperties")
        if (extra is True or isinstance(extra, dict)) and not self.closed and rnd.random() < 0.3:
            obj["zz"] = self.value(extra, depth + 1)
        return obj


def valid_instances(schema: Any, seed: int, count: int = 12, *, closed: bool = False) -> list[Any]:
    oracle = Oracle(schema, closed_world=closed)
    sampler = Sampler(schema, random.Random(seed), closed=closed)
    found = []
    for _ in range(count):
        candidate = sampler.value(schema)
        # Tool arguments are JSON objects.
        if isinstance(candidate, dict) and oracle.valid(candidate):
            found.append(candidate)
    return found


# --------------------------------------------------------------------------------------
# what each target accepts (own checker; the fake providers' validators are used too)


def walk(schema: Any, visit: Callable[[Any, tuple[str, ...]], None], path: tuple[str, ...] = ()) -> None:
    visit(schema, path)
    if not isinstance(schema, dict):
        return
    for key in ("properties", "$defs", "definitions", "patternProperties", "dependentSchemas"):
        mapping = schema.get(key)
        if isinstance(mapping, dict):
            for name, child in mapping.items():
                walk(child, visit, (*path, key, name))
    for key in ("items", "additionalProperties", "not", "if", "then", "else", "contains", "propertyNames"):
        child = schema.get(key)
        if isinstance(child, dict | bool):
            walk(child, visit, (*path, key))
    for key in ("anyOf", "oneOf", "allOf", "prefixItems"):
        children = schema.get(key)
        if isinstance(children, list):
            for i, child in enumerate(children):
                walk(child, visit, (*path, key, str(i)))


def target_violations(schema: Any, target: Target) -> list[str]:
    problems: list[str] = []
    if not isinstance(schema, dict) or schema.get("type") != "object":
        return ["root is not type object"]
    if target in (Target.ANTHROPIC, Target.OPENAI_STRICT, Target.GEMINI):
        for key in ("anyOf", "oneOf", "allOf"):
            if key in schema:
                problems.append(f"root {key}")
    if target is not Target.ANTHROPIC and not isinstance(schema.get("properties"), dict):
        problems.append("root without properties")

    def visit(node: Any, path: tuple[str, ...]) -> None:
        where = "/".join(path)
        if isinstance(node, bool):
            if target in (Target.GEMINI, Target.OPENAI_STRICT) and path[-1:] != ("additionalProperties",):
                problems.append(f"{where}: boolean schema")
            return
        if not isinstance(node, dict):
            problems.append(f"{where}: not a schema")
            return
        if "required" in node and not (
            isinstance(node["required"], list) and all(isinstance(n, str) for n in node["required"])
        ):
            problems.append(f"{where}: required is not a list of strings")
        if "properties" in node and not isinstance(node["properties"], dict):
            problems.append(f"{where}: properties is not an object")
        if isinstance(node.get("items"), list):
            problems.append(f"{where}: tuple items")
        type_value = node.get("type")
        if type_value is not None and not (
            type_value in TYPES or (isinstance(type_value, list) and all(t in TYPES for t in type_value))
        ):
            problems.append(f"{where}: bad type {type_value!r}")
        if target is Target.ANTHROPIC:
            return
        if isinstance(type_value, list):
            problems.append(f"{where}: type list")
        if type_value == "array" and "items" not in node:
            problems.append(f"{where}: array without items")
        props = node.get("properties")
        if isinstance(props, dict) and isinstance(node.get("required"), list):
            absent = [n for n in node["required"] if n not in props]
            if absent:
                problems.append(f"{where}: required names not declared {absent}")
        if target is Target.OPENAI_STRICT:
            _strict_node(node, where, problems)
        if target is Target.GEMINI:
            _gemini_node(node, where, problems)

    walk(schema, visit)
    return problems


def _strict_node(node: dict[str, Any], where: str, problems: list[str]) -> None:
    unknown = [key for key in node if key not in STRICT_KEYWORDS]
    if unknown:
        problems.append(f"{where}: keywords not allowed in strict mode {unknown}")
    if "type" not in node and "anyOf" not in node and "$ref" not in node:
        problems.append(f"{where}: no type")
    if "$ref" in node and len(node) > 1:
        problems.append(f"{where}: $ref with siblings")
    if node.get("type") == "object":
        if node.get("additionalProperties") is not False:
            problems.append(f"{where}: additionalProperties is not false")
        props = node.get("properties")
        listed = node.get("required") or []
        if not isinstance(props, dict) or set(listed) != set(props) or len(listed) != len(props):
            problems.append(f"{where}: required does not list every property")


def _gemini_node(node: dict[str, Any], where: str, problems: list[str]) -> None:
    unknown = [key for key in node if key not in GEMINI_KEYWORDS]
    if unknown:
        problems.append(f"{where}: keywords Gemini does not know {unknown}")
    if "type" not in node and "anyOf" not in node:
        problems.append(f"{where}: no type")
    enum = node.get("enum")
    if enum is not None and not (isinstance(enum, list) and all(isinstance(v, str) for v in enum)):
        problems.append(f"{where}: non-string enum")
    any_of = node.get("anyOf")
    if isinstance(any_of, list) and {"type": "null"} in any_of:
        problems.append(f"{where}: null branch instead of nullable")


# --------------------------------------------------------------------------------------
# the properties


def _check(original: Any, target: Target, seed: int) -> RepairResult:
    before = json.dumps(original, sort_keys=True)
    snapshot = copy.deepcopy(original)
    result = repair_schema(original, target)
    assert json.dumps(original, sort_keys=True) == before, "input mutated"
    assert _same(original, snapshot), "input mutated"
    if not result.changed:
        assert result.schema is original
        if result.strict_ok:
            assert result.notes == ()

    again = repair_schema(result.schema, target)
    assert again.schema is result.schema, f"not idempotent: {again.notes}"
    assert not again.changed
    assert again.strict_ok == result.strict_ok
    if result.strict_ok:
        assert again.notes == ()

    rules_target = target if result.strict_ok else Target.OPENAI
    assert target_violations(result.schema, rules_target) == []

    if result.meaning_kept:
        strict_view = target is Target.OPENAI_STRICT and result.strict_ok
        repaired = Oracle(result.schema, strict_view=strict_view)
        for instance in valid_instances(original, seed, closed=strict_view):
            assert repaired.valid(instance), (instance, result.schema)
    return result


@SETTINGS
@given(schema=tool_schemas(), seed=st.integers(0, 2**16))
def test_repair_properties_on_broken_schemas(schema: Any, seed: int) -> None:
    for target in Target:
        _check(schema, target, seed)


@SETTINGS
@given(schema=tool_schemas(broken=False), seed=st.integers(0, 2**16))
def test_repair_properties_on_clean_schemas(schema: Any, seed: int) -> None:
    for target in Target:
        result = _check(schema, target, seed)
        if target_violations(schema, target) == []:
            # Already what the target accepts: returned as it is.
            assert result.schema is schema, (target, result.notes)


@SETTINGS
@given(schema=tool_schemas())
def test_fake_providers_accept_repaired_schemas(schema: Any) -> None:
    assert anthropic_input_schema_error(repair_schema(schema, Target.ANTHROPIC).schema) is None
    for target in (Target.OPENAI, Target.OPENAI_COMPATIBLE):
        assert openai_tool_schema_error(repair_schema(schema, target).schema, strict=False) is None
    strict = repair_schema(schema, Target.OPENAI_STRICT)
    assert openai_tool_schema_error(strict.schema, strict=strict.strict_ok) is None


def test_oracle_and_sampler_can_fail() -> None:
    """The helpers above are not vacuous: they reject and they find instances."""
    schema = {"type": "object", "properties": {"a": {"type": "integer", "minimum": 2}}, "required": ["a"]}
    oracle = Oracle(schema)
    assert oracle.valid({"a": 2})
    assert not oracle.valid({"a": 1})
    assert not oracle.valid({})
    assert not oracle.valid({"a": "2"})
    assert Oracle({**schema, "properties": {"a": {"type": ["integer", "null"]}}}, strict_view=True).valid({})
    assert not Oracle({**schema, "properties": {"a": {"type": "integer"}}}, strict_view=True).valid({})
    assert valid_instances(schema, 1, count=40)
    assert target_violations({"type": "object", "properties": {"a": {"type": "array"}}}, Target.OPENAI) == [
        "properties/a: array without items"
    ]


@pytest.mark.parametrize(
    ("schema", "valid", "invalid"),
    [
        ({"type": "String"}, "x", 1),
        ({"type": "text"}, 1, None),  # an unknown type name: no constraint (so nothing is invalid)
        ({"type": "string", "nullable": True}, None, 1),
        ({"type": "integer", "minimum": 1, "exclusiveMinimum": True}, 2, 1),
        ({"type": "number", "maximum": 5, "exclusiveMaximum": False}, 5, 6),
        ({"type": "object", "properties": {"a": {"type": "string", "required": True}}}, {"a": "x"}, {}),
        ({"type": "array", "items": [{"type": "string"}], "additionalItems": False}, ["x"], ["x", "y"]),
        ({"type": "string", "minLength": -1, "pattern": 3}, "", 1),
        ({"type": "number", "multipleOf": 0, "minimum": "5"}, 1, "1"),
        ({"type": "object", "required": [1, "a"]}, {"a": 1}, {}),
        ({"$ref": "#/$defs/Missing", "type": "integer"}, 1, "x"),
        ({"anyOf": [], "type": "integer"}, 1, "x"),
    ],
)
def test_the_oracle_reads_legacy_and_broken_keywords(schema: Any, valid: Any, invalid: Any) -> None:
    oracle = Oracle(schema)
    assert oracle.valid(valid)
    if invalid is not None:
        assert not oracle.valid(invalid)


def test_closed_world_admits_no_undeclared_key() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
    assert Oracle(schema).valid({"a": 1, "b": 2})
    assert not Oracle(schema, closed_world=True).valid({"a": 1, "b": 2})
    assert Oracle(schema, closed_world=True).valid({"a": 1})
    # An `additionalProperties` of the wrong shape is no constraint, closed world or not.
    assert Oracle({**schema, "additionalProperties": None}, closed_world=True).valid({"b": 2})
