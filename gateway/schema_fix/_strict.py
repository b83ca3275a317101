"""Pass 2b: OpenAI strict mode (the JSON Schema subset of OpenAI's Structured Outputs).

Input is the output of the structural pass with OpenAI rules (no type lists, arrays have
`items`, `required` lists only declared names) after the root merge. This pass:

* closes every object (`additionalProperties: false`) and lists every property in
  `required`; a property that was optional becomes nullable (`anyOf` with
  `{"type": "null"}`) unless it already accepts null -- the same normalization OpenAI
  applies itself when it turns a tool strict;
* folds `allOf`, turns `oneOf` into `anyOf` (wider: "exactly one" becomes "at least
  one"), turns OpenAPI `nullable: true` into a null branch, inlines a `$ref` that has
  sibling keywords (as OpenAI's own SDK does), and gives a typeless `enum`/`const` its
  type;
* drops keywords strict mode rejects but whose loss only widens what is accepted
  (`minLength`, `not`, `if`/`then`/`else`, `uniqueItems`, `default`, unsupported
  `format`s, ...);
* reports as *not expressible* what strict mode cannot say without rejecting instances
  the original accepts: values of any type (`{}`, `items: {}`), free-form objects (no
  properties and not closed, or `additionalProperties` true or a schema),
  `patternProperties`, boolean subschemas, `allOf` that cannot be folded, unresolvable
  `$ref`s, and the size limits.
"""

from __future__ import annotations

from typing import Final

from ._common import (
    MAX_DEPTH,
    Ctx,
    Edit,
    JSONDict,
    Path,
    format_path,
    json_type_of,
    resolve_pointer,
    split_type_union,
)
from ._merge import fold_all_of

STRICT_KEYWORDS: Final = frozenset(
    {
        "type",
        "properties",
        "required",
        "additionalProperties",
        "items",
        "anyOf",
        "enum",
        "const",
        "$defs",
        "definitions",
        "$ref",
        "description",
        "title",
        "pattern",
        "format",
        "multipleOf",
        "maximum",
        "exclusiveMaximum",
        "minimum",
        "exclusiveMinimum",
        "minItems",
        "maxItems",
    }
)
STRICT_FORMATS: Final = frozenset(
    {"date-time", "time", "date", "duration", "email", "hostname", "ipv4", "ipv6", "uuid"}
)
# Keywords whose removal would reject instances the original accepts.
_NOT_EXPRESSIBLE: Final = frozenset({"patternProperties"})

# OpenAI's size limits for a strict schema, each over the whole schema.
MAX_PROPERTIES: Final = 5000  # object properties
MAX_OBJECT_NESTING: Final = 10  # levels of nested objects
MAX_TOTAL_STRING_CHARS: Final = 120_000  # property and definition names, enum and const values
MAX_ENUM_VALUES: Final = 1000  # enum values
LARGE_STRING_ENUM: Final = 250  # a string enum with more values than this ...
LARGE_STRING_ENUM_CHARS: Final = 15_000  # ... may hold this many characters at most

_MAX_INLINE: Final = 16


