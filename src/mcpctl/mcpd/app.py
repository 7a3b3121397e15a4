"""The mcpd composition root: ``create_app(settings)`` builds the routes; its lifespan opens
the store and assembles the services (``assemble.py``)."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from mcpctl.mcpd.assemble import assemble
from mcpctl.mcpd.metrics import HttpMetrics, MetricsMiddleware
from mcpctl.mcpd.problems import install_handlers
from mcpctl.mcpd.request_id import RequestIdMiddleware
from mcpctl.mcpd.routes import audit as audit_routes
from mcpctl.mcpd.routes import backup as backup_routes
from mcpctl.mcpd.routes import bulk, instances, permissions, system
from mcpctl.mcpd.routes import relay as relay_routes
from mcpctl.mcpd.routes import tokens as token_routes
from mcpctl.mcpd.routes.resources import resource_routers
from mcpctl.mcpd.settings import Settings
from mcpctl.mcpd.store import open_store


def create_app(settings: Settings) -> FastAPI:
    """Build the mcpd ASGI app; the database is opened and migrated when it starts."""
    registry = CollectorRegistry()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            engine, box = await open_store(settings)
            stack.push_async_callback(engine.dispose)
            app.state.mcpd = await assemble(settings, engine, box, registry, stack)
            # Everything imported and built so far lives as long as the process: move it out
            # of the collector's reach, or full collections over it stall requests (tens of ms).
            gc.collect()
            gc.freeze()
            yield

    app = FastAPI(
        title="mcpd",
        summary="The mcpctl control plane",
        version="0.1.0",
        lifespan=lifespan,
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )
    install_handlers(app)
    app.include_router(system.router)
    app.include_router(bulk.router)
    app.include_router(backup_routes.router)
    app.include_router(audit_routes.router)
    app.include_router(token_routes.router)
    # Before the per-kind routes, so /api/v1/users/{name}/permissions is never read as theirs.
    app.include_router(permissions.router)
    # Before the per-kind routes too: /api/v1/servers/{name}/restart and .../logs.
    app.include_router(instances.router)
    # The MCP relay (/api/v1/servers/{name}/mcp): MCP, not REST, so not in the schema.
    app.router.routes.append(relay_routes.route())
    for router in resource_routers():
        app.include_router(router)
    app.add_middleware(MetricsMiddleware, metrics=HttpMetrics(registry))
    app.add_middleware(RequestIdMiddleware)
    return app
