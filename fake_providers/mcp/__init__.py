"""A fake MCP server (streamable HTTP) for the gateway's MCP client: see :mod:`.server`."""

from fake_providers.mcp.server import create_mcp_app

__all__ = ["create_mcp_app"]
