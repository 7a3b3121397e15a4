"""``mcplocal stdio``: one project endpoint served over stdin/stdout, in process.

In process rather than bridged to a running ``mcplocal serve``: a client that only speaks
stdio (and starts mcplocal itself) then needs nothing else running, and the path has one hop
less. It is the same project runtime as the HTTP endpoint (aggregation, naming, watch,
list_changed); only the capture endpoint is HTTP-only.
"""

from __future__ import annotations

from mcp.server.stdio import stdio_server

from mcpctl.mcplocal.app import endpoint_config
from mcpctl.mcplocal.endpoint import open_project
from mcpctl.mcplocal.projects import McpdProjects, ProjectSource
from mcpctl.mcplocal.settings import Settings
from mcpctl.mcplocal.upstreams import Locator, relay_locator


async def serve_stdio(
    settings: Settings,
    project: str,
    *,
    locator: Locator | None = None,
    projects: ProjectSource | None = None,
) -> None:
    """Serve ``project`` until stdin closes.

    Raises:
        NotFound: mcpd has no such project.
        Unavailable, Unauthenticated, PermissionDenied: mcpd could not tell.
    """
    token = settings.token.get_secret_value() if settings.token else None
    locate = locator or relay_locator(settings.upstream_url_template, settings.mcpd_url, token)
    source = projects or McpdProjects(settings.mcpd_url, token)
    try:
        async with (
            open_project(
                project, source=source, locator=locate, config=endpoint_config(settings)
            ) as runtime,
            stdio_server() as (read, write),
        ):
            server = runtime.server
            await server.run(read, write, server.create_initialization_options())
    finally:
        if projects is None:
            await source.aclose()