class StrictPass:
    __slots__ = (
        "ctx",
        "enum_values",
        "inlined",
        "objects",
        "problems",
        "properties",
        "root",
        "saw_ref",
        "text_chars",
    )

    def __init__(self, root: object, ctx: Ctx) -> None:
        self.root = root
        self.ctx = ctx
        self.problems: list[str] = []
        self.inlined = 0
        # Cheap tallies that decide whether the full post-checks are worth running.
        self.saw_ref = False
        self.objects = 0
        self.properties = 0
        self.enum_values = 0
        self.text_chars = 0

    def problem(self, path: Path, message: str) -> None:
        self.problems.append(f"{format_path(path)}: {message}")

    def run(self) -> object:
        out = self.node(self.root, (), 0, is_root=True)
        if not self.problems and self.saw_ref:
            self._check_refs(out)
        # The limits need at least this much material to be exceeded.
        might_exceed = (
            self.objects > MAX_OBJECT_NESTING
            or self.properties > MAX_PROPERTIES
            or self.enum_values > LARGE_STRING_ENUM
            or self.text_chars > LARGE_STRING_ENUM_CHARS
        )
        if not self.problems and might_exceed:
            self._check_limits(out)
        return out

    def node(self, node: object, path: Path, depth: int, *, is_root: bool = False) -> object:
        if isinstance(node, bool):
            self.problem(path, f"boolean schema {str(node).lower()} cannot be expressed")
            return node
        if not isinstance(node, dict):
            return node
        if depth > MAX_DEPTH:
            self.problem(path, "nesting too deep")
            return node

        enum = node.get("enum")
        if isinstance(enum, list):
            self.enum_values += len(enum)
            self.text_chars += sum(len(value) for value in enum if isinstance(value, str))
        const = node.get("const")
        if isinstance(const, str):
            self.text_chars += len(const)
        ref = node.get("$ref")
        if ref is not None:
            self.saw_ref = True
            target = resolve_pointer(self.root, ref) if isinstance(ref, str) else None
            if not isinstance(target, dict):
                self.problem(path, f"$ref {ref!r} does not resolve to a schema in this document")
                return node
            if len(node) == 1:
                return node
            self.inlined += 1
            if self.inlined > _MAX_INLINE * 64:
                self.problem(path, "too many $ref inlinings")
                return node
            merged: JSONDict = dict(target)
            merged.update((key, value) for key, value in node.items() if key != "$ref")
            self.ctx.note(path, f"$ref {ref!r} with sibling keywords inlined")
            return self.node(merged, path, depth + 1, is_root=is_root)

        ed = Edit(node)
        if "allOf" in ed:
            folded = fold_all_of(ed.result(), self.root)
            if folded is None:
                self.problem(path, "allOf cannot be folded into one schema")
                return node
            self.ctx.note(path, "allOf folded into its parent")
            return self.node(folded, path, depth + 1, is_root=is_root)
        if "oneOf" in ed:
            if "anyOf" in ed:
                self.problem(path, "both anyOf and oneOf")
                return node
            self.ctx.note(path, "oneOf rewritten as anyOf")
            ed.set("anyOf", ed.pop("oneOf"))
        make_nullable = False
        if "nullable" in ed:
            make_nullable = ed.pop("nullable") is True
            self.ctx.note(path, "OpenAPI nullable rewritten as a null branch")

        for key in list(ed.data):
            if key in STRICT_KEYWORDS:
                continue
            if key in _NOT_EXPRESSIBLE:
                self.problem(path, f"{key} cannot be expressed")
                continue
            ed.pop(key)
            self.ctx.note(path, f"keyword {key!r} is not supported in strict mode; removed")
        fmt = ed.get("format")
        if "format" in ed and (ed.get("type") != "string" or fmt not in STRICT_FORMATS):
            ed.pop("format")
            self.ctx.note(path, f"format {fmt!r} is not supported in strict mode; removed")

        if "type" not in ed and "anyOf" not in ed:
            typed = self._infer_type(ed, path)
            if typed is not None:
                return self.node(typed, path, depth + 1, is_root=is_root)
            if "type" not in ed:
                self.problem(path, "a value of any type cannot be expressed")
                return ed.result()

        self._children(ed, path, depth)
        if ed.get("type") == "object":
            self._object(ed, path, depth, is_root=is_root)
        out: object = ed.result()
        if make_nullable:
            out = nullable(out)
        return out

    def _infer_type(self, ed: Edit, path: Path) -> JSONDict | None:
        """Give a typeless node the type its keywords imply; None when nothing implies one."""
        values: list[object] | None = None
        if "const" in ed:
            values = [ed.get("const")]
        elif isinstance(ed.get("enum"), list):
            enum = ed.get("enum")
            assert isinstance(enum, list)
            values = enum
        if values is not None:
            types: list[str] = []
            for value in values:
                kind = json_type_of(value)
                if kind not in types:
                    types.append(kind)
            if not types:
                return None
            self.ctx.note(path, f"typeless enum/const given type {types if len(types) > 1 else types[0]!r}")
            if len(types) == 1:
                typed = dict(ed.result())
                typed["type"] = types[0]
                return typed
            return split_type_union(ed.result(), types, add_array_items=True, path=path, ctx=self.ctx)
        # Strict mode needs a type; these guesses reject non-object / non-array values
        # that the typeless original accepted, so they are reported as narrowing.
        if "properties" in ed:
            ed.set("type", "object")
            self.ctx.narrowed(path, "typeless schema with properties given type 'object'")
        elif "items" in ed:
            ed.set("type", "array")
            self.ctx.narrowed(path, "typeless schema with items given type 'array'")
        return None

    def _children(self, ed: Edit, path: Path, depth: int) -> None:
        props = ed.get("properties")
        if isinstance(props, dict):
            ed.fix_each("properties", props, path, lambda child, at: self.node(child, at, depth + 1))
        items = ed.get("items")
        if "items" in ed:
            fixed_items = self.node(items, (*path, "items"), depth + 1)
            if fixed_items is not items:
                ed.set("items", fixed_items)
        any_of = ed.get("anyOf")
        if isinstance(any_of, list):
            ed.fix_each("anyOf", any_of, path, lambda child, at: self.node(child, at, depth + 1))
        for key in ("$defs", "definitions"):
            defs = ed.get(key)
            if isinstance(defs, dict):
                self.text_chars += sum(len(name) for name in defs)
                ed.fix_each(key, defs, path, lambda child, at: self.node(child, at, depth + 1))

    def _object(self, ed: Edit, path: Path, depth: int, *, is_root: bool) -> None:
        props = ed.get("properties")
        has_props = isinstance(props, dict) and bool(props)
        if "additionalProperties" in ed:
            if ed.get("additionalProperties") is not False:
                self.problem(
                    path, "additionalProperties other than false (free-form object) cannot be expressed"
                )
                return
        elif not has_props and not is_root:
            self.problem(path, "object without properties (free-form object) cannot be expressed")
            return
        else:
            ed.set("additionalProperties", False)
            self.ctx.note(path, "additionalProperties: false added")
        if not isinstance(props, dict):
            ed.set("properties", {})
            props = {}
        self.text_chars += sum(len(name) for name in props)
        self.objects += 1
        self.properties += len(props)
        required = [name for name in _str_list(ed.get("required")) if name in props]
        optional = [name for name in props if name not in required]
        if optional:
            new_props = dict(props)
            for name in optional:
                new_props[name] = nullable(props[name])
            ed.set("properties", new_props)
            self.ctx.note(path, f"optional properties made required and nullable: {', '.join(optional)}")
        wanted = [*required, *optional]
        current = ed.get("required")
        if not wanted and "required" not in ed:
            return
        if not (isinstance(current, list) and current == wanted):
            ed.set("required", wanted)

    def _check_refs(self, schema: object) -> None:
        stack: list[tuple[object, Path]] = [(schema, ())]
        while stack:
            node, path = stack.pop()
            if isinstance(node, dict):
                ref = node.get("$ref")
                if ref is not None and not (
                    isinstance(ref, str) and isinstance(resolve_pointer(schema, ref), dict)
                ):
                    self.problem(path, f"$ref {ref!r} does not resolve after repair")
                for key, value in node.items():
                    if key not in ("enum", "const", "default", "examples"):
                        stack.append((value, (*path, key)))
            elif isinstance(node, list):
                stack.extend((value, (*path, str(i))) for i, value in enumerate(node))

    def _check_limits(self, schema: object) -> None:
        counts = _Counts()
        counts.walk(schema, 0, 0)
        if counts.properties > MAX_PROPERTIES:
            self.problem((), f"{counts.properties} object properties exceed the limit of {MAX_PROPERTIES}")
        if counts.nesting > MAX_OBJECT_NESTING:
            self.problem(
                (), f"{counts.nesting} levels of object nesting exceed the limit of {MAX_OBJECT_NESTING}"
            )
        if counts.chars > MAX_TOTAL_STRING_CHARS:
            self.problem((), f"{counts.chars} characters of names and values exceed {MAX_TOTAL_STRING_CHARS}")
        if counts.enum_values > MAX_ENUM_VALUES:
            self.problem((), f"{counts.enum_values} enum values exceed the limit of {MAX_ENUM_VALUES}")
        if counts.large_enum:
            self.problem(
                (), f"a string enum over {LARGE_STRING_ENUM} values exceeds {LARGE_STRING_ENUM_CHARS} chars"
            )


