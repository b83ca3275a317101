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
import re
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.schema_fix import RepairResult, Target, repair_schema
from gateway.schema_fix._gemini import GEMINI_KEYWORDS
from gateway.schema_fix._strict import STRICT_KEYWORDS

SETTINGS = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

TYPES = ["string", "integer", "number", "boolean", "null", "object", "array"]
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
# a small validator for the generated subset


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return bool(a == b)


def _type_ok(value: Any, type_name: str) -> bool:
    if type_name == "null":
        return value is None
    if type_name == "boolean":
        return isinstance(value, bool)
    if isinstance(value, bool):
        return False
    if type_name == "integer":
        return isinstance(value, int) or (isinstance(value, float) and value.is_integer())
    if type_name == "number":
        return isinstance(value, int | float)
    if type_name == "string":
        return isinstance(value, str)
    if type_name == "array":
        return isinstance(value, list)
    if type_name == "object":
        return isinstance(value, dict)
    return True


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


class Validator:
    """Two switches for OpenAI strict's convention:

    `strict_view`: a missing property counts as present-with-null (for the repaired schema);
    `closed_world`: an object without `additionalProperties` admits no undeclared key (for
    the original: strict mode reads absent `additionalProperties` as false).
    """

    def __init__(self, root: Any, *, strict_view: bool = False, closed_world: bool = False) -> None:
        self.root = root
        self.strict_view = strict_view
        self.closed_world = closed_world

    def valid(self, value: Any, schema: Any, depth: int = 0) -> bool:
        if depth > 40:
            return True
        if schema is True or not isinstance(schema, dict | bool):
            return True
        if schema is False:
            return False
        if schema.get("nullable") is True and value is None:
            return True
        ref = schema.get("$ref")
        if isinstance(ref, str):
            target = _resolve(self.root, ref)
            if isinstance(target, dict | bool) and not self.valid(value, target, depth + 1):
                return False
        type_value = schema.get("type")
        if isinstance(type_value, str) and type_value.lower() in TYPES:
            if not _type_ok(value, type_value.lower()):
                return False
        elif isinstance(type_value, list):
            known = [t.lower() for t in type_value if isinstance(t, str) and t.lower() in TYPES]
            if known and not any(_type_ok(value, t) for t in known):
                return False
        enum = schema.get("enum")
        if isinstance(enum, list) and not any(_same(value, option) for option in enum):
            return False
        if "const" in schema and not _same(value, schema["const"]):
            return False
        if not self._numbers(value, schema) or not self._strings(value, schema):
            return False
        if isinstance(value, list) and not self._array(value, schema, depth):
            return False
        if isinstance(value, dict) and not self._object(value, schema, depth):
            return False
        for key in ("anyOf", "oneOf", "allOf"):
            branches = schema.get(key)
            if not isinstance(branches, list) or not branches:
                continue
            hits = sum(1 for branch in branches if self.valid(value, branch, depth + 1))
            if key == "anyOf" and hits == 0:
                return False
            if key == "oneOf" and hits != 1:
                return False
            if key == "allOf" and hits != len(branches):
                return False
        condition = schema.get("if")
        if isinstance(condition, dict | bool):
            branch = schema.get("then") if self.valid(value, condition, depth + 1) else schema.get("else")
            if isinstance(branch, dict | bool) and not self.valid(value, branch, depth + 1):
                return False
        negated = schema.get("not")
        return not (isinstance(negated, dict | bool) and self.valid(value, negated, depth + 1))

    @staticmethod
    def _numbers(value: Any, schema: dict[str, Any]) -> bool:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return True

        def num(key: str) -> float | None:
            bound = schema.get(key)
            if isinstance(bound, bool) or not isinstance(bound, int | float):
                return None
            return float(bound)

        low, high = num("minimum"), num("maximum")
        ex_low, ex_high = num("exclusiveMinimum"), num("exclusiveMaximum")
        if schema.get("exclusiveMinimum") is True and low is not None:
            ex_low, low = low, None
        if schema.get("exclusiveMaximum") is True and high is not None:
            ex_high, high = high, None
        return not (
            (low is not None and value < low)
            or (high is not None and value > high)
            or (ex_low is not None and value <= ex_low)
            or (ex_high is not None and value >= ex_high)
        )

    @staticmethod
    def _strings(value: Any, schema: dict[str, Any]) -> bool:
        if not isinstance(value, str):
            return True
        low, high = schema.get("minLength"), schema.get("maxLength")
        if isinstance(low, int) and len(value) < low:
            return False
        if isinstance(high, int) and len(value) > high:
            return False
        pattern = schema.get("pattern")
        return not (isinstance(pattern, str) and re.search(pattern, value) is None)

    def _array(self, value: list[Any], schema: dict[str, Any], depth: int) -> bool:
        low, high = schema.get("minItems"), schema.get("maxItems")
        if isinstance(low, int) and not isinstance(low, bool) and len(value) < low:
            return False
        if isinstance(high, int) and not isinstance(high, bool) and len(value) > high:
            return False
        prefix = schema.get("prefixItems")
        items = schema.get("items")
        if isinstance(prefix, list):
            for item, sub in zip(value, prefix, strict=False):
                if not self.valid(item, sub, depth + 1):
                    return False
            rest = value[len(prefix) :]
            if isinstance(items, dict | bool):
                return all(self.valid(item, items, depth + 1) for item in rest)
            return True
        if isinstance(items, list):
            for item, sub in zip(value, items, strict=False):
                if not self.valid(item, sub, depth + 1):
                    return False
            extra = schema.get("additionalItems")
            if isinstance(extra, dict | bool):
                return all(self.valid(item, extra, depth + 1) for item in value[len(items) :])
            return True
        if isinstance(items, dict | bool):
            return all(self.valid(item, items, depth + 1) for item in value)
        return True

    def _object(self, value: dict[str, Any], schema: dict[str, Any], depth: int) -> bool:
        props = schema.get("properties")
        props = props if isinstance(props, dict) else {}
        listed = schema.get("required")
        required = [name for name in listed if isinstance(name, str)] if isinstance(listed, list) else []
        required += [
            name for name, sub in props.items() if isinstance(sub, dict) and sub.get("required") is True
        ]
        for name in required:
            if name in value:
                continue
            if self.strict_view and name in props and self.valid(None, props[name], depth + 1):
                continue
            return False
        patterns = schema.get("patternProperties")
        patterns = patterns if isinstance(patterns, dict) else {}
        dependent = schema.get("dependentSchemas")
        if isinstance(dependent, dict):
            for name, sub in dependent.items():
                if name in value and not self.valid(value, sub, depth + 1):
                    return False
        for name, item in value.items():
            if name in props:
                if not self.valid(item, props[name], depth + 1):
                    return False
                continue
            matched = [sub for pattern, sub in patterns.items() if re.search(pattern, name)]
            if matched:
                if not all(self.valid(item, sub, depth + 1) for sub in matched):
                    return False
                continue
            extra = schema.get("additionalProperties", not self.closed_world)
            if isinstance(extra, dict | bool) and not self.valid(item, extra, depth + 1):
                return False
        return True


