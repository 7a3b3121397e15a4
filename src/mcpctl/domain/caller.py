"""Who is making a request, as every authorization decision and audit event sees it."""

from __future__ import annotations

from dataclasses import dataclass

ANONYMOUS = "anonymous"


@dataclass(frozen=True)
class Caller:
    user: str
    is_admin: bool = False
    token_id: str | None = None
    # Where the request came from, for the audit trail; None for mcpd's own work.
    request_id: str | None = None
    client: str | None = None
    # Set by impersonation: the user who asked to act as ``user``.
    impersonated_by: str | None = None


SYSTEM = Caller(user="system:mcpd", is_admin=True)
