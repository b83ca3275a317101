"""MCP client: the tools of configured MCP servers (streamable HTTP), offered to chats as
built-in tools.

Each turn lists the tools of the servers its chat names; a server that cannot be reached
contributes no tools (logged) rather than failing the turn. Schemas are repaired for OpenAI-style
providers with :func:`gateway.schema_fix.repair_schema` (``required: null``, ``properties: null``,
type arrays, arrays without ``items``). A call opens its own session, so the calls of one step run
concurrently; a failure (transport, protocol, or an ``is_error`` result) becomes an error result
``{"error": ...}`` for the model. Text content is answered as-is when it is JSON, else as
``{"output": text}``; structured content is answered as JSON.

A server's ``timeout_seconds`` bounds each listing and each call on the injected clock (the named
timer ``mcp_timeout``, so tests fire it without waiting); the SDK's own timeouts, set to the same
value, stay as a backstop in real time.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import httpx2
import mcp_types as types
import msgspec
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from gateway.chats.tools import BuiltinTool
from gateway.clock import Clock, Watchdog
from gateway.config import McpServerSettings
from gateway.errors.decoding import MALFORMED_JSON
from gateway.schema_fix import repair_schema

log = logging.getLogger("gateway.mcp")
_ENC = msgspec.json.Encoder()
MCP_TIMEOUT = "mcp_timeout"
T = TypeVar("T")


class McpTimeout(Exception):
    """An MCP server did not answer within its ``timeout_seconds``."""


def tool_parameters(schema: Any) -> dict[str, Any]:
    """An MCP tool's input schema as function parameters: an object root, repaired."""
    base: dict[str, Any] = dict(schema) if isinstance(schema, dict) else {}
    base["type"] = "object"
    repaired = repair_schema(base, "openai").schema
    return dict(repaired) if isinstance(repaired, dict) else {"type": "object", "properties": {}}


def result_json(result: types.CallToolResult) -> tuple[str, bool]:
    """A call's result as the JSON text stored on the tool-result part, and whether it failed."""
    texts = [block.text for block in result.content if isinstance(block, types.TextContent)]
    text = "\n".join(texts)
    if result.is_error:
        return _ENC.encode({"error": text or "tool failed"}).decode(), True
    if result.structured_content is not None:
        return _ENC.encode(result.structured_content).decode(), False
    try:
        msgspec.json.decode(text)
    except MALFORMED_JSON:
        return _ENC.encode({"output": text}).decode(), False
    return text, False


class McpTools:
    def __init__(self, servers: Sequence[McpServerSettings], clock: Clock) -> None:
        self.servers = {s.name: s for s in servers}
        self._clock = clock

    def _client(self, server: McpServerSettings) -> Client:
        http = httpx2.AsyncClient(headers=dict(server.headers), timeout=server.timeout_seconds)
        return Client(
            streamable_http_client(server.url, http_client=http), read_timeout_seconds=server.timeout_seconds
        )

    async def _bounded(
        self, server: McpServerSettings, what: str, work: Callable[[Client], Awaitable[T]]
    ) -> T:
        """One session with ``server`` doing ``work``, within its ``timeout_seconds``."""
        guard = Watchdog(self._clock, server.timeout_seconds, name=MCP_TIMEOUT)
        try:
            async with self._client(server) as client:
                return await work(client)
        except BaseException:
            # However the SDK reports the cancellation (an exception group, an error of its own).
            if guard.absorb():
                raise McpTimeout(
                    f"MCP server {server.name!r} did not answer {what} within {server.timeout_seconds:g} s"
                ) from None
            raise
        finally:
            guard.cancel()

    async def tools(self, names: list[str]) -> list[BuiltinTool]:
        out: list[BuiltinTool] = []
        seen: set[str] = set()
        for name in names:
            server = self.servers.get(name)
            if server is None:
                continue
            try:
                listed = await self._bounded(server, "the tool listing", lambda c: c.list_tools())
            except Exception as exc:  # an unreachable server offers nothing this turn
                log.warning("MCP server %r: listing tools failed: %s", name, exc)
                continue
            for tool in listed.tools:
                if tool.name in seen:
                    log.warning("MCP tool %r of %r hidden by an earlier server's", tool.name, name)
                    continue
                seen.add(tool.name)
                out.append(
                    BuiltinTool(
                        name=tool.name,
                        description=tool.description or "",
                        parameters=tool_parameters(tool.input_schema),
                        server=name,
                        run=self._runner(server, tool.name),
                    )
                )
        return out

    def _runner(self, server: McpServerSettings, tool: str) -> Any:
        async def run(arguments: dict[str, Any]) -> tuple[str, bool]:
            try:
                result = await self._bounded(
                    server, f"the call of {tool!r}", lambda c: c.call_tool(tool, arguments)
                )
            except McpTimeout as exc:
                return _ENC.encode({"error": str(exc)}).decode(), True
            if not isinstance(result, types.CallToolResult):
                return _ENC.encode({"error": "unexpected MCP result"}).decode(), True
            return result_json(result)

        return run
