"""Placeholder until the MCP SDK client lands: no servers answer, so no tools are offered."""

from __future__ import annotations

from collections.abc import Sequence

from gateway.chat.tools import BuiltinTool
from gateway.config import McpServerSettings


class McpTools:
    def __init__(self, servers: Sequence[McpServerSettings]) -> None:
        self.servers = {s.name: s for s in servers}

    async def tools(self, names: list[str]) -> list[BuiltinTool]:
        return []
