"""Pass 2c: Gemini `functionDeclarations[].parameters` (a subset of OpenAPI 3.0's Schema object).

Input is the output of the structural pass with Gemini rules after the root merge.
Gemini's `Schema` proto rejects unknown keys, so the pass keeps an allow-list and
translates the rest:

* `$ref` is inlined from `$defs`/`definitions` (a recursive reference is unrolled
  :data:`REF_RECURSION_LIMIT` times, then replaced by a schema of the referenced type
  without further structure -- wider, so meaning is kept);
* `allOf` is folded when exactly possible, otherwise dropped (wider); `oneOf` becomes
  `anyOf` (wider); `const` becomes a one-value `enum`;
* a type list becomes one type plus `nullable: true`, or an `anyOf` of single types;
  a `{"type": "null"}` branch of an `anyOf` becomes `nullable: true`;
* `exclusiveMinimum`/`exclusiveMaximum` become `minimum`/`maximum` (exact for integers,
  wider otherwise); enums keep only string values (Gemini: "enum only allowed for
  STRING type") -- an enum with other values is dropped (wider);
* unsupported `format`s and every key outside the allow-list are removed (wider);
* a node without `type` (and without `anyOf`) gets the type its keywords imply; a node
  that implies none becomes a string. Both narrow what is accepted, so the result's
  `meaning_kept` is False then.
"""

from __future__ import annotations

from typing import Final

from ._common import (
    ANNOTATIONS,
    MAX_DEPTH,
    Ctx,
    Edit,
    JSONDict,
    Path,
    json_type_matches,
    resolve_pointer,
    split_type_union,
)
from ._merge import fold_all_of

GEMINI_KEYWORDS: Final = frozenset(
    {
        "type",
        "format",
        "title",
        "description",
        "nullable",
        "enum",
        "maxItems",
        "minItems",
        "properties",
        "required",
        "minProperties",
        "maxProperties",
        "minLength",
        "maxLength",
        "pattern",
        "example",
        "anyOf",
        "propertyOrdering",
        "default",
        "items",
        "minimum",
        "maximum",
    }
)
GEMINI_FORMATS: Final = {
    "string": frozenset({"enum", "date-time"}),
    "number": frozenset({"float", "double"}),
    "integer": frozenset({"int32", "int64"}),
}
REF_RECURSION_LIMIT: Final = 2
_MAX_EXPANSIONS: Final = 2000


