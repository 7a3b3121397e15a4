"""The one authorization seam every route goes through.

For now the admin may do everything and nobody else anything; the RBAC issue replaces the
body of ``authorize`` (evaluating RbacDefinitions) without touching any caller.
"""

from __future__ import annotations

from typing import Literal

from mcpctl.domain.caller import Caller
from mcpctl.errors import PermissionDenied

Verb = Literal["view", "create", "edit", "delete", "run", "reveal"]


class Authorizer:
    def authorize(self, caller: Caller, verb: Verb, resource: str, name: str | None) -> None:
        """Raises:
        PermissionDenied: naming the missing permission."""
        if caller.is_admin:
            return
        target = f"{resource}/{name}" if name else resource
        raise PermissionDenied(f"user {caller.user!r} may not {verb} {target}")
