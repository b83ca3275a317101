"""Pass 2a: merge top-level `anyOf` / `oneOf` / `allOf` into one object schema.

Anthropic rejects them at the root ("input_schema does not support oneOf, allOf, or
anyOf at the top level"), OpenAI strict mode forbids a root `anyOf`, and Gemini knows
neither `oneOf` nor `allOf`. Tool arguments are always JSON objects, so the root can be
reduced to its effect on objects:

* an `anyOf`/`oneOf` becomes one object whose properties are the union of the branches'
  (a property declared by several branches accepts any of their schemas; a property
  that some open branch leaves unconstrained accepts anything), whose `required` is the
  intersection of the branches', and which is closed only if every branch is closed;
* an `allOf` becomes one object with every branch's properties (a property declared
  twice must satisfy both), the union of `required`, closed if any branch is closed;
* branches that cannot match an object (e.g. `type: "string"`) are dropped.

The result accepts every object the original accepted (it may accept more: a union of
objects loses the correlation between fields). Same-document `$ref` branches are
followed; a recursive one counts as unconstrained.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from ._common import (
    ANNOTATIONS,
    Ctx,
    JSONDict,
    conjoin_schemas,
    iter_str,
    resolve_pointer,
    union_schema,
)

ROOT_COMBINATORS: Final = ("anyOf", "oneOf", "allOf")
_MAX_SHAPE_DEPTH: Final = 16


@dataclass(slots=True)
class _Shape:
    """What a schema demands of an object: declared properties, required names, closure."""

    props: JSONDict = field(default_factory=dict)
    required: list[str] = field(default_factory=list)
    closed: bool = False


def has_root_combinator(schema: object) -> bool:
    return isinstance(schema, dict) and any(key in schema for key in ROOT_COMBINATORS)


def flatten_root(schema: object, ctx: Ctx, *, prune_required: bool) -> object:
    if not isinstance(schema, dict) or not has_root_combinator(schema):
        return schema
    shape = _shape_of(schema, schema, 0, ())
    found = [key for key in ROOT_COMBINATORS if key in schema]
    out: JSONDict = {}
    for key, value in schema.items():
        if key in ROOT_COMBINATORS or key in ("properties", "required", "$ref"):
            continue
        if key == "additionalProperties" and (shape is None or shape.closed):
            continue
        out[key] = value
    out["type"] = "object"
    if shape is None:
        ctx.note((), f"top-level {'/'.join(found)} admits no object; removed")
        props = schema.get("properties")
        kept: JSONDict = props if isinstance(props, dict) else {}
        out["properties"] = kept
        kept_required = [name for name in iter_str(schema.get("required")) if name in kept]
        if kept_required:
            out["required"] = kept_required
        return out
    out["properties"] = shape.props
    required = shape.required
    if prune_required:
        required = [name for name in required if name in shape.props]
    if required:
        out["required"] = required
    if shape.closed:
        out["additionalProperties"] = False
    ctx.note((), f"top-level {'/'.join(found)} merged into one object schema")
    return out


def _shape_of(schema: object, root: JSONDict, depth: int, refs: tuple[str, ...]) -> _Shape | None:
    """The object constraints of `schema`, or None when it rejects every object."""
    if schema is False:
        return None
    if not isinstance(schema, dict) or depth > _MAX_SHAPE_DEPTH:
        return _Shape()
    type_value = schema.get("type")
    if isinstance(type_value, str) and type_value != "object":
        return None
    if isinstance(type_value, list) and "object" not in type_value:
        return None

    props = schema.get("properties")
    additional = schema.get("additionalProperties")
    shape = _Shape(
        props=dict(props) if isinstance(props, dict) else {},
        required=list(dict.fromkeys(iter_str(schema.get("required")))),
        closed=additional is False,
    )

    ref = schema.get("$ref")
    if isinstance(ref, str) and ref not in refs:
        target = resolve_pointer(root, ref)
        if isinstance(target, dict | bool):
            part = _shape_of(target, root, depth + 1, (*refs, ref))
            if part is None:
                return None
            shape = _conjoin(shape, part)

    for key in ("anyOf", "oneOf"):
        branches = schema.get(key)
        if isinstance(branches, list) and branches:
            shapes = [_shape_of(branch, root, depth + 1, refs) for branch in branches]
            alive = [s for s in shapes if s is not None]
            if not alive:
                return None
            shape = _conjoin(shape, _disjoin(alive))

    all_of = schema.get("allOf")
    if isinstance(all_of, list):
        for branch in all_of:
            part = _shape_of(branch, root, depth + 1, refs)
            if part is None:
                return None
            shape = _conjoin(shape, part)
    return shape


def _disjoin(shapes: list[_Shape]) -> _Shape:
    names: list[str] = []
    for shape in shapes:
        for name in shape.props:
            if name not in names:
                names.append(name)
    props: JSONDict = {}
    for name in names:
        declared = [shape.props[name] for shape in shapes if name in shape.props]
        unconstrained = any(name not in shape.props and not shape.closed for shape in shapes)
        if unconstrained:
            props[name] = _annotations_only(declared)
        else:
            props[name] = union_schema(declared)
    first = shapes[0]
    required = [name for name in first.required if all(name in shape.required for shape in shapes[1:])]
    return _Shape(props=props, required=required, closed=all(shape.closed for shape in shapes))


def _conjoin(a: _Shape, b: _Shape) -> _Shape:
    props = dict(a.props)
    for name, schema in b.props.items():
        props[name] = conjoin_schemas(props[name], schema) if name in props else schema
    required = list(a.required)
    for name in b.required:
        if name not in required:
            required.append(name)
    return _Shape(props=props, required=required, closed=a.closed or b.closed)


def _annotations_only(declared: list[object]) -> JSONDict:
    """An accept-anything schema that keeps the first description as a hint."""
    for schema in declared:
        if isinstance(schema, dict):
            kept = {key: schema[key] for key in ("description",) if key in schema and key in ANNOTATIONS}
            if kept:
                return kept
    return {}
