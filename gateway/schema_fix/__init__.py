"""Tool JSON-schema repair per target provider.

Every tool schema that reaches a provider passes :func:`repair_schema` for that
provider. Guarantees:

* the input is never mutated; when nothing needs to change the *same object* is
  returned (so it re-encodes byte-identically), and untouched subtrees of a changed
  schema are shared with the input -- treat both as read-only;
* repairing a repaired schema returns it unchanged (identity);
* meaning is kept wherever the target can express it: every instance valid under the
  original is valid under the repair (some repairs accept more, e.g. dropped
  constraints). Exceptions are reported: OpenAI strict mode sets ``strict_ok=False``
  and falls back to the non-strict repair; Gemini (and strict mode, for a typeless node
  with ``properties``/``items``) set ``meaning_kept=False`` when a typeless node had to
  be given a type.

What each target repairs:

``openai`` / ``openai-compatible`` (structural repairs only; vLLM, Ollama, ...)
    root forced to ``type: "object"`` with ``properties`` (a bare ``$ref`` root is
    inlined); ``required`` that is null / an object / not a list removed (draft-3
    ``required: true`` on a property moves to the parent's list), non-string or
    duplicate entries and names not in ``properties`` removed; ``properties`` that is
    null or not an object -> ``{}``; non-schema subschemas -> ``{}`` or removed; unknown
    or malformed ``type`` removed; keyword values of the wrong shape (``enum: null``,
    ``minLength: -1``, ...) removed; ``type`` lists -> ``anyOf`` of single types
    (keywords moved into their type's branch, ``items: {}`` for array branches); arrays
    without ``items`` get ``items: {}``; draft-7 tuple ``items: [..]`` -> ``prefixItems``
    plus ``items`` accepting any position; draft-4 boolean ``exclusiveMinimum/Maximum``
    -> numeric form. Applied recursively in ``properties``, ``items``, ``prefixItems``,
    ``additionalProperties``, ``anyOf``/``oneOf``/``allOf``, ``not``, ``if``/``then``/
    ``else``, ``$defs``/``definitions``, ``patternProperties`` and the other subschema
    keywords. Below ``not``, ``if`` and ``oneOf`` (where accepting more can reject more
    at the top) only exact repairs are used: undeclared ``required`` names are declared
    instead of dropped, tuples keep their exact form.
``openai-strict``
    the ``openai`` repairs, then OpenAI's Structured Outputs rules (see ``_strict.py``). When strict mode cannot express the schema, ``strict_ok`` is False
    and ``schema`` is the ``openai`` repair: send the tool with ``strict: false``.
``anthropic``
    the structural repairs that make the schema valid draft 2020-12 (type lists and
    arrays without ``items`` are valid there and are kept; tuple ``items`` becomes
    exact ``prefixItems``), root ``type: "object"``, and top-level ``anyOf``/``oneOf``/
    ``allOf`` merged into one object (``_root.py``).
``gemini``
    the structural repairs, the root merge, and the translation to Gemini's OpenAPI
    subset (``_gemini.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from ._common import Ctx
from ._gemini import GeminiPass
from ._root import flatten_root
from ._strict import StrictPass
from ._structural import StructuralRules, repair_root


class Target(StrEnum):
    OPENAI = "openai"
    OPENAI_STRICT = "openai-strict"
    ANTHROPIC = "anthropic"
    GEMINI = "gemini"
    OPENAI_COMPATIBLE = "openai-compatible"


@dataclass(frozen=True, slots=True)
class RepairResult:
    """Outcome of one repair.

    ``schema`` is the schema to send (the input object itself when ``changed`` is False).
    ``notes`` says what was changed, one ``"<JSON pointer>: <what>"`` line per change.
    ``strict_ok`` is only ever False for ``openai-strict``. ``meaning_kept`` is False
    when some instance valid under the original is rejected by ``schema``.
    """

    schema: object
    changed: bool
    notes: tuple[str, ...]
    strict_ok: bool = True
    meaning_kept: bool = True


_OPENAI_RULES: Final = StructuralRules(
    type_lists_to_any_of=True,
    add_array_items=True,
    prune_required=True,
    root_properties=True,
    exact_tuples=False,
)
_ANTHROPIC_RULES: Final = StructuralRules(
    type_lists_to_any_of=False,
    add_array_items=False,
    prune_required=False,
    root_properties=False,
    exact_tuples=True,
)
_GEMINI_RULES: Final = StructuralRules(
    type_lists_to_any_of=False,
    add_array_items=True,
    prune_required=True,
    root_properties=True,
    exact_tuples=False,
)


def repair_schema(schema: object, target: Target | str) -> RepairResult:
    """Repair a tool's parameter schema (``parameters`` / ``input_schema``) for `target`."""
    target = Target(target)
    ctx = Ctx()
    if target in (Target.OPENAI, Target.OPENAI_COMPATIBLE):
        out = repair_root(schema, _OPENAI_RULES, ctx)
        return _result(schema, out, ctx)
    if target is Target.ANTHROPIC:
        out = repair_root(schema, _ANTHROPIC_RULES, ctx)
        out = flatten_root(out, ctx, prune_required=False)
        return _result(schema, out, ctx)
    if target is Target.GEMINI:
        out = repair_root(schema, _GEMINI_RULES, ctx)
        out = flatten_root(out, ctx, prune_required=True)
        out = GeminiPass(out, ctx).run()
        return _result(schema, out, ctx)
    return _repair_strict(schema)


