"""mcplocal: the local proxy that serves one MCP endpoint per project."""