class GeminiPass:
    __slots__ = ("ctx", "expansions", "noted_refs", "root")

    def __init__(self, root: object, ctx: Ctx) -> None:
        self.root = root
        self.ctx = ctx
        self.noted_refs: set[str] = set()
        self.expansions = 0

    def run(self) -> object:
        return self.node(self.root, (), 0, ())

    def node(self, node: object, path: Path, depth: int, refs: tuple[str, ...]) -> object:
        if node is True:
            node = {}
        elif node is False:
            self.ctx.note(path, "boolean schema false replaced by {} (Gemini has no equivalent)")
            node = {}
        if not isinstance(node, dict):
            return node
        if depth > MAX_DEPTH:
            self.ctx.narrowed(path, "nesting too deep; subtree replaced by a string")
            return {"type": "string"}
        if "$ref" in node:
            return self._ref(node, path, depth, refs)

        ed = Edit(node)
        if "allOf" in ed:
            folded = fold_all_of(ed.result(), self.root)
            if folded is not None:
                self.ctx.note(path, "allOf folded into its parent")
                return self.node(folded, path, depth + 1, refs)
            ed.pop("allOf")
            self.ctx.note(path, "allOf cannot be folded; removed (accepts more)")
        if "oneOf" in ed:
            one_of = ed.pop("oneOf")
            if "anyOf" in ed:
                self.ctx.note(path, "oneOf next to anyOf removed (accepts more)")
            else:
                ed.set("anyOf", one_of)
                self.ctx.note(path, "oneOf rewritten as anyOf")
        if "const" in ed:
            ed.set("enum", [ed.pop("const")])
            self.ctx.note(path, "const rewritten as a one-value enum")
        self._type_list(ed, path)
        # Branches first: one may only become `{"type": "null"}` once repaired.
        self._any_of_children(ed, path, depth, refs)
        if self._null_branches(ed, path):
            # The one remaining branch was merged into this node: run the node again.
            return self.node(ed.result(), path, depth + 1, refs)
        self._exclusive_bounds(ed, path)
        self._enum(ed, path)
        self._format(ed, path)
        dropped = [key for key in ed.data if key not in GEMINI_KEYWORDS]
        for key in dropped:
            ed.pop(key)
        if dropped:
            self.ctx.note(path, f"keywords Gemini does not know removed: {', '.join(dropped)}")
        if "type" not in ed and "anyOf" not in ed:
            self._infer_type(ed, path)
        if ed.get("type") == "array" and "items" not in ed:
            ed.set("items", {})
        self._children(ed, path, depth, refs)
        return ed.result()

    def _ref(self, node: JSONDict, path: Path, depth: int, refs: tuple[str, ...]) -> object:
        ref = node["$ref"]
        siblings = {key: value for key, value in node.items() if key != "$ref"}
        target = resolve_pointer(self.root, ref) if isinstance(ref, str) else None
        if not isinstance(target, dict | bool) or not isinstance(ref, str):
            self.ctx.note(path, f"$ref {ref!r} does not resolve; removed (accepts more)")
            return self.node(siblings, path, depth + 1, refs)
        body: JSONDict = target if isinstance(target, dict) else {}
        self.expansions += 1
        if refs.count(ref) >= REF_RECURSION_LIMIT or self.expansions > _MAX_EXPANSIONS:
            body = _stub(body)
            self.ctx.note(path, f"recursive $ref {ref!r} cut off after {REF_RECURSION_LIMIT} levels")
        elif ref not in self.noted_refs:
            self.noted_refs.add(ref)
            self.ctx.note(path, f"$ref {ref!r} inlined")
        merged = dict(body)
        merged.update(siblings)
        return self.node(merged, path, depth + 1, (*refs, ref))

    def _type_list(self, ed: Edit, path: Path) -> None:
        type_value = ed.get("type")
        if not isinstance(type_value, list):
            return
        types = [t for t in type_value if isinstance(t, str)]
        non_null = [t for t in types if t != "null"]
        if len(non_null) != len(types):
            ed.set("nullable", True)
        if len(non_null) == 1:
            ed.set("type", non_null[0])
            self.ctx.note(path, f"type list {type_value!r} rewritten as {non_null[0]!r} with nullable")
            return
        if not non_null:
            ed.set("type", "null")
            return
        split = split_type_union(ed.result(), non_null, add_array_items=True, path=path, ctx=self.ctx)
        ed.replace(split)

    def _null_branches(self, ed: Edit, path: Path) -> bool:
        """Turn `{"type": "null"}` branches into `nullable`; True when the node was rebuilt."""
        any_of = ed.get("anyOf")
        if not isinstance(any_of, list):
            return False
        rest = [branch for branch in any_of if not _is_null_schema(branch)]
        if len(rest) == len(any_of):
            return False
        ed.set("nullable", True)
        self.ctx.note(path, "null branch of anyOf rewritten as nullable")
        if not rest:
            ed.pop("anyOf")
            ed.set("type", "null")
            return False
        only = rest[0]
        if len(rest) == 1 and isinstance(only, dict) and not any(key in ed for key in only):
            merged: JSONDict = {key: value for key, value in ed.data.items() if key != "anyOf"}
            merged.update(only)
            ed.replace(merged)
            return True
        ed.set("anyOf", rest)
        return False

    def _exclusive_bounds(self, ed: Edit, path: Path) -> None:
        for flag, bound, step in (("exclusiveMinimum", "minimum", 1), ("exclusiveMaximum", "maximum", -1)):
            if flag not in ed:
                continue
            value = ed.pop(flag)
            if isinstance(value, bool) or not isinstance(value, int | float):
                continue
            exact = ed.get("type") == "integer" and float(value).is_integer()
            limit: int | float = int(value) + step if exact else value
            existing = ed.get(bound)
            if isinstance(existing, int | float) and not isinstance(existing, bool):
                tighter = max(existing, limit) if step > 0 else min(existing, limit)
                limit = tighter
            ed.set(bound, limit)
            how = "exactly" if exact else "(accepts the bound itself)"
            self.ctx.note(path, f"{flag} rewritten as {bound} {how}")

    def _enum(self, ed: Edit, path: Path) -> None:
        enum = ed.get("enum")
        if "enum" not in ed:
            return
        if not isinstance(enum, list):
            ed.pop("enum")
            return
        values = [value for value in enum if value is not None]
        if len(values) != len(enum):
            ed.set("nullable", True)
        type_value = ed.get("type")
        if isinstance(type_value, str) and type_value != "string":
            values = [value for value in values if json_type_matches(value, type_value)]
        if values and all(isinstance(value, str) for value in values):
            if values != enum:
                ed.set("enum", values)
            if "type" not in ed:
                ed.set("type", "string")
                self.ctx.note(path, "typeless string enum given type 'string'")
            return
        ed.pop("enum")
        self.ctx.note(path, "enum with non-string values removed (Gemini enums are strings; accepts more)")

    def _format(self, ed: Edit, path: Path) -> None:
        if "format" not in ed:
            return
        fmt = ed.get("format")
        type_value = ed.get("type")
        allowed = GEMINI_FORMATS.get(type_value, frozenset()) if isinstance(type_value, str) else frozenset()
        if fmt not in allowed:
            ed.pop("format")
            self.ctx.note(path, f"format {fmt!r} is not supported by Gemini; removed")

    def _infer_type(self, ed: Edit, path: Path) -> None:
        data = ed.data
        if "properties" in data or "required" in data or "minProperties" in data or "maxProperties" in data:
            inferred = "object"
        elif "items" in data or "minItems" in data or "maxItems" in data:
            inferred = "array"
        elif "minLength" in data or "maxLength" in data or "pattern" in data:
            inferred = "string"
        elif "minimum" in data or "maximum" in data:
            inferred = "number"
        else:
            ed.set("type", "string")
            self.ctx.narrowed(path, "schema without a type (any value) sent as a string; Gemini needs a type")
            return
        ed.set("type", inferred)
        self.ctx.narrowed(path, f"schema without a type given type {inferred!r} from its keywords")

    def _children(self, ed: Edit, path: Path, depth: int, refs: tuple[str, ...]) -> None:
        props = ed.get("properties")
        if isinstance(props, dict):
            ed.fix_each("properties", props, path, lambda child, at: self.node(child, at, depth + 1, refs))
        if "items" in ed:
            items = ed.get("items")
            fixed_items = self.node(items, (*path, "items"), depth + 1, refs)
            if fixed_items is not items:
                ed.set("items", fixed_items)

    def _any_of_children(self, ed: Edit, path: Path, depth: int, refs: tuple[str, ...]) -> None:
        any_of = ed.get("anyOf")
        if isinstance(any_of, list):
            ed.fix_each("anyOf", any_of, path, lambda child, at: self.node(child, at, depth + 1, refs))


def _is_null_schema(schema: object) -> bool:
    if not isinstance(schema, dict) or schema.get("type") != "null":
        return False
    return all(key == "type" or key in ANNOTATIONS for key in schema)


def _stub(target: JSONDict) -> JSONDict:
    """Where a recursive reference is cut: the referenced type with no further structure."""
    type_value = target.get("type")
    stub: JSONDict = {"type": type_value if isinstance(type_value, str) else "object"}
    if "description" in target:
        stub["description"] = target["description"]
    return stub
