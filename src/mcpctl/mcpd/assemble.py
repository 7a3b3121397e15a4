"""Building mcpd's services at start, in dependency order, each one's shutdown on one stack.

``create_app`` (app.py) calls ``assemble`` in its lifespan. Clean-ups run in reverse order of
registration, which is the order shutdown needs: relay sessions end first (open streams close,
calls in flight are cancelled), then every instance is stopped (no process outlives mcpd), then
queued audit events are written (nothing lost), and the engine goes last.
"""

from __future__ import annotations

from contextlib import AsyncExitStack
from datetime import timedelta
from functools import partial

from argon2 import PasswordHasher
from prometheus_client import CollectorRegistry
from sqlalchemy.ext.asyncio import AsyncEngine

from mcpctl.mcpd.changes import ObjectChanges
from mcpctl.mcpd.db.engine import is_sqlite
from mcpctl.mcpd.db.notify import PgAnnouncer, PgListener, asyncpg_dsn, channel_for
from mcpctl.mcpd.db.uow import UnitOfWorkFactory
from mcpctl.mcpd.instances.service import InstanceService
from mcpctl.mcpd.instances.setup import build_supervisor
from mcpctl.mcpd.llm.chat import ChatLimits, ChatService
from mcpctl.mcpd.llm.pools import build_dispatcher
from mcpctl.mcpd.llm.server_calls import ServerLinks
from mcpctl.mcpd.metrics import watch_waiters
from mcpctl.mcpd.relay.endpoint import Relay
from mcpctl.mcpd.services.agents import AgentService, PersonalityBehaviour
from mcpctl.mcpd.services.audit import AuditLog, AuditReader
from mcpctl.mcpd.services.auth import AuthService
from mcpctl.mcpd.services.authz import Authorizer
from mcpctl.mcpd.services.backup import BackupService
from mcpctl.mcpd.services.behaviours import (
    Behaviour,
    LlmBehaviour,
    ProjectBehaviour,
    ServerBehaviour,
    TemplateBehaviour,
)
from mcpctl.mcpd.services.catalog import seed_templates
from mcpctl.mcpd.services.following import ObjectFollower
from mcpctl.mcpd.services.objects import ObjectService
from mcpctl.mcpd.services.ratelimit import LoginLimiter, LoginLimits
from mcpctl.mcpd.services.rbac import GrantCache, bootstrap_rbac
from mcpctl.mcpd.services.rbac import behaviours as rbac_behaviours
from mcpctl.mcpd.services.sealing import SecretBox
from mcpctl.mcpd.services.secrets import SecretBehaviour
from mcpctl.mcpd.services.threads import ThreadService, ThreadStore
from mcpctl.mcpd.services.tokens import TokenService
from mcpctl.mcpd.services.users import UserBehaviour, adopt_user_rows
from mcpctl.mcpd.settings import Settings
from mcpctl.mcpd.state import AppState


async def assemble(
    settings: Settings,
    engine: AsyncEngine,
    box: SecretBox,
    registry: CollectorRegistry,
    stack: AsyncExitStack,
) -> AppState:
    """Every service of mcpd, with the bootstrap objects in place and instances supervised."""
    # Commits of object writes wake the long-polls following those objects, on every replica.
    changes = await object_changes(settings, stack)
    watch_waiters(registry, changes)
    uows = UnitOfWorkFactory(engine, changes)
    days = settings.audit_retention_days
    audit = AuditLog(uows, registry=registry, retention=timedelta(days=days) if days else None)
    audit.start()
    stack.push_async_callback(audit.close)
    authz = Authorizer(audit)
    grants = GrantCache(uows, ttl=settings.rbac_cache_seconds)
    hasher = PasswordHasher()
    secrets = SecretBehaviour(box)
    # Built here, started below: written Servers and Templates roll its running instances.
    supervisor = build_supervisor(settings, uows, secrets)
    # Its connection pool closes after the relay's sessions end (clean-ups run in reverse).
    pools = build_dispatcher(settings, uows, secrets, authz)
    stack.push_async_callback(pools.aclose)
    behaviours: dict[str, Behaviour] = {
        "Secret": secrets,
        "Server": ServerBehaviour(on_committed=supervisor.specs_changed),
        "Project": ProjectBehaviour(),
        "Llm": LlmBehaviour(on_committed=pools.llms_changed),
        "Template": TemplateBehaviour(on_committed=supervisor.specs_changed),
        "Personality": PersonalityBehaviour(),
        "User": UserBehaviour(hasher),
        **rbac_behaviours(grants),
    }
    objects = ObjectService(uows, authz, behaviours, audit)
    auth = AuthService(
        uows,
        hasher,
        audit,
        token_lifetime=timedelta(days=settings.token_lifetime_days),
        limiter=LoginLimiter(_login_limits(settings)),
        grants=grants,
    )
    password = settings.admin_password.get_secret_value() if settings.admin_password else None
    await auth.bootstrap_admin(settings.data_dir, password)
    # Not audited, like the bootstrap admin user itself: nobody asked for it. Every users row
    # gets its User object (the admin's, and those of older databases).
    unaudited = ObjectService(uows, authz, behaviours)
    await adopt_user_rows(uows, unaudited)
    await bootstrap_rbac(uows, unaudited)
    await seed_templates(objects, settings.templates_dir)
    # Reaps what a killed mcpd left running, then starts keep-alive servers.
    await supervisor.start()
    stack.push_async_callback(supervisor.close)
    relay = Relay(
        auth=auth,
        authz=authz,
        audit=audit,
        supervisor=supervisor,
        auth_cache_seconds=settings.rbac_cache_seconds,
    )
    stack.push_async_callback(relay.aclose)
    agents = AgentService(uows, authz)
    store = ThreadStore(uows)
    chat = ChatService(
        uows=uows,
        agents=agents,
        store=store,
        pools=pools,
        # Agents reach http servers with the relay's client (closed with the relay).
        links=partial(
            ServerLinks, supervisor, relay.http.client, settings.chat_tool_timeout_seconds
        ),
        authz=authz,
        audit=audit,
        limits=ChatLimits(max_tool_rounds=settings.chat_max_tool_rounds),
    )
    return AppState(
        settings=settings,
        engine=engine,
        auth=auth,
        authz=authz,
        objects=objects,
        follower=ObjectFollower(objects, changes, grants),
        metrics=registry,
        audit=audit,
        audit_events=AuditReader(uows, authz),
        backup=BackupService(uows, objects, authz, audit),
        tokens=TokenService(uows, authz, audit),
        instances=InstanceService(supervisor, authz, uows, audit),
        relay=relay,
        pools=pools,
        agents=agents,
        threads=ThreadService(store, authz, audit),
        chat=chat,
    )


def _login_limits(settings: Settings) -> LoginLimits:
    return LoginLimits(
        per_user=settings.login_max_failures_per_user,
        per_client=settings.login_max_failures_per_client,
        window_seconds=settings.login_failure_window_seconds,
    )


async def object_changes(settings: Settings, stack: AsyncExitStack) -> ObjectChanges:
    """The change feed of objects; on PostgreSQL also announced to and heard from the other
    replicas (db/notify.py)."""
    url = settings.effective_database_url()
    if is_sqlite(url):
        return ObjectChanges()
    channel = channel_for(settings.database_schema)
    changes = ObjectChanges(PgAnnouncer(channel).announce)
    listener = PgListener(asyncpg_dsn(url), channel, changes)
    listener.start()
    stack.push_async_callback(listener.aclose)
    return changes
