"""The MCP relay route, ``/api/v1/servers/{name}/mcp`` (docs/relay.md).

It speaks MCP's streamable HTTP, not REST, so it is a plain Starlette route outside the
OpenAPI schema; the app's ``Relay`` (built in the lifespan) answers it.
"""

from __future__ import annotations

from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from mcpctl.mcpd.state import AppState

PATH = "/api/v1/servers/{name}/mcp"


async def _relay(scope: Scope, receive: Receive, send: Send) -> None:
    state: AppState = scope["app"].state.mcpd
    await state.relay(scope, receive, send)


class _Endpoint:
    """An ASGI callable (not a function), so Starlette hands it the raw scope."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await _relay(scope, receive, send)


def route() -> Route:
    return Route(
        PATH, endpoint=_Endpoint(), methods=["GET", "POST", "DELETE"], include_in_schema=False
    )
