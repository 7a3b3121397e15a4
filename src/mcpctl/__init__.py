"""mcpctl: kubectl for MCP servers."""
