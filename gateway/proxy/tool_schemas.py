"""Tool schemas on their way upstream: every one passes the repair for its target provider.

MCP servers and client libraries send schemas that providers refuse (``required: null``,
``properties: null``, type arrays, arrays without ``items``...). The repair is a pure function
that returns the very same object when a schema is already valid, so a request whose tools
are fine is forwarded as it came. A strict tool whose schema strict mode cannot express is
sent non-strict (logged) rather than refused by the provider.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from gateway.config import ProviderKind
from gateway.schema_fix import Target, repair_schema

log = logging.getLogger("gateway.schemas")

_BASE_TARGET = {
    ProviderKind.OPENAI: Target.OPENAI,
    ProviderKind.OPENAI_COMPATIBLE: Target.OPENAI_COMPATIBLE,
    ProviderKind.ANTHROPIC: Target.ANTHROPIC,
}


def _repair_function(function: Mapping[str, Any], kind: ProviderKind) -> Mapping[str, Any]:
    """A function definition (Chat's nested ``function`` or a flat Responses tool)."""
    if "parameters" not in function:
        return function
    parameters = function["parameters"]
    strict = function.get("strict") is True and kind is not ProviderKind.ANTHROPIC
    result = repair_schema(parameters, Target.OPENAI_STRICT if strict else _BASE_TARGET[kind])
    if strict and not result.strict_ok:
        log.warning(
            "tool %r: strict mode cannot express its schema; sent with strict=false", function.get("name")
        )
        return {**function, "parameters": result.schema, "strict": False}
    if not result.changed:
        return function
    log.info("tool %r: schema repaired for %s: %s", function.get("name"), kind, "; ".join(result.notes))
    return {**function, "parameters": result.schema}


def repair_chat_tools(tools: Sequence[Any], kind: ProviderKind) -> Sequence[Any]:
    """Chat Completions ``tools``; the same list object when nothing changed."""
    repaired: list[Any] | None = None
    for i, tool in enumerate(tools):
        if not isinstance(tool, dict) or not isinstance(tool.get("function"), dict):
            continue
        function = _repair_function(tool["function"], kind)
        if function is not tool["function"]:
            repaired = repaired if repaired is not None else list(tools)
            repaired[i] = {**tool, "function": function}
    return tools if repaired is None else repaired


def repair_responses_tools(tools: Sequence[Any], kind: ProviderKind) -> Sequence[Any]:
    """Responses ``tools`` (flat function tools); the same list object when nothing changed."""
    repaired: list[Any] | None = None
    for i, tool in enumerate(tools):
        if not isinstance(tool, dict) or tool.get("type") != "function":
            continue
        fixed = _repair_function(tool, kind)
        if fixed is not tool:
            repaired = repaired if repaired is not None else list(tools)
            repaired[i] = fixed
    return tools if repaired is None else repaired
