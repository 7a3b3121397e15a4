"""MCP server instances: the shared stdio connection, the supervisor and per-server logs."""
