"""The MCP relay: ``/api/v1/servers/{name}/mcp`` serves each server as a streamable-HTTP MCP
endpoint (docs/relay.md).

- ``endpoint.py``: the endpoint: bearer token, ``run`` permission, sessions, HTTP methods
  (mounted ahead of the REST API by ``mcpd/routes/relay.py``).
- ``stdio.py``: JSON-RPC over an instance's shared stdio ``Connection`` (the lean path).
- ``http.py``: raw pass-through to http instances (docker http, external).
- ``sessions.py``: relay sessions in memory and the notification fan-out per server.

JSON-RPC messages, protocol versions and our errors as JSON-RPC errors (``protocol``), and
writing JSON and SSE answers straight to ASGI (``wire``), are in ``mcpctl.jsonrpc``, shared
with mcplocal.
"""