# --------------------------------------------------------------------------------------
# instances drawn from a schema (candidates; the validator filters them)


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
    validator = Validator(schema, closed_world=closed)
    sampler = Sampler(schema, random.Random(seed), closed=closed)
    found = []
    for _ in range(count):
        candidate = sampler.value(schema)
        # Tool arguments are JSON objects.
        if isinstance(candidate, dict) and validator.valid(candidate, schema):
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


def _fake_validators() -> tuple[Any, Any] | None:
    try:
        from fake_providers.validation.anthropic_schema import anthropic_input_schema_error
        from fake_providers.validation.openai_schema import openai_tool_schema_error
    except ImportError:
        return None
    return openai_tool_schema_error, anthropic_input_schema_error


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
        repaired = Validator(result.schema, strict_view=strict_view)
        for instance in valid_instances(original, seed, closed=strict_view):
            assert repaired.valid(instance, result.schema), (instance, result.schema)
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
    validators = _fake_validators()
    if validators is None:
        pytest.skip("fake_providers.validation.openai_schema / anthropic_schema not available yet")
    openai_error, anthropic_error = validators
    assert anthropic_error(repair_schema(schema, Target.ANTHROPIC).schema) is None
    for target in (Target.OPENAI, Target.OPENAI_COMPATIBLE):
        assert openai_error(repair_schema(schema, target).schema, strict=False) is None
    strict = repair_schema(schema, Target.OPENAI_STRICT)
    assert openai_error(strict.schema, strict=strict.strict_ok) is None


def test_validator_and_sampler_can_fail() -> None:
    """The helpers above are not vacuous: they reject and they find instances."""
    schema = {"type": "object", "properties": {"a": {"type": "integer", "minimum": 2}}, "required": ["a"]}
    validator = Validator(schema)
    assert validator.valid({"a": 2}, schema)
    assert not validator.valid({"a": 1}, schema)
    assert not validator.valid({}, schema)
    assert not validator.valid({"a": "2"}, schema)
    assert Validator(schema, strict_view=True).valid(
        {}, {**schema, "properties": {"a": {"type": ["integer", "null"]}}}
    )
    assert valid_instances(schema, 1, count=40)
    assert target_violations({"type": "object", "properties": {"a": {"type": "array"}}}, Target.OPENAI) == [
        "properties/a: array without items"
    ]
