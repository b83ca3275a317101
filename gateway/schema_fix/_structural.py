"""Pass 1: structural repairs (every target).

Turns shapes that are not valid JSON Schema, or that a provider's meta-validation
rejects, into equivalent or wider valid shapes. Rules that only some targets need are
switched by :class:`StructuralRules`.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

from ._common import (
    ANNOTATIONS,
    KNOWN_TYPES,
    MAX_DEPTH,
    SCHEMA_KEYWORDS,
    SCHEMA_LIST_KEYWORDS,
    SCHEMA_MAP_KEYWORDS,
    Ctx,
    Edit,
    JSONDict,
    Path,
    describe,
    resolve_pointer,
    split_type_union,
    union_schema,
)

_OTHER_SUBSCHEMA_KEYS: Final = frozenset((*SCHEMA_KEYWORDS, *SCHEMA_LIST_KEYWORDS, *SCHEMA_MAP_KEYWORDS))


# Keys a node may carry and still need no structural repair when its `type` is one known
# name other than "array" (whose `items` may be missing).
_LEAF_KEYS: Final = frozenset(
    {
        "type",
        "description",
        "title",
        "enum",
        "const",
        "default",
        "examples",
        "format",
        "pattern",
        "minLength",
        "maxLength",
        "minimum",
        "maximum",
        "multipleOf",
        "$comment",
        "deprecated",
        "readOnly",
        "writeOnly",
        "nullable",
        "$ref",
    }
)


# The shape the 2020-12 meta-schema demands of non-schema keyword values.
_VALUE_KINDS: Final = MappingProxyType(
    {
        **dict.fromkeys(
            ("title", "description", "pattern", "format", "$comment", "$id", "$schema", "$anchor", "$ref"),
            "string",
        ),
        **dict.fromkeys(("maximum", "exclusiveMaximum", "minimum", "exclusiveMinimum"), "number"),
        "multipleOf": "positive",
        **dict.fromkeys(
            (
                "maxLength",
                "minLength",
                "maxItems",
                "minItems",
                "maxContains",
                "minContains",
                "maxProperties",
                "minProperties",
            ),
            "count",
        ),
        **dict.fromkeys(("uniqueItems", "readOnly", "writeOnly", "deprecated"), "boolean"),
        "enum": "array",
        "examples": "array",
        "dependentRequired": "names",
    }
)


def _value_ok(key: str, value: object) -> bool:
    kind = _VALUE_KINDS.get(key)
    if kind is None:
        return True
    if kind == "string":
        return isinstance(value, str)
    if kind == "array":
        return isinstance(value, list)
    if kind == "boolean":
        return isinstance(value, bool)
    if isinstance(value, bool):
        return False
    if kind == "number":
        return isinstance(value, int | float)
    if kind == "positive":
        return isinstance(value, int | float) and value > 0
    if kind == "count":
        return isinstance(value, int | float) and float(value).is_integer() and value >= 0
    # dependentRequired: an object of string lists
    return isinstance(value, dict) and all(isinstance(names, list) for names in value.values())


def _clean_leaf(node: JSONDict) -> bool:
    """A node with only leaf keywords that needs no repair (checked without copying)."""
    leaf_type = node.get("type", "string")
    if type(leaf_type) is not str or leaf_type not in KNOWN_TYPES or leaf_type == "array":
        return False
    return all(_value_ok(key, value) for key, value in node.items())


@dataclass(frozen=True, slots=True)
class StructuralRules:
    # `"type": [..]` -> `anyOf` of single types.
    type_lists_to_any_of: bool
    # `"type": "array"` without `items` gets `items: {}`.
    add_array_items: bool
    # `required` names that `properties` does not declare are removed.
    prune_required: bool
    # The root object always carries `properties` (`{}` when absent).
    root_properties: bool
    # Draft-7 tuple `items: [..]`: True keeps exact 2020-12 `prefixItems` + `items` for the
    # rest; False also widens `items` to the union of all positions (for validators that
    # ignore `prefixItems`).
    exact_tuples: bool


def repair_root(schema: object, rules: StructuralRules, ctx: Ctx) -> object:
    """Repair a tool's parameter schema; the root must end up an object schema."""
    if not isinstance(schema, dict):
        ctx.note((), f"parameters schema is {describe(schema)}; replaced by an empty object schema")
        out: JSONDict = {"type": "object", "properties": {}}
        return out

    ed = Edit(schema)
    _inline_root_ref(ed, schema, ctx)

    root_type = ed.get("type")
    if root_type != "object":
        if isinstance(root_type, list) and "object" in root_type:
            ctx.note((), f"root type list {root_type!r} reduced to 'object' (tool arguments are objects)")
        elif "type" not in ed:
            ctx.note((), "root has no type; set to 'object'")
        else:
            ctx.note((), f"root type {describe(root_type)} replaced by 'object' (tool arguments are objects)")
        if "type" in ed:
            ed.set("type", "object")
        else:
            typed: JSONDict = {"type": "object"}
            typed.update(ed.data)
            ed.replace(typed)
    if rules.root_properties and "properties" not in ed:
        ctx.note((), "root object without properties; added properties: {}")
        ed.set("properties", {})
    return _Structural(rules, ctx).node(ed.result(), (), 0)


