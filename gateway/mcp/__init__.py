"""MCP client: tools of configured MCP servers, offered to chats as built-in tools."""