class _Counts:
    __slots__ = ("chars", "enum_values", "large_enum", "nesting", "properties")

    def __init__(self) -> None:
        self.properties = 0
        self.nesting = 0
        self.chars = 0
        self.enum_values = 0
        self.large_enum = False

    def walk(self, node: object, level: int, depth: int) -> None:
        """`level` counts the object schemas on the path above `node`."""
        if not isinstance(node, dict) or depth > MAX_DEPTH:
            return
        if node.get("type") == "object":
            level += 1
        self.nesting = max(self.nesting, level)
        props = node.get("properties")
        if isinstance(props, dict):
            self.properties += len(props)
            for name, child in props.items():
                self.chars += len(name)
                self.walk(child, level, depth + 1)
        enum = node.get("enum")
        if isinstance(enum, list):
            self.enum_values += len(enum)
            text = sum(len(v) for v in enum if isinstance(v, str))
            self.chars += text
            if len(enum) > LARGE_STRING_ENUM and text > LARGE_STRING_ENUM_CHARS:
                self.large_enum = True
        const = node.get("const")
        if isinstance(const, str):
            self.chars += len(const)
        self.walk(node.get("items"), level, depth + 1)
        any_of = node.get("anyOf")
        if isinstance(any_of, list):
            for branch in any_of:
                self.walk(branch, level, depth + 1)
        for key in ("$defs", "definitions"):
            defs = node.get(key)
            if isinstance(defs, dict):
                for name, child in defs.items():
                    self.chars += len(name)
                    self.walk(child, 0, depth + 1)


