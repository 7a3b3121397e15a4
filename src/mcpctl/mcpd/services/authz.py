"""The one authorization seam every route goes through.

Decisions come from the caller's grants, compiled from RbacDefinitions when the token was
authenticated (``mcpd/services/rbac.py``, rules in ``domain/rbac.py``); mcpd's own work
(``SYSTEM``) is always allowed. Every denial is recorded in the audit trail here, so no route
can forget to.
"""

from __future__ import annotations

from typing import Literal

from mcpctl.domain.caller import Caller
from mcpctl.domain.rbac import permits, viewable_names
from mcpctl.errors import PermissionDenied
from mcpctl.mcpd.services.audit import AuditLog, event_for, kind_of

Verb = Literal["view", "create", "edit", "delete", "run", "reveal"]


class Authorizer:
    def __init__(self, audit: AuditLog | None = None) -> None:
        self.audit = audit

    def allows(self, caller: Caller, verb: Verb, resource: str, name: str | None) -> bool:
        return caller.is_system or permits(caller.grants, verb, resource, name)

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

    def viewable(self, caller: Caller, resource: str) -> frozenset[str] | None:
        """What a list may show: None for everything, else only these names.

        Raises:
            PermissionDenied: when the caller may view no object of ``resource`` (audited).
        """
        if caller.is_system:
            return None
        names = viewable_names(caller.grants, resource)
        if names is not None and not names:
            self.authorize(caller, "view", resource, None)
        return names
