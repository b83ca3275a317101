"""Stateful chats: the server-side model loop, dynamic and MCP tools, resumable streams."""
