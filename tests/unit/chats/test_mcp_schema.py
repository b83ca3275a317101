"""MCP tool schemas as function parameters (the SDK drops null keys on the wire, so the null
cases are checked here)."""

from __future__ import annotations

import mcp_types as types

from gateway.chats.mcp_tools import result_json, tool_parameters


def test_null_required_and_properties() -> None:
    assert tool_parameters({"type": "object", "properties": None, "required": None}) == {
        "type": "object",
        "properties": {},
    }
    assert tool_parameters(None) == {"type": "object", "properties": {}}
    assert tool_parameters({"properties": {"k": {"type": ["string", "null"]}}, "required": None}) == {
        "type": "object",
        "properties": {"k": {"anyOf": [{"type": "string"}, {"type": "null"}]}},
    }


def test_results() -> None:
    def text(t: str, error: bool = False) -> types.CallToolResult:
        return types.CallToolResult(content=[types.TextContent(type="text", text=t)], is_error=error)

    assert result_json(text('{"a":1}')) == ('{"a":1}', False)
    assert result_json(text("plain")) == ('{"output":"plain"}', False)
    assert result_json(text("boom", error=True)) == ('{"error":"boom"}', True)