def _inline_root_ref(ed: Edit, schema: JSONDict, ctx: Ctx) -> None:
    """A root that is only a pointer (`{"$ref": "#/$defs/Args", "$defs": ...}`) is inlined.

    Only done when the root declares neither `type` nor `properties` (so it has to be
    touched anyway) and the target's keywords do not conflict with the root's own.
    """
    ref = schema.get("$ref")
    if not isinstance(ref, str) or "type" in schema or "properties" in schema:
        return
    target = resolve_pointer(schema, ref)
    if not isinstance(target, dict) or target is schema:
        return
    for key, value in schema.items():
        if key == "$ref" or key in ANNOTATIONS:
            continue
        if key in target and target[key] != value:
            return
    merged: JSONDict = dict(target)
    for key, value in schema.items():
        if key != "$ref":
            merged[key] = value
    ed.replace(merged)
    ctx.note((), f"root $ref {ref!r} inlined")


class _Structural:
    __slots__ = ("ctx", "exact", "rules")

    def __init__(self, rules: StructuralRules, ctx: Ctx) -> None:
        self.rules = rules
        self.ctx = ctx
        # True below `not`, `if` and `oneOf` branches: there, accepting more can reject
        # more at the top, so only repairs that keep the meaning exactly are allowed.
        self.exact = False

    def node(self, node: object, path: Path, depth: int) -> object:
        if isinstance(node, bool):
            return node
        if not isinstance(node, dict):
            self.ctx.note(path, f"{describe(node)} is not a schema; replaced by {{}} (accepts anything)")
            return {}
        if depth > MAX_DEPTH:
            self.ctx.note(path, "nesting too deep; left unchanged")
            return node
        keys = node.keys()
        if keys <= _LEAF_KEYS and _clean_leaf(node):
            return node
        # Membership is tested on the input's key view (a C-level lookup); handlers read
        # and write through `ed`. Most nodes have two or three keys, so most tests miss.
        ed = Edit(node)
        if "type" in keys:
            self._type(ed, path)
        if "exclusiveMinimum" in keys or "exclusiveMaximum" in keys:
            self._exclusive_bounds(ed, path)
        self._keyword_values(ed, path)
        hoisted = self._properties(ed, path, depth) if "properties" in keys else []
        if "required" in keys or hoisted:
            self._required(ed, path, hoisted)
        if "items" in keys or "prefixItems" in keys:
            self._items(ed, path, depth)
        if not keys.isdisjoint(_OTHER_SUBSCHEMA_KEYS):
            for key in SCHEMA_KEYWORDS:
                if key in keys:
                    self._subschema(ed, key, path, depth)
            for key in SCHEMA_LIST_KEYWORDS:
                if key in keys:
                    self._schema_list(ed, key, path, depth)
            for key in SCHEMA_MAP_KEYWORDS:
                if key in keys:
                    self._schema_map(ed, key, path, depth)
        data = ed.data
        if self.rules.prune_required and "required" in data and "properties" in data:
            self._undeclared_required(ed, path)
        type_value = data.get("type")
        if type_value is None:
            return ed.result()
        if self.rules.add_array_items and type_value == "array" and "items" not in data:
            self.ctx.note(path, "array without items; added items: {}")
            ed.set("items", {})
        if self.rules.type_lists_to_any_of and isinstance(type_value, list):
            types = [t for t in type_value if isinstance(t, str)]
            return split_type_union(
                ed.result(), types, add_array_items=self.rules.add_array_items, path=path, ctx=self.ctx
            )
        return ed.result()

    # -- keywords ---------------------------------------------------------------------

    def _type(self, ed: Edit, path: Path) -> None:
        if "type" not in ed:
            return
        value = ed.get("type")
        if isinstance(value, str):
            if value in KNOWN_TYPES:
                return
            lowered = value.lower()
            if lowered not in KNOWN_TYPES:
                self.ctx.note(path, f"unknown type {value!r} removed")
                ed.pop("type")
            elif lowered != value:
                self.ctx.note(path, f"type {value!r} lower-cased")
                ed.set("type", lowered)
            return
        if isinstance(value, list):
            cleaned: list[str] = []
            for item in value:
                if isinstance(item, str) and item.lower() in KNOWN_TYPES and item.lower() not in cleaned:
                    cleaned.append(item.lower())
            if not cleaned:
                self.ctx.note(path, f"type list {value!r} names no known type; removed")
                ed.pop("type")
            elif len(cleaned) == 1:
                self.ctx.note(path, f"single-entry type list {value!r} replaced by {cleaned[0]!r}")
                ed.set("type", cleaned[0])
            elif cleaned != value:
                self.ctx.note(path, f"type list {value!r} cleaned to {cleaned!r}")
                ed.set("type", cleaned)
            return
        self.ctx.note(path, f"type {describe(value)} removed")
        ed.pop("type")

    def _keyword_values(self, ed: Edit, path: Path) -> None:
        """Drop validation keywords whose value has the wrong shape (they constrain nothing)."""
        bad = [key for key, value in ed.data.items() if not _value_ok(key, value)]
        for key in bad:
            self.ctx.note(path, f"{key}: {describe(ed.pop(key))} is not a valid value; removed")

    def _exclusive_bounds(self, ed: Edit, path: Path) -> None:
        # Draft 4 wrote `exclusiveMinimum: true` next to `minimum`; later drafts (and the
        # providers' validators) want the bound itself.
        for flag, bound in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
            value = ed.get(flag)
            if not isinstance(value, bool):
                continue
            limit = ed.get(bound)
            if value and isinstance(limit, int | float) and not isinstance(limit, bool):
                ed.pop(bound)
                ed.set(flag, limit)
                self.ctx.note(path, f"draft-4 {flag}: true rewritten as {flag}: {limit!r}")
            else:
                ed.pop(flag)
                self.ctx.note(path, f"boolean {flag}: {describe(value)} removed")

    def _properties(self, ed: Edit, path: Path, depth: int) -> list[str]:
        """Repair `properties`; returns names whose schema carried draft-3 `required: true`."""
        if "properties" not in ed:
            return []
        props = ed.get("properties")
        if not isinstance(props, dict):
            self.ctx.note(path, f"properties {describe(props)} replaced by {{}}")
            ed.set("properties", {})
            return []
        hoisted = [
            name for name, child in props.items() if isinstance(child, dict) and child.get("required") is True
        ]
        ed.fix_each("properties", props, path, lambda child, at: self.node(child, at, depth + 1))
        return hoisted

    def _required(self, ed: Edit, path: Path, hoisted: list[str]) -> None:
        present = "required" in ed
        value = ed.get("required")
        names: list[str]
        if not present:
            names = []
        elif isinstance(value, list):
            names = []
            for item in value:
                if isinstance(item, str) and item not in names:
                    names.append(item)
            if len(names) != len(value):
                self.ctx.note(path, "required: non-string or duplicate entries removed")
        else:
            if isinstance(value, bool):
                self.ctx.note(path, f"draft-3 boolean required: {describe(value)} removed")
            else:
                self.ctx.note(path, f"required: {describe(value)} removed")
            names = []
        for name in hoisted:
            if name not in names:
                names.append(name)
                self.ctx.note(path, f"{name!r} added to required (draft-3 required: true on the property)")

        if present and isinstance(value, list) and names == value:
            return
        if names:
            ed.set("required", names)
        elif present:
            ed.pop("required")

    def _undeclared_required(self, ed: Edit, path: Path) -> None:
        props = ed.get("properties")
        names = ed.get("required")
        if not isinstance(props, dict) or not isinstance(names, list):
            return
        absent = [name for name in names if isinstance(name, str) and name not in props]
        if not absent:
            return
        if not self.exact:
            kept = [name for name in names if name in props]
            self.ctx.note(path, f"required names not in properties removed: {', '.join(absent)}")
            if kept:
                ed.set("required", kept)
            else:
                ed.pop("required")
            return
        if "patternProperties" in ed:
            return
        # Exact alternative: declare each name with the schema that applied to it anyway.
        extra = ed.get("additionalProperties")
        declared: object = extra if isinstance(extra, dict | bool) else {}
        new_props = dict(props)
        for name in absent:
            new_props[name] = declared
        ed.set("properties", new_props)
        self.ctx.note(path, f"required names not in properties declared: {', '.join(absent)}")

    def _items(self, ed: Edit, path: Path, depth: int) -> None:
        if "prefixItems" in ed:
            prefix = ed.get("prefixItems")
            if isinstance(prefix, list) and prefix:
                self._schema_list(ed, "prefixItems", path, depth)
            else:
                self.ctx.note(path, f"prefixItems {describe(prefix)} removed")
                ed.pop("prefixItems")
        if "items" not in ed:
            return
        items = ed.get("items")
        if isinstance(items, dict | bool):
            fixed = self.node(items, (*path, "items"), depth + 1)
            if fixed is not items:
                ed.set("items", fixed)
            return
        if not isinstance(items, list):
            self.ctx.note(path, f"items {describe(items)} removed")
            ed.pop("items")
            return
        self._tuple_items(ed, items, path, depth)

    def _tuple_items(self, ed: Edit, items: list[object], path: Path, depth: int) -> None:
        # Draft-7 tuple form `items: [A, B]` (+ `additionalItems`) is not valid 2020-12.
        positions = [self.node(item, (*path, "items", str(i)), depth + 1) for i, item in enumerate(items)]
        rest: object = True
        if "additionalItems" in ed:
            extra = ed.pop("additionalItems")
            if isinstance(extra, dict | bool):
                rest = self.node(extra, (*path, "additionalItems"), depth + 1)
        if positions and "prefixItems" not in ed:
            ed.set("prefixItems", positions)
        if self.rules.exact_tuples or self.exact:
            if rest is True:
                ed.pop("items")
            else:
                ed.set("items", rest)
            self.ctx.note(path, "tuple items rewritten as prefixItems")
        else:
            tail = [] if rest is False else [rest]
            ed.set("items", union_schema([*positions, *tail]) if positions or tail else {})
            self.ctx.note(path, "tuple items rewritten as prefixItems plus items accepting any position")
        if rest is False:
            bound = ed.get("maxItems")
            if not (isinstance(bound, int) and not isinstance(bound, bool) and bound <= len(positions)):
                ed.set("maxItems", len(positions))

    def _subschema(self, ed: Edit, key: str, path: Path, depth: int) -> None:
        value = ed.get(key)
        if isinstance(value, dict | bool):
            saved = self.exact
            self.exact = saved or key in ("not", "if")
            fixed = self.node(value, (*path, key), depth + 1)
            self.exact = saved
            if fixed is not value:
                ed.set(key, fixed)
            return
        self.ctx.note(path, f"{key} {describe(value)} removed")
        ed.pop(key)

    def _schema_list(self, ed: Edit, key: str, path: Path, depth: int) -> None:
        value = ed.get(key)
        if not isinstance(value, list) or not value:
            self.ctx.note(path, f"{key} {describe(value)} removed")
            ed.pop(key)
            return
        saved = self.exact
        self.exact = saved or key == "oneOf"
        ed.fix_each(key, value, path, lambda child, at: self.node(child, at, depth + 1))
        self.exact = saved

    def _schema_map(self, ed: Edit, key: str, path: Path, depth: int) -> None:
        value = ed.get(key)
        if not isinstance(value, dict):
            self.ctx.note(path, f"{key} {describe(value)} removed")
            ed.pop(key)
            return
        ed.fix_each(key, value, path, lambda child, at: self.node(child, at, depth + 1))


__all__ = ["StructuralRules", "repair_root"]
