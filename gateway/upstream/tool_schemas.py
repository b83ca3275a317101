"""Tool schemas on their way upstream: every one passes the repair for its target provider.

MCP servers and client libraries send schemas that providers refuse (``required: null``,
``properties: null``, type arrays, arrays without ``items``...). The repair is a pure function
that returns the very same object when a schema is already valid, so a request whose tools
are fine is forwarded as it came. A strict tool whose schema strict mode cannot express is
sent non-strict (logged) rather than refused by the provider.

A Responses function tool that leaves ``strict`` out is normalized into strict mode by OpenAI
(its parameters made strict by the provider). Its schema is repaired structurally and sent as it is, so the provider
does the normalizing; only when strict mode cannot express it does the gateway add
``strict: false``, so the provider neither refuses it nor tightens it.

The target is the provider's ``schema_target`` (default: its ``kind``'s), so an
``openai-compatible`` provider in front of Gemini gets Gemini's repair, with ``strict``
removed (Gemini refuses it), and one in front of Anthropic's OpenAI endpoint gets Anthropic's
(which ignores ``strict``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from gateway.config import SchemaTarget
from gateway.schema_fix import Target, repair_schema

log = logging.getLogger("gateway.schemas")

_BASE_TARGET = {
    SchemaTarget.OPENAI: Target.OPENAI,
    SchemaTarget.OPENAI_COMPATIBLE: Target.OPENAI_COMPATIBLE,
    SchemaTarget.ANTHROPIC: Target.ANTHROPIC,
    SchemaTarget.GEMINI: Target.GEMINI,
}
# Targets whose provider has OpenAI's strict mode (and so the Responses strict default).
_HAS_STRICT = frozenset({SchemaTarget.OPENAI, SchemaTarget.OPENAI_COMPATIBLE})


def _repair_function(
    function: Mapping[str, Any], target: SchemaTarget, *, strict_by_default: bool = False
) -> Mapping[str, Any]:
    """A function definition (Chat's nested ``function`` or a flat Responses tool)."""
    if target is SchemaTarget.GEMINI and "strict" in function:
        # Gemini's function declarations have no `strict` and refuse it: "Unknown name "strict"
        # at 'request.tools[0].function_declarations[0]'" (router-for-me/CLIProxyAPI#102).
        log.info("tool %r: `strict` removed (Gemini has no strict mode)", function.get("name"))
        function = {k: v for k, v in function.items() if k != "strict"}
    if "parameters" not in function:
        return function
    parameters = function["parameters"]
    has_strict = target in _HAS_STRICT
    implicit_strict = strict_by_default and "strict" not in function and has_strict
    if implicit_strict and not repair_schema(parameters, Target.OPENAI_STRICT).strict_ok:
        log.warning(
            "tool %r: strict mode (the Responses default) cannot express its schema; sent with strict=false",
            function.get("name"),
        )
        return {**_repair_function(function, target), "strict": False}
    # Anthropic's OpenAI-compatible endpoint ignores `strict`: its schema gets Anthropic's repair.
    strict = function.get("strict") is True and has_strict
    result = repair_schema(parameters, Target.OPENAI_STRICT if strict else _BASE_TARGET[target])
    if strict and not result.strict_ok:
        log.warning(
            "tool %r: strict mode cannot express its schema; sent with strict=false", function.get("name")
        )
        return {**function, "parameters": result.schema, "strict": False}
    if not result.changed:
        return function
    log.info("tool %r: schema repaired for %s: %s", function.get("name"), target, "; ".join(result.notes))
    return {**function, "parameters": result.schema}


def repair_chat_tools(tools: Sequence[Any], target: SchemaTarget) -> Sequence[Any]:
    """Chat Completions ``tools`` for a provider taking ``target``'s schemas (``Upstream.schema_target``);
    the same list object when nothing changed."""
    repaired: list[Any] | None = None
    for i, tool in enumerate(tools):
        if not isinstance(tool, dict) or not isinstance(tool.get("function"), dict):
            continue
        function = _repair_function(tool["function"], target)
        if function is not tool["function"]:
            repaired = repaired if repaired is not None else list(tools)
            repaired[i] = {**tool, "function": function}
    return tools if repaired is None else repaired


def repair_responses_tools(tools: Sequence[Any], target: SchemaTarget) -> Sequence[Any]:
    """Responses ``tools`` (flat function tools); the same list object when nothing changed."""
    repaired: list[Any] | None = None
    for i, tool in enumerate(tools):
        if not isinstance(tool, dict) or tool.get("type") != "function":
            continue
        fixed = _repair_function(tool, target, strict_by_default=True)
        if fixed is not tool:
            repaired = repaired if repaired is not None else list(tools)
            repaired[i] = fixed
    return tools if repaired is None else repaired
