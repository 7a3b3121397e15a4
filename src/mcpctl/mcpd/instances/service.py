"""What the instance routes do: authorization, audit, then the supervisor.

Decisions (docs/instances.md):

- Seeing an instance needs ``view`` on its server (an instance is a view of a server: its name
  is the server's name); the list shows only the instances of servers the caller may view.
- ``restart`` needs ``run`` on the server, the permission that lets one use it: restarting
  changes no definition, it is what a user does when the server they use misbehaves. It is
  audited (verb ``restart``).
- Logs need the ``logs`` operation (``authorize(caller, "run", "logs", None)``); they hold
  every server's stderr, which is operators' business.
"""

from __future__ import annotations

from typing import Any

from mcpctl.domain.caller import Caller
from mcpctl.errors import AppError, NotFound
from mcpctl.mcpd.db.uow import UnitOfWorkFactory
from mcpctl.mcpd.instances.logs import ServerLog
from mcpctl.mcpd.instances.supervisor import Supervisor
from mcpctl.mcpd.services.audit import AuditLog, event_for
from mcpctl.mcpd.services.authz import Authorizer


class InstanceService:
    def __init__(
        self,
        supervisor: Supervisor,
        authz: Authorizer,
        uows: UnitOfWorkFactory,
        audit: AuditLog | None = None,
    ) -> None:
        self.supervisor = supervisor
        self.authz = authz
        self.uows = uows
        self.audit = audit

    def list(self, caller: Caller) -> list[dict[str, Any]]:
        """Raises: PermissionDenied when the caller may view no server."""
        return self.supervisor.statuses(self.authz.viewable(caller, "servers"))

    def get(self, caller: Caller, name: str) -> dict[str, Any]:
        """Raises: PermissionDenied, NotFound (no instance of that server now)."""
        self.authz.authorize(caller, "view", "servers", name)
        return self.supervisor.status(name)

    async def restart(self, caller: Caller, name: str) -> dict[str, Any]:
        """Raises: PermissionDenied, NotFound (no such server), Unavailable (did not start)."""
        self.authz.authorize(caller, "run", "servers", name)
        try:
            status = await self.supervisor.restart(name, f"restart requested by {caller.user}")
        except AppError as exc:
            self._record(caller, name, exc)
            raise
        self._record(caller, name, None)
        return status

    async def logs(self, caller: Caller, name: str) -> ServerLog:
        """Raises: PermissionDenied (no ``logs`` operation), NotFound (no such server)."""
        self.authz.authorize(caller, "run", "logs", None)
        async with self.uows.read() as uow:
            exists = await uow.objects.get("Server", name) is not None
        if not exists and not self.supervisor.logs.has(name):
            raise NotFound(f"server {name!r} not found")
        return self.supervisor.log_of(name)

    def _record(self, caller: Caller, name: str, error: AppError | None) -> None:
        if self.audit is not None:
            self.audit.record(event_for(caller, "restart", "Server", name, error=error))
