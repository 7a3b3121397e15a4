"""The mcpd composition root: ``create_app(settings)`` builds everything in its lifespan."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

from argon2 import PasswordHasher
from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from mcpctl.mcpd.db.uow import UnitOfWorkFactory
from mcpctl.mcpd.metrics import HttpMetrics, MetricsMiddleware
from mcpctl.mcpd.problems import install_handlers
from mcpctl.mcpd.request_id import RequestIdMiddleware
from mcpctl.mcpd.routes import audit as audit_routes
from mcpctl.mcpd.routes import backup as backup_routes
from mcpctl.mcpd.routes import bulk, system
from mcpctl.mcpd.routes import tokens as token_routes
from mcpctl.mcpd.routes.resources import resource_routers
from mcpctl.mcpd.services.audit import AuditLog, AuditReader
from mcpctl.mcpd.services.auth import AuthService
from mcpctl.mcpd.services.authz import Authorizer
from mcpctl.mcpd.services.backup import BackupService
from mcpctl.mcpd.services.behaviours import ServerBehaviour, TemplateBehaviour
from mcpctl.mcpd.services.catalog import seed_templates
from mcpctl.mcpd.services.objects import ObjectService
from mcpctl.mcpd.services.ratelimit import LoginLimiter, LoginLimits
from mcpctl.mcpd.services.rbac import GrantCache, bootstrap_rbac
from mcpctl.mcpd.services.rbac import behaviours as rbac_behaviours
from mcpctl.mcpd.services.secrets import SecretBehaviour
from mcpctl.mcpd.services.tokens import TokenService
from mcpctl.mcpd.settings import Settings
from mcpctl.mcpd.state import AppState
from mcpctl.mcpd.store import open_store

log = logging.getLogger(__name__)


def create_app(settings: Settings) -> FastAPI:
    """Build the mcpd ASGI app; the database is opened and migrated when it starts."""
    registry = CollectorRegistry()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine, box = await open_store(settings)
        audit: AuditLog | None = None
        try:
            uows = UnitOfWorkFactory(engine)
            days = settings.audit_retention_days
            audit = AuditLog(
                uows, registry=registry, retention=timedelta(days=days) if days else None
            )
            audit.start()
            authz = Authorizer(audit)
            grants = GrantCache(uows, ttl=settings.rbac_cache_seconds)
            behaviours = {
                "Secret": SecretBehaviour(box),
                "Server": ServerBehaviour(),
                "Template": TemplateBehaviour(),
                **rbac_behaviours(grants),
            }
            objects = ObjectService(uows, authz, behaviours, audit)
            limits = LoginLimits(
                per_user=settings.login_max_failures_per_user,
                per_client=settings.login_max_failures_per_client,
                window_seconds=settings.login_failure_window_seconds,
            )
            auth = AuthService(
                uows,
                PasswordHasher(),
                audit,
                token_lifetime=timedelta(days=settings.token_lifetime_days),
                limiter=LoginLimiter(limits),
                grants=grants,
            )
            password = (
                settings.admin_password.get_secret_value() if settings.admin_password else None
            )
            await auth.bootstrap_admin(settings.data_dir, password)
            # Not audited, like the bootstrap admin user itself: nobody asked for it.
            await bootstrap_rbac(uows, ObjectService(uows, authz, behaviours))
            await seed_templates(objects, settings.templates_dir)
            # Everything imported and built so far lives as long as the process: move it out of
            # the collector's reach, or full collections over it stall requests (tens of ms).
            gc.collect()
            gc.freeze()
            app.state.mcpd = AppState(
                settings=settings,
                engine=engine,
                auth=auth,
                authz=authz,
                objects=objects,
                metrics=registry,
                audit=audit,
                audit_events=AuditReader(uows, authz),
                backup=BackupService(uows, objects, authz, audit),
                tokens=TokenService(uows, authz, audit),
            )
            yield
        finally:
            # Queued audit events are written before the engine goes: nothing lost on shutdown.
            if audit is not None:
                await audit.close()
            await engine.dispose()

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
    for router in resource_routers():
        app.include_router(router)
    app.add_middleware(MetricsMiddleware, metrics=HttpMetrics(registry))
    app.add_middleware(RequestIdMiddleware)
    return app
