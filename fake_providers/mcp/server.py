"""A small MCP server built with the official SDK's low-level ``Server``, served over streamable
HTTP at ``/mcp``. Its tools are deliberately awkward for model providers:

- ``add`` (``{a, b}`` numbers) answers ``a + b`` as text;
- ``ping`` has ``properties: null`` and ``required: null`` (a zero-argument tool as some servers
  describe it) and answers ``pong``;
- ``lookup`` has a ``type`` array (``["string", "null"]``) and an array without ``items``; it
  answers the ``key`` it got as text;
- ``fail`` always answers an error result (``is_error``) "lookup backend unavailable";
- ``slow`` waits ``seconds`` on the app's clock (a named sleep, ``fake_tool``; the real clock
  unless ``create_mcp_app(clock=...)`` says otherwise) and answers ``done``.

Run on its own: ``python -m fake_providers.mcp [--port N]``.
"""

from __future__ import annotations

from typing import Any

import mcp_types as types
from mcp.server.lowlevel import Server
from starlette.applications import Starlette

from fake_providers.clock import Clock, RealClock

SLOW_TOOL = "fake_tool"
"""The name of the ``slow`` tool's sleep on the clock."""

TOOLS: list[dict[str, Any]] = [
    {
        "name": "add",
        "description": "Add two numbers",
        "input_schema": {
            "type": "object",
            "properties": {"a": {"type": "number"}, "b": {"type": "number"}},
            "required": ["a", "b"],
        },
    },
    {
        "name": "ping",
        "description": "Answers pong",
        "input_schema": {"type": "object", "properties": None, "required": None},
    },
    {
        "name": "lookup",
        "description": "Look a key up",
        "input_schema": {
            "type": "object",
            "properties": {"key": {"type": ["string", "null"]}, "tags": {"type": "array"}},
            "required": None,
        },
    },
    {"name": "fail", "description": "Always fails", "input_schema": {"type": "object"}},
    {
        "name": "slow",
        "description": "Waits, then answers",
        "input_schema": {"type": "object", "properties": {"seconds": {"type": "number"}}},
    },
]


def _text(text: str, *, error: bool = False) -> types.CallToolResult:
    return types.CallToolResult(content=[types.TextContent(type="text", text=text)], is_error=error)


async def _list_tools(_ctx: Any, _params: types.PaginatedRequestParams | None) -> types.ListToolsResult:
    return types.ListToolsResult(tools=[types.Tool(**tool) for tool in TOOLS])


async def _call_tool(clock: Clock, params: types.CallToolRequestParams) -> types.CallToolResult:
    args = params.arguments or {}
    if params.name == "add":
        return _text(str(args.get("a", 0) + args.get("b", 0)))
    if params.name == "ping":
        return _text("pong")
    if params.name == "lookup":
        return _text(f"value of {args.get('key')}")
    if params.name == "fail":
        return _text("lookup backend unavailable", error=True)
    if params.name == "slow":
        await clock.sleep(float(args.get("seconds", 0.1)), name=SLOW_TOOL)
        return _text("done")
    return _text(f"unknown tool {params.name}", error=True)


def create_mcp_app(*, clock: Clock | None = None) -> Starlette:
    """The MCP server as an ASGI app; the ``slow`` tool waits on ``clock`` (default: real time)."""
    the_clock = clock or RealClock()

    async def call_tool(_ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        return await _call_tool(the_clock, params)

    server: Server[Any] = Server("fake-mcp", version="1.0", on_list_tools=_list_tools, on_call_tool=call_tool)
    return server.streamable_http_app(streamable_http_path="/mcp", stateless_http=True, json_response=True)
