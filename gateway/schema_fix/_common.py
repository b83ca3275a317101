"""Shared pieces of the schema repair passes.

Everything here is pure. A pass never mutates its input: nodes are edited through
:class:`Edit`, which copies a dict the first time something changes, so an untouched
subtree keeps its identity (and re-encodes byte-identically). Unchanged subtrees are
shared between the input and the output; callers must treat both as read-only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any, Final
from urllib.parse import unquote

JSONDict = dict[str, object]
Path = tuple[str, ...]

# JSON Schema's seven primitive type names.
KNOWN_TYPES: Final = frozenset({"string", "number", "integer", "boolean", "object", "array", "null"})

# Keywords that only constrain instances of one JSON type. When a `type` list is split
# into per-type `anyOf` branches, each keyword moves into the branch it applies to
# (it is vacuous for every other type, so the move keeps the meaning exactly).
OBJECT_KEYWORDS: Final = frozenset(
    {
        "properties",
        "required",
        "additionalProperties",
        "patternProperties",
        "minProperties",
        "maxProperties",
        "propertyNames",
        "dependentRequired",
        "dependentSchemas",
        "dependencies",
        "unevaluatedProperties",
    }
)
ARRAY_KEYWORDS: Final = frozenset(
    {
        "items",
        "prefixItems",
        "additionalItems",
        "minItems",
        "maxItems",
        "uniqueItems",
        "contains",
        "minContains",
        "maxContains",
        "unevaluatedItems",
    }
)
STRING_KEYWORDS: Final = frozenset(
    {"minLength", "maxLength", "pattern", "format", "contentEncoding", "contentMediaType", "contentSchema"}
)
NUMBER_KEYWORDS: Final = frozenset(
    {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"}
)
# `format` values that describe numbers (OpenAPI style) rather than strings.
NUMERIC_FORMATS: Final = frozenset({"int32", "int64", "float", "double"})

# Keywords that never change which instances are valid.
ANNOTATIONS: Final = frozenset(
    {
        "title",
        "description",
        "default",
        "examples",
        "example",
        "$comment",
        "deprecated",
        "readOnly",
        "writeOnly",
    }
)

# Keywords whose value is one subschema / a list of subschemas / a map of subschemas.
SCHEMA_KEYWORDS: Final = (
    "additionalProperties",
    "unevaluatedProperties",
    "unevaluatedItems",
    "contains",
    "propertyNames",
    "not",
    "if",
    "then",
    "else",
    "contentSchema",
)
SCHEMA_LIST_KEYWORDS: Final = ("anyOf", "oneOf", "allOf")
SCHEMA_MAP_KEYWORDS: Final = ("$defs", "definitions", "patternProperties", "dependentSchemas")

# Depth (in schema levels) beyond which a pass stops descending and leaves the subtree
# as it is. Real tool schemas stay far below it; it exists so that a pathological or
# self-referencing Python object cannot exhaust the interpreter stack.
MAX_DEPTH: Final = 64


class Ctx:
    """Per-call bookkeeping: human-readable notes and whether meaning was narrowed."""

    __slots__ = ("meaning_kept", "notes")

    def __init__(self) -> None:
        self.notes: list[str] = []
        self.meaning_kept = True

    def note(self, path: Path, message: str) -> None:
        self.notes.append(f"{format_path(path)}: {message}")

    def narrowed(self, path: Path, message: str) -> None:
        """Record a change that rejects some instance the original accepted."""
        self.meaning_kept = False
        self.note(path, message)


def format_path(path: Path) -> str:
    if not path:
        return "#"
    return "#/" + "/".join(seg.replace("~", "~0").replace("/", "~1") for seg in path)


class Edit:
    """Copy-on-write view of one schema dict."""

    __slots__ = ("_new", "_orig")

    def __init__(self, orig: JSONDict) -> None:
        self._orig = orig
        self._new: JSONDict | None = None

    @property
    def data(self) -> JSONDict:
        return self._orig if self._new is None else self._new

    def __contains__(self, key: str) -> bool:
        return key in (self._orig if self._new is None else self._new)

    def get(self, key: str, default: object = None) -> object:
        return (self._orig if self._new is None else self._new).get(key, default)

    def _writable(self) -> JSONDict:
        if self._new is None:
            self._new = dict(self._orig)
        return self._new

    def set(self, key: str, value: object) -> None:
        data = self.data
        if key in data and data[key] is value:
            return
        self._writable()[key] = value

    def pop(self, key: str) -> object:
        if key not in self.data:
            return None
        return self._writable().pop(key)

    def fix_each(
        self, key: str, value: JSONDict | list[object], path: Path, fix: Callable[[object, Path], object]
    ) -> None:
        """Set ``key`` to ``value`` (a map or a list of schemas) with ``fix(entry, its path)``
        applied to each entry (a list entry's name in the path is its index), copied only if an
        entry changed."""
        entries: Iterable[tuple[Any, object]] = value.items() if isinstance(value, dict) else enumerate(value)
        new: Any = None
        for at, entry in entries:
            fixed = fix(entry, (*path, key, str(at)))
            if fixed is not entry:
                if new is None:
                    new = dict(value) if isinstance(value, dict) else list(value)
                new[at] = fixed
        if new is not None:
            self.set(key, new)

    def replace(self, new: JSONDict) -> None:
        """Swap in a whole new dict (already a fresh object)."""
        self._new = new

    @property
    def changed(self) -> bool:
        return self._new is not None

    def result(self) -> JSONDict:
        return self.data


def describe(value: object) -> str:
    """Short description of a JSON value for notes."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "an object" if value else "{}"
    if isinstance(value, list):
        return "a list" if value else "[]"
    if isinstance(value, str):
        return f"the string {value!r}" if len(value) <= 40 else "a string"
    if isinstance(value, int | float):
        return f"the number {value!r}"
    return type(value).__name__


def json_type_matches(value: object, type_name: str) -> bool:
    """Whether a JSON value is an instance of a JSON Schema primitive type."""
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
    return False


def json_type_of(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "integer" if value.is_integer() else "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def is_any_schema(schema: object) -> bool:
    """True for schemas that accept every instance: `true`, `{}`, or annotations only."""
    if schema is True:
        return True
    if isinstance(schema, dict):
        return all(key in ANNOTATIONS for key in schema)
    return False


def resolve_pointer(root: object, ref: str) -> object | None:
    """Resolve a same-document `$ref` ("#" or "#/a/b"). None when it does not resolve."""
    if ref == "#":
        return root
    if not ref.startswith("#/"):
        return None
    current = root
    for raw in ref[2:].split("/"):
        token = unquote(raw).replace("~1", "/").replace("~0", "~")
        if isinstance(current, dict):
            if token not in current:
                return None
            current = current[token]
        elif isinstance(current, list):
            if not token.isdigit() or int(token) >= len(current):
                return None
            current = current[int(token)]
        else:
            return None
    return current


def dedupe(values: Iterable[object]) -> list[object]:
    """Remove duplicates (by JSON equality) keeping the first occurrence."""
    out: list[object] = []
    for value in values:
        if not any(_json_equal(value, seen) for seen in out):
            out.append(value)
    return out


def _json_equal(a: object, b: object) -> bool:
    # 1 == True in Python; JSON treats them as different values.
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    return a == b


def union_schema(branches: list[object]) -> object:
    """A schema accepting what any branch accepts (deduplicated, flattened when trivial)."""
    unique = dedupe(branches)
    if any(is_any_schema(branch) for branch in unique):
        return {}
    if len(unique) == 1:
        return unique[0]
    return {"anyOf": unique}


def conjoin_schemas(a: object, b: object) -> object:
    """A schema accepting what both accept, without merging keywords."""
    if _json_equal(a, b) or is_any_schema(b):
        return a
    if is_any_schema(a):
        return b
    return {"allOf": [a, b]}


def family_of(type_name: str) -> frozenset[str]:
    if type_name == "object":
        return OBJECT_KEYWORDS
    if type_name == "array":
        return ARRAY_KEYWORDS
    if type_name == "string":
        return STRING_KEYWORDS
    if type_name in ("number", "integer"):
        return NUMBER_KEYWORDS
    return frozenset()


def keyword_type_family(key: str, value: object) -> frozenset[str] | None:
    """Which primitive types a type-specific keyword applies to (None: all types)."""
    if key == "format":
        if isinstance(value, str) and value in NUMERIC_FORMATS:
            return frozenset({"number", "integer"})
        return frozenset({"string"})
    if key in OBJECT_KEYWORDS:
        return frozenset({"object"})
    if key in ARRAY_KEYWORDS:
        return frozenset({"array"})
    if key in STRING_KEYWORDS:
        return frozenset({"string"})
    if key in NUMBER_KEYWORDS:
        return frozenset({"number", "integer"})
    return None


def split_type_union(
    node: JSONDict,
    types: list[str],
    *,
    add_array_items: bool,
    path: Path,
    ctx: Ctx,
) -> JSONDict:
    """Rewrite `{"type": [t1, t2, ...], ...}` as an `anyOf` of single-type branches.

    Type-specific keywords move into the branch of their type; `enum`/`const` values
    are partitioned by type; a branch whose type has no enum value left is dropped.
    Keywords for types absent from the list are vacuous and are dropped. The result
    accepts exactly the instances the input accepts (plus `items: {}` on array branches
    when asked, which is also exact).
    """
    parent: JSONDict = {}
    moved: dict[str, object] = {}
    for key, value in node.items():
        if key == "type":
            continue
        if key in ("enum", "const"):
            moved[key] = value
            continue
        applies_to = keyword_type_family(key, value)
        if applies_to is None:
            parent[key] = value
        else:
            moved[key] = value

    enum = moved.get("enum")
    has_const = "const" in moved
    const = moved.get("const")
    branches: list[JSONDict] = []
    for type_name in types:
        branch: JSONDict = {"type": type_name}
        for key, value in moved.items():
            if key in ("enum", "const"):
                continue
            applies_to = keyword_type_family(key, value)
            if applies_to is not None and type_name in applies_to:
                branch[key] = value
        if isinstance(enum, list):
            values = [v for v in enum if json_type_matches(v, type_name)]
            if not values:
                continue
            branch["enum"] = values
        if has_const:
            if not json_type_matches(const, type_name):
                continue
            branch["const"] = const
        if add_array_items and type_name == "array" and "items" not in branch:
            branch["items"] = {}
        branches.append(branch)

    if not branches:
        # The enum/const admits none of the listed types: nothing is valid either way.
        # Keep the constraint on the parent so the result stays equally unsatisfiable.
        for type_name in types:
            branch = {"type": type_name}
            if add_array_items and type_name == "array":
                branch["items"] = {}
            branches.append(branch)
        if "enum" in moved:
            parent["enum"] = moved["enum"]
        if has_const:
            parent["const"] = const

    used = {key for branch in branches for key in branch}
    dropped = sorted(key for key in moved if key not in used and key not in parent)
    if dropped:
        ctx.note(path, f"dropped keywords that no listed type uses: {', '.join(dropped)}")

    if len(branches) == 1:
        merged: JSONDict = dict(branches[0])
        merged.update(parent)
        ctx.note(path, f"type list {types!r} reduced to {branches[0]['type']!r}")
        return merged

    if "anyOf" in parent:
        earlier = parent.pop("anyOf")
        all_of = parent.get("allOf")
        parent["allOf"] = [*(all_of if isinstance(all_of, list) else []), {"anyOf": earlier}]
    out: JSONDict = {"anyOf": list(branches)}
    out.update(parent)
    ctx.note(path, f"type list {types!r} rewritten as anyOf")
    return out


def iter_str(values: object) -> Iterator[str]:
    if isinstance(values, list):
        for value in values:
            if isinstance(value, str):
                yield value
