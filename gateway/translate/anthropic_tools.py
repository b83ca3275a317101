"""Chat tools, ``tool_choice`` and ``response_format`` -> Anthropic ``tools`` and ``tool_choice``.

``response_format`` (``json_schema`` or ``json_object``) is served with one more tool that
carries the schema; ``tool_choice`` makes the model call it (forced when the client has no
tools of its own, ``any`` otherwise). If the history holds tool calls but the request declares
no tools, each used tool is declared with an open schema and ``tool_choice: none``, because
Anthropic wants tools defined whenever ``tool_use`` blocks are present. ``strict`` is not sent.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from gateway.translate.anthropic_context import AnthropicContext, SchemaRepair
from gateway.translate.errors import TranslationError

_TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
_JSON_TOOL_DEFAULT_NAME = "json_response"
_JSON_TOOL_DESCRIPTION = "Give your final answer by calling this tool; its input is the answer."


def add_tools(
    out: dict[str, Any],
    body: Mapping[str, Any],
    turns: list[dict[str, Any]],
    ctx: AnthropicContext,
    schema_repair: SchemaRepair | None,
) -> None:
    tools: list[dict[str, Any]] = []
    for i, tool in enumerate(body.get("tools") or ()):
        if tool.get("type") != "function":
            raise TranslationError(
                f"Tools of type {tool.get('type')!r} are not supported by this model.", param=f"tools[{i}]"
            )
        function = tool.get("function") or {}
        schema: Any = function.get("parameters")
        if schema is None:
            schema = {"type": "object", "properties": {}}
        if schema_repair is not None:
            schema = schema_repair(schema)
        declared: dict[str, Any] = {"name": function.get("name")}
        if function.get("description"):
            declared["description"] = function["description"]
        declared["input_schema"] = schema
        if tool.get("cache_control") is not None:
            declared["cache_control"] = tool["cache_control"]
        tools.append(declared)

    choice = _anthropic_tool_choice(body.get("tool_choice"), tools)
    json_tool = _json_tool(body.get("response_format"), tools, schema_repair)
    if json_tool is not None:
        ctx.json_tool = json_tool["name"]
        if not tools or (choice is not None and choice["type"] == "none"):
            choice = {"type": "tool", "name": json_tool["name"]}
        elif choice is None or choice["type"] in ("auto", "any"):
            choice = {"type": "any"}
        tools.append(json_tool)
    if not tools:
        used = _used_tool_names(turns)
        if not used:
            return
        tools = [{"name": name, "input_schema": {"type": "object"}} for name in used]
        choice = {"type": "none"}
    out["tools"] = tools
    if body.get("parallel_tool_calls") is False and (choice is None or choice["type"] != "none"):
        choice = dict(choice) if choice is not None else {"type": "auto"}
        choice["disable_parallel_tool_use"] = True
    if choice is not None:
        out["tool_choice"] = choice


def _anthropic_tool_choice(choice: Any, tools: list[dict[str, Any]]) -> dict[str, Any] | None:
    if choice is None:
        return None
    if choice == "auto":
        return {"type": "auto"}
    if choice == "none":
        return {"type": "none"}
    if choice == "required":
        return {"type": "any"}
    if isinstance(choice, Mapping):
        kind = choice.get("type")
        if kind == "function":
            return {"type": "tool", "name": (choice.get("function") or {}).get("name")}
        if kind == "allowed_tools":
            allowed = choice.get("allowed_tools") or {}
            names = {(t.get("function") or {}).get("name") for t in allowed.get("tools") or ()}
            tools[:] = [t for t in tools if t["name"] in names]
            return {"type": "any" if allowed.get("mode") == "required" else "auto"}
    raise TranslationError("Unsupported tool_choice for this model.", param="tool_choice")


def _json_tool(
    response_format: Any, tools: list[dict[str, Any]], schema_repair: SchemaRepair | None
) -> dict[str, Any] | None:
    if not isinstance(response_format, Mapping):
        return None
    kind = response_format.get("type")
    if kind == "json_object":
        spec: Mapping[str, Any] = {}
    elif kind == "json_schema":
        spec = response_format.get("json_schema") or {}
    else:
        return None
    schema: Any = spec.get("schema") or {"type": "object"}
    if schema_repair is not None:
        schema = schema_repair(schema)
    taken = {t["name"] for t in tools}
    name = spec.get("name")
    if not isinstance(name, str) or not _TOOL_NAME.match(name) or name in taken:
        name = _JSON_TOOL_DEFAULT_NAME
        while name in taken:
            name = "_" + name
    return {
        "name": name,
        "description": spec.get("description") or _JSON_TOOL_DESCRIPTION,
        "input_schema": schema,
    }


def _used_tool_names(turns: list[dict[str, Any]]) -> list[str]:
    names: dict[str, None] = {}
    for turn in turns:
        if turn["role"] == "assistant":
            for block in turn["content"]:
                if block["type"] == "tool_use":
                    names[block["name"]] = None
    return list(names)
