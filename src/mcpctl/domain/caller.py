"""Who is making a request, as every authorization decision and audit event sees it."""

from __future__ import annotations

from dataclasses import dataclass, field

from mcpctl.domain.rbac import Grant

ANONYMOUS = "anonymous"
SYSTEM_USER = "system:mcpd"  # not a valid user name (':'), so no token can stand for it


@dataclass(frozen=True)
class Caller:
    user: str
    # Compiled from the RbacDefinitions naming the user or their groups (domain/rbac.py).
    grants: frozenset[Grant] = field(default_factory=frozenset)
    token_id: str | None = None
    # Where the request came from, for the audit trail; None for mcpd's own work.
    request_id: str | None = None
    client: str | None = None
    # Set by impersonation: the user who asked to act as ``user``.
    impersonated_by: str | None = None

    @property
    def is_system(self) -> bool:
        return self.user == SYSTEM_USER


SYSTEM = Caller(user=SYSTEM_USER)
"""mcpd's own work (catalog seeding, backup internals, bootstrap): always allowed."""
