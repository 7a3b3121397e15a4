"""Listing and revoking bearer tokens. Only metadata leaves here: never a token or its hash."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from mcpctl.domain.caller import Caller
from mcpctl.errors import NotFound, Unauthenticated
from mcpctl.mcpd.db.tables import TokenRow, utcnow
from mcpctl.mcpd.db.uow import UnitOfWorkFactory
from mcpctl.mcpd.services.audit import AuditLog, event_for
from mcpctl.mcpd.services.authz import Authorizer

TOKEN_KIND = "Token"  # noqa: S105 (a kind name)


@dataclass(frozen=True)
class TokenInfo:
    id: str
    user: str
    description: str
    created_at: datetime
    expires_at: datetime | None
    current: bool


def _info(row: TokenRow, user: str, caller: Caller) -> TokenInfo:
    return TokenInfo(
        id=row.id,
        user=user,
        description=row.description,
        created_at=row.created_at,
        expires_at=row.expires_at,
        current=row.id == caller.token_id,
    )


class TokenService:
    def __init__(
        self, uow_factory: UnitOfWorkFactory, authz: Authorizer, audit: AuditLog | None = None
    ) -> None:
        self.uows = uow_factory
        self.authz = authz
        self.audit = audit

    async def list(self, caller: Caller, *, all_users: bool = False) -> list[TokenInfo]:
        """The caller's unexpired tokens, or everyone's with ``all_users``.

        Raises:
            PermissionDenied: ``all_users`` without permission to view tokens.
        """
        if all_users:
            self.authz.authorize(caller, "view", "tokens", None)
        async with self.uows.read() as uow:
            user_id = None
            if not all_users:
                user = await uow.users.get_by_name(caller.user)
                if user is None:
                    raise Unauthenticated(f"user {caller.user!r} no longer exists")
                user_id = user.id
            rows = await uow.users.tokens(utcnow(), user_id)
        return [_info(row, name, caller) for row, name in rows]

    async def revoke(self, caller: Caller, token_id: str) -> None:
        """Delete a token: the caller's own always, another user's with permission.

        Raises:
            PermissionDenied: another user's token (or an unknown id) without permission, so
                ids of other users' tokens cannot be probed.
            NotFound: no such token.
        """
        async with self.uows.write() as uow:
            found = await uow.users.token(token_id)
            if found is None or found[1] != caller.user:
                self.authz.authorize(caller, "delete", "tokens", token_id)
            if found is None:
                raise NotFound(f"token {token_id!r} not found")
            await uow.users.delete_token(token_id)
            await uow.commit()
        if self.audit is not None:
            self.audit.record(
                event_for(caller, "delete", TOKEN_KIND, token_id, details={"user": found[1]})
            )
