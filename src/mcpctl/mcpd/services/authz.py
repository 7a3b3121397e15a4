"""The one authorization seam every route goes through.

For now the admin may do everything and nobody else anything; the RBAC issue replaces the
body of ``allows`` (evaluating RbacDefinitions) without touching any caller. Every denial is
recorded in the audit trail here, so no route can forget to.
"""

from __future__ import annotations

from typing import Literal

from mcpctl.domain.caller import Caller
from mcpctl.errors import PermissionDenied
from mcpctl.mcpd.services.audit import AuditLog, event_for, kind_of

Verb = Literal["view", "create", "edit", "delete", "run", "reveal"]


class Authorizer:
    def __init__(self, audit: AuditLog | None = None) -> None:
        self.audit = audit

    def allows(self, caller: Caller, verb: Verb, resource: str, name: str | None) -> bool:
        return caller.is_admin

    def authorize(self, caller: Caller, verb: Verb, resource: str, name: str | None) -> None:
        """Raises:
        PermissionDenied: naming the missing permission (and audited)."""
        if self.allows(caller, verb, resource, name):
            return
        target = f"{resource}/{name}" if name else resource
        error = PermissionDenied(f"user {caller.user!r} may not {verb} {target}")
        if self.audit is not None:
            self.audit.record(event_for(caller, verb, kind_of(resource), name, error=error))
        raise error
