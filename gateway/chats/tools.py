"""The tools of a chat: built-in ones (from MCP servers) run here; dynamic ones by the client.

Tool definitions go upstream in Chat Completions shape; their schemas are repaired for the
target provider in the step (``repair_chat_tools``). Dynamic tools come after built-ins and a
dynamic tool whose name a built-in already uses is dropped. A dynamic schema
contributes only ``properties`` and ``required``; ``required`` is sent only when
non-empty.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import msgspec

from gateway.chats.model import DynamicTool
from gateway.errors.decoding import MALFORMED_JSON

log = logging.getLogger("gateway.chats.tools")
_ENC = msgspec.json.Encoder()

# Runs a built-in tool: arguments in, (result as JSON text, is_error) out.
Runner = Callable[[dict[str, Any]], Awaitable[tuple[str, bool]]]


class BuiltinTool(msgspec.Struct, frozen=True):
    name: str
    description: str
    parameters: Any
    server: str
    run: Runner


def dynamic_parameters(schema: Any) -> dict[str, Any]:
    params: dict[str, Any] = {"type": "object", "properties": {}}
    if isinstance(schema, dict):
        properties = schema.get("properties")
        if isinstance(properties, dict):
            params["properties"] = properties
        required = schema.get("required")
        if isinstance(required, list) and required:
            params["required"] = required
    return params


class ToolSet:
    def __init__(self, builtin: Sequence[BuiltinTool], dynamic: Sequence[DynamicTool]) -> None:
        self.builtin = {t.name: t for t in builtin}
        self.dynamic: dict[str, DynamicTool] = {}
        for tool in dynamic:
            if tool.name in self.builtin:
                log.warning("dynamic tool %r hidden by a built-in tool of the same name", tool.name)
                continue
            self.dynamic[tool.name] = tool

    def definitions(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for b in self.builtin.values():
            fn: dict[str, Any] = {"name": b.name, "parameters": b.parameters}
            if b.description:
                fn["description"] = b.description
            out.append({"type": "function", "function": fn})
        for d in self.dynamic.values():
            fn = {"name": d.name, "parameters": dynamic_parameters(d.input_schema)}
            if d.description:
                fn["description"] = d.description
            out.append({"type": "function", "function": fn})
        return out

    async def execute(self, name: str, args: str) -> tuple[str, bool]:
        """Run a built-in tool; every failure becomes an error result."""
        tool = self.builtin.get(name)
        if tool is None:
            return _error(f"Tool not found: {name}"), True
        try:
            value = msgspec.json.decode(args or "{}")
        except MALFORMED_JSON:
            value = {}
        try:
            return await tool.run(value if isinstance(value, dict) else {})
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                # The tool's library turned our cancellation into an error (the MCP client's
                # task group does): the turn is being interrupted, not the tool failing.
                raise asyncio.CancelledError from exc
            log.warning("tool %r failed: %s", name, exc)
            return _error(f"tool failed: {exc}"), True


def _error(text: str) -> str:
    return _ENC.encode({"error": text}).decode()
