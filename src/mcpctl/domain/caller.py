"""Who is making a request, as every authorization decision sees it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Caller:
    user: str
    is_admin: bool = False
    token_id: str | None = None


SYSTEM = Caller(user="system:mcpd", is_admin=True)
