"""Everything the app builds at start, held in typed app state (no module-level globals)."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry
from sqlalchemy.ext.asyncio import AsyncEngine

from mcpctl.mcpd.instances.service import InstanceService
from mcpctl.mcpd.llm.chat import ChatService
from mcpctl.mcpd.llm.pools import PoolDispatcher
from mcpctl.mcpd.relay.endpoint import Relay
from mcpctl.mcpd.services.agents import AgentService
from mcpctl.mcpd.services.audit import AuditLog, AuditReader
from mcpctl.mcpd.services.auth import AuthService
from mcpctl.mcpd.services.authz import Authorizer
from mcpctl.mcpd.services.backup import BackupService
from mcpctl.mcpd.services.following import ObjectFollower
from mcpctl.mcpd.services.objects import ObjectService
from mcpctl.mcpd.services.threads import ThreadService
from mcpctl.mcpd.services.tokens import TokenService
from mcpctl.mcpd.settings import Settings


@dataclass
class AppState:
    settings: Settings
    engine: AsyncEngine
    auth: AuthService
    authz: Authorizer
    objects: ObjectService
    follower: ObjectFollower
    metrics: CollectorRegistry
    audit: AuditLog
    audit_events: AuditReader
    backup: BackupService
    tokens: TokenService
    instances: InstanceService
    relay: Relay
    pools: PoolDispatcher
    agents: AgentService
    threads: ThreadService
    chat: ChatService