def _str_list(value: object) -> list[str]:
    if not isinstance(value, list):
        return []
    return [item for item in value if isinstance(item, str)]


def accepts_null(schema: object) -> bool:
    """Conservative: True only when the schema certainly accepts null."""
    if schema is True:
        return True
    if not isinstance(schema, dict):
        return False
    if not schema:
        return True
    type_value = schema.get("type")
    restricted = "type" in schema or "enum" in schema or "const" in schema
    if type_value == "null" or (isinstance(type_value, list) and "null" in type_value):
        return _enum_allows_null(schema)
    if "type" not in schema and "enum" in schema:
        enum = schema["enum"]
        return isinstance(enum, list) and None in enum and "$ref" not in schema and "anyOf" not in schema
    if "type" not in schema and "const" in schema:
        return schema["const"] is None and "$ref" not in schema and "anyOf" not in schema
    any_of = schema.get("anyOf")
    if not restricted and "$ref" not in schema and isinstance(any_of, list):
        return any(accepts_null(branch) for branch in any_of)
    return False


def _enum_allows_null(schema: JSONDict) -> bool:
    if "enum" in schema:
        enum = schema["enum"]
        if not (isinstance(enum, list) and None in enum):
            return False
    if "const" in schema and schema["const"] is not None:
        return False
    return "$ref" not in schema and "anyOf" not in schema


def nullable(schema: object) -> object:
    """`schema` or null, written the way strict mode accepts (an `anyOf` with a null branch)."""
    if accepts_null(schema):
        return schema
    if isinstance(schema, dict):
        any_of = schema.get("anyOf")
        plain = not any(key in schema for key in ("type", "enum", "const", "$ref"))
        if isinstance(any_of, list) and plain:
            out = dict(schema)
            out["anyOf"] = [*any_of, {"type": "null"}]
            return out
        outer = {key: schema[key] for key in ("description", "title") if key in schema}
        inner = {key: value for key, value in schema.items() if key not in outer}
        wrapped: JSONDict = {"anyOf": [inner, {"type": "null"}]}
        wrapped.update(outer)
        return wrapped
    return {"anyOf": [schema, {"type": "null"}]}
