"""A small streamable-HTTP MCP server (the MCP SDK's MCPServer) for the process runtime's http
transport.

Run as ``python http_fixture.py [--port N] [--path /mcp]``; the port defaults to the ``PORT``
environment variable, as mcpd sets it. It listens on 127.0.0.1 only, and first writes
``port N (PORT=...)`` to stderr, so tests can see how the port reached it. Tools:

- ``echo {text}``: the text back.
- ``getenv {name}``: the value of the environment variable (empty if unset).
- ``pid``: its process id.
"""

from __future__ import annotations

import os
import sys

from mcp.server.mcpserver import MCPServer


def main() -> None:
    argv = sys.argv[1:]
    port = int(argv[argv.index("--port") + 1]) if "--port" in argv else int(os.environ["PORT"])
    path = argv[argv.index("--path") + 1] if "--path" in argv else "/mcp"
    sys.stderr.write(f"port {port} (PORT={os.environ.get('PORT', '')})\n")
    sys.stderr.flush()
    server = MCPServer("http-fixture")

    @server.tool()
    def echo(text: str) -> str:
        return text

    @server.tool()
    def getenv(name: str) -> str:
        return os.environ.get(name, "")

    @server.tool()
    def pid() -> str:
        return str(os.getpid())

    server.run("streamable-http", host="127.0.0.1", port=port, streamable_http_path=path)


if __name__ == "__main__":
    main()