def _repair_strict(schema: object) -> RepairResult:
    ctx = Ctx()
    structural = repair_root(schema, _OPENAI_RULES, ctx)
    structural_notes = list(ctx.notes)
    flattened = flatten_root(structural, ctx, prune_required=True)
    strict = StrictPass(flattened, ctx)
    out = strict.run()
    if not strict.problems:
        return _result(schema, out, ctx)
    notes = [*structural_notes, *(f"strict mode cannot express {problem}" for problem in strict.problems)]
    return RepairResult(
        schema=structural,
        changed=structural is not schema,
        notes=tuple(notes),
        strict_ok=False,
        meaning_kept=True,
    )


def repair_tool_parameters(parameters: object, target: Target | str) -> RepairResult:
    """Like :func:`repair_schema`, for a tool's optional ``parameters`` field.

    ``None`` stands for an absent field (a tool without parameters). The result's
    ``schema`` is None when the field should be left out: for Gemini whenever the tool
    takes no parameters (Gemini rejects ``properties: {}`` at the root: "should be
    non-empty for OBJECT type"), and for OpenAI targets when it was absent (omitting
    ``parameters`` is allowed and means no parameters). Anthropic always needs an
    ``input_schema``, so an absent one becomes ``{"type": "object", "properties": {}}``.
    """
    target = Target(target)
    if parameters is None:
        if target is Target.ANTHROPIC:
            empty: dict[str, object] = {"type": "object", "properties": {}}
            return RepairResult(empty, True, ("#: absent input_schema replaced by an empty object schema",))
        return RepairResult(None, False, ())
    result = repair_schema(parameters, target)
    if target is Target.GEMINI and isinstance(result.schema, dict):
        props = result.schema.get("properties")
        if not props:
            note = "#: no parameters; leave `parameters` out (Gemini rejects an empty properties object)"
            return RepairResult(None, True, (*result.notes, note), result.strict_ok, result.meaning_kept)
    return result


def _result(original: object, out: object, ctx: Ctx) -> RepairResult:
    return RepairResult(
        schema=out,
        changed=out is not original,
        notes=tuple(ctx.notes),
        meaning_kept=ctx.meaning_kept,
    )


__all__ = ["RepairResult", "Target", "repair_schema", "repair_tool_parameters"]
