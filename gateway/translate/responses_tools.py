"""Responses tools, ``tool_choice`` and ``text.format`` -> their Chat Completions forms.

Only function tools cross over; ``strict`` is passed only when the client set it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gateway.translate.errors import TranslationError


def chat_tool(tool: Mapping[str, Any], index: int) -> dict[str, Any]:
    if tool.get("type") != "function":
        raise TranslationError(
            f"Tools of type {tool.get('type')!r} are not supported by this model.", param=f"tools[{index}]"
        )
    function: dict[str, Any] = {"name": tool.get("name")}
    for key in ("description", "parameters", "strict"):
        if tool.get(key) is not None:
            function[key] = tool[key]
    return {"type": "function", "function": function}


def chat_tool_choice(choice: Any) -> Any:
    if isinstance(choice, str):
        return choice
    kind = choice.get("type")
    if kind == "function":
        return {"type": "function", "function": {"name": choice.get("name")}}
    if kind == "allowed_tools":
        allowed = []
        for tool in choice.get("tools") or ():
            if tool.get("type") != "function":
                raise TranslationError(
                    "Only function tools can be allowed for this model.", param="tool_choice"
                )
            allowed.append({"type": "function", "function": {"name": tool.get("name")}})
        return {
            "type": "allowed_tools",
            "allowed_tools": {"mode": choice.get("mode", "auto"), "tools": allowed},
        }
    raise TranslationError(
        f"tool_choice of type {kind!r} is not supported by this model.", param="tool_choice"
    )


def chat_response_format(fmt: Mapping[str, Any]) -> dict[str, Any] | None:
    kind = fmt.get("type")
    if kind == "text":
        return None
    if kind == "json_object":
        return {"type": "json_object"}
    if kind == "json_schema":
        schema: dict[str, Any] = {"name": fmt.get("name")}
        for key in ("description", "schema", "strict"):
            if fmt.get(key) is not None:
                schema[key] = fmt[key]
        return {"type": "json_schema", "json_schema": schema}
    raise TranslationError(f"text.format of type {kind!r} is not supported.", param="text.format")
