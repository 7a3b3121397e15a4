"""The mcpd composition root: ``create_app(settings)`` builds the routes; its lifespan opens
the store and assembles the services (``assemble.py``).

The MCP relay (``/api/v1/servers/{name}/mcp``) and the OpenAI-compatible endpoint
(``/v1/models``, ``/v1/chat/completions``) are answered ahead of FastAPI's router and middleware
(``routes/relay.py`` and ``routes/openai.py`` say what they keep of them): the per-request work
they do is more than these hot paths' own.
"""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from fastapi import FastAPI
from prometheus_client import CollectorRegistry
from starlette.types import Receive, Scope, Send

from mcpctl.mcpd.assemble import assemble
from mcpctl.mcpd.metrics import HttpMetrics, MetricsMiddleware
from mcpctl.mcpd.problems import install_handlers
from mcpctl.mcpd.request_id import RequestIdMiddleware
from mcpctl.mcpd.routes import agents, bulk, instances, llms, permissions, system, threads
from mcpctl.mcpd.routes import audit as audit_routes
from mcpctl.mcpd.routes import backup as backup_routes
from mcpctl.mcpd.routes import chat as chat_routes
from mcpctl.mcpd.routes import openai as openai_routes
from mcpctl.mcpd.routes import relay as relay_routes
from mcpctl.mcpd.routes import tokens as token_routes
from mcpctl.mcpd.routes.resources import resource_routers
from mcpctl.mcpd.settings import Settings
from mcpctl.mcpd.state import AppState
from mcpctl.mcpd.store import open_store


class McpdApp(FastAPI):
    """FastAPI, with relay requests handed to ``relay_mount`` before anything else runs."""

    relay_mount: relay_routes.RelayMount | None = None
    openai_mount: openai_routes.OpenAIMount | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        mount = self.relay_mount
        if mount is not None and (name := relay_routes.server_of(scope)) is not None:
            state: AppState | None = getattr(self.state, "mcpd", None)
            if state is not None:
                await mount(state.relay, name, scope, receive, send)
                return
        openai = self.openai_mount
        if openai is not None and (path := openai_routes.path_of(scope)) is not None:
            state = getattr(self.state, "mcpd", None)
            if state is not None:
                await openai(state, path, scope, receive, send)
                return
        await super().__call__(scope, receive, send)


def create_app(settings: Settings) -> McpdApp:
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

    app = McpdApp(
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
    app.include_router(llms.router)
    app.include_router(agents.router)
    app.include_router(chat_routes.router)
    app.include_router(threads.router)
    for router in resource_routers():
        app.include_router(router)
    metrics = HttpMetrics(registry)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    app.add_middleware(RequestIdMiddleware)
    app.relay_mount = relay_routes.RelayMount(metrics)
    app.openai_mount = openai_routes.OpenAIMount(metrics)
    return app
