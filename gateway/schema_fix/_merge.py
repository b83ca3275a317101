"""Folding `allOf` into its parent for targets that cannot express it (OpenAI strict, Gemini).

The fold is keyword by keyword and exact: a keyword present in only one part is kept;
a keyword present in several is combined the way a conjunction demands (type
intersection, enum intersection, tighter bounds, union of `required`, property schemas
conjoined). A keyword pair that cannot be combined exactly makes the fold fail, and
the caller decides what to do (strict: not expressible; Gemini: drop, which widens).
"""

from __future__ import annotations

from typing import Final

from ._common import ANNOTATIONS, JSONDict, conjoin_schemas, is_any_schema, resolve_pointer

_LOWER_BOUNDS: Final = frozenset({"minimum", "exclusiveMinimum", "minItems", "minLength", "minProperties"})
_UPPER_BOUNDS: Final = frozenset({"maximum", "exclusiveMaximum", "maxItems", "maxLength", "maxProperties"})
_SUBSCHEMAS: Final = frozenset({"items", "additionalItems", "contains", "propertyNames"})
_MAX_REF_HOPS: Final = 8


def fold_all_of(node: JSONDict, root: object) -> JSONDict | None:
    branches = node.get("allOf")
    if not isinstance(branches, list):
        return None
    result: JSONDict = {key: value for key, value in node.items() if key != "allOf"}
    for branch in branches:
        resolved = _resolve(branch, root)
        if resolved is None:
            return None
        if resolved is True:
            continue
        if not isinstance(resolved, dict):
            return None
        merged = _conjoin_keywords(result, resolved)
        if merged is None:
            return None
        result = merged
    return result


def _resolve(branch: object, root: object) -> object:
    """Follow a `$ref` branch (siblings win over the target's keywords); None if it fails."""
    hops = 0
    while isinstance(branch, dict) and "$ref" in branch:
        ref = branch["$ref"]
        target = resolve_pointer(root, ref) if isinstance(ref, str) else None
        hops += 1
        if hops > _MAX_REF_HOPS or target is None:
            return None
        if target is True:
            target = {}
        if not isinstance(target, dict):
            return None
        merged = dict(target)
        for key, value in branch.items():
            if key != "$ref":
                if key in merged and merged[key] != value and key not in ANNOTATIONS:
                    return None
                merged[key] = value
        branch = merged
    if branch is False:
        return None
    return branch


def _types(value: object) -> list[str] | None:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return [v for v in value if isinstance(v, str)]
    return None


def _intersect_types(a: object, b: object) -> object | None:
    ta, tb = _types(a), _types(b)
    if ta is None or tb is None:
        return None
    out: list[str] = []
    for t in ta:
        if t in tb or (t == "integer" and "number" in tb):
            candidate = t
        elif t == "number" and "integer" in tb:
            candidate = "integer"
        else:
            continue
        if candidate not in out:
            out.append(candidate)
    if not out:
        return None
    return out[0] if len(out) == 1 else out


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _conjoin_keywords(a: JSONDict, b: JSONDict) -> JSONDict | None:
    out = dict(a)
    for key, value in b.items():
        if key not in out:
            out[key] = value
            continue
        current = out[key]
        if current == value and type(current) is type(value):
            continue
        if key in ANNOTATIONS:
            continue
        combined = _combine(key, current, value)
        if combined is None:
            return None
        out[key] = combined
    return out


def _combine(key: str, current: object, value: object) -> object | None:
    if key == "type":
        return _intersect_types(current, value)
    if key == "properties":
        if not isinstance(current, dict) or not isinstance(value, dict):
            return None
        props = dict(current)
        for name, schema in value.items():
            props[name] = conjoin_schemas(props[name], schema) if name in props else schema
        return props
    if key == "required":
        if not isinstance(current, list) or not isinstance(value, list):
            return None
        return [*current, *(name for name in value if name not in current)]
    if key == "additionalProperties":
        if current is False or value is False:
            return False
        if is_any_schema(current):
            return value
        if is_any_schema(value):
            return current
        return conjoin_schemas(current, value)
    if key == "enum":
        if not isinstance(current, list) or not isinstance(value, list):
            return None
        common = [item for item in current if item in value]
        return common or None
    if key in _LOWER_BOUNDS or key in _UPPER_BOUNDS:
        x, y = _number(current), _number(value)
        if x is None or y is None:
            return None
        pick = max if key in _LOWER_BOUNDS else min
        return current if pick(x, y) == x else value
    if key in _SUBSCHEMAS:
        return conjoin_schemas(current, value)
    if key in ("$defs", "definitions"):
        if not isinstance(current, dict) or not isinstance(value, dict):
            return None
        defs = dict(current)
        for name, schema in value.items():
            if name in defs and defs[name] != schema:
                return None
            defs[name] = schema
        return defs
    return None
