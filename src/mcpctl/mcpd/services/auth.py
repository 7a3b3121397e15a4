"""Users and bearer tokens: random tokens stored as SHA-256 hashes, the bootstrap admin, and
impersonation (a caller acting as another user with the ``impersonate`` operation)."""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
import uuid
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from mcpctl.domain.caller import ANONYMOUS, Caller
from mcpctl.errors import PermissionDenied, RateLimited, Unauthenticated
from mcpctl.mcpd.db.repository import UserRepository
from mcpctl.mcpd.db.tables import TokenRow, UserRow, utcnow
from mcpctl.mcpd.db.uow import UnitOfWorkFactory
from mcpctl.mcpd.services.audit import AuditLog, event_for
from mcpctl.mcpd.services.authz import Authorizer
from mcpctl.mcpd.services.ratelimit import LoginLimiter
from mcpctl.mcpd.services.rbac import GrantCache
from mcpctl.resources.validation import invalid_input

log = logging.getLogger(__name__)

ADMIN = "admin"
ADMIN_TOKEN_FILE = "admin.token"  # noqa: S105 (a file name)
TOKEN_PREFIX = "mcpctl_"  # noqa: S105 (a prefix)
LOGIN_TOKEN_LIFETIME = timedelta(days=30)
MIN_PASSWORD_LENGTH = 8
IMPERSONATE_HEADER = "Impersonate-User"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def write_private_file(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` readable by the owner only (0600), replacing it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.replace(tmp, path)


async def _issue_token(
    users: UserRepository, user: UserRow, description: str, lifetime: timedelta | None
) -> str:
    """Store a new token for ``user`` (its hash only) and return the token itself."""
    token = new_token()
    now = utcnow()
    await users.add_token(
        TokenRow(
            id=str(uuid.uuid4()),
            user_id=user.id,
            token_hash=hash_token(token),
            description=description,
            created_at=now,
            expires_at=None if lifetime is None else now + lifetime,
        )
    )
    return token


class AuthService:
    def __init__(
        self,
        uow_factory: UnitOfWorkFactory,
        hasher: PasswordHasher,
        audit: AuditLog | None = None,
        *,
        token_lifetime: timedelta = LOGIN_TOKEN_LIFETIME,
        limiter: LoginLimiter | None = None,
        grants: GrantCache | None = None,
    ) -> None:
        self.uows = uow_factory
        self.hasher = hasher
        self.audit = audit
        self.token_lifetime = token_lifetime
        self.limiter = limiter or LoginLimiter()
        self.grants = grants or GrantCache(uow_factory)

    async def authenticate(
        self,
        token: str | None,
        origin: Caller | None = None,
        target: str | None = None,
    ) -> Caller:
        """The caller a token stands for; ``origin`` (an anonymous caller carrying the request
        id and client address) is what the failure is audited as, ``target`` the request line.

        Raises:
            Unauthenticated: for a missing, unknown, expired or disabled token.
        """
        origin = origin or Caller(user=ANONYMOUS)
        if not token:
            raise self._denied(origin, target, "missing bearer token: log in with `mcpctl login`")
        digest = hash_token(token)
        async with self.uows.read() as uow:
            found = await uow.users.user_for_token(digest, utcnow())
        # The lookup is by hash; comparing the stored hash again in constant time keeps any
        # timing difference away from the secret even if the index lookup leaked one.
        if (
            found is None
            or not hmac.compare_digest(found[1].token_hash, digest)
            or found[0].disabled
        ):
            raise self._denied(
                origin, target, "invalid or expired token: log in again with `mcpctl login`"
            )
        user, row = found
        grants = await self.grants.grants_for(user.name)
        return replace(origin, user=user.name, grants=grants, token_id=row.id)

    async def impersonate(self, caller: Caller, target: str, authz: Authorizer) -> Caller:
        """``caller`` acting as the user ``target``: the target's grants, the real user kept in
        ``impersonated_by`` (and so in every audit event), the real token id.

        Raises:
            PermissionDenied: the caller lacks the ``impersonate`` operation, or (checked only
                after that) ``target`` is no enabled user; one message for unknown and
                disabled. Audited as a denial by the real caller.
        """
        if not authz.allows(caller, "run", "impersonate", None):
            raise self._refuse_impersonation(
                caller,
                target,
                f"user {caller.user!r} may not impersonate other users "
                "(that needs {role: run, action: impersonate})",
            )
        async with self.uows.read() as uow:
            user = await uow.users.get_by_name(target)
        if user is None or user.disabled:
            raise self._refuse_impersonation(
                caller, target, f"cannot impersonate {target!r}: no such enabled user"
            )
        grants = await self.grants.grants_for(user.name)
        return replace(caller, user=user.name, grants=grants, impersonated_by=caller.user)

    def _refuse_impersonation(self, caller: Caller, target: str, message: str) -> PermissionDenied:
        error = PermissionDenied(message)
        if self.audit is not None:
            self.audit.record(event_for(caller, "run", "impersonate", target, error=error))
        return error

    def refuse_if_impersonating(
        self, caller: Caller, verb: str, kind: str, name: str | None, what: str
    ) -> None:
        """Refuse ``what`` (e.g. "change a password") to an impersonating caller: a person's
        credentials are their own.

        Raises:
            PermissionDenied: when ``caller`` is impersonating (audited as ``verb`` on
                ``kind``/``name``).
        """
        if caller.impersonated_by is None:
            return
        error = PermissionDenied(
            f"cannot {what} while impersonating {caller.user!r}: a person's credentials are "
            f"their own (drop --as, or the {IMPERSONATE_HEADER} header)"
        )
        if self.audit is not None:
            self.audit.record(event_for(caller, verb, kind, name, error=error))
        raise error

    def _denied(self, origin: Caller, target: str | None, message: str) -> Unauthenticated:
        error = Unauthenticated(message)
        if self.audit is not None:
            details = {"request": target} if target else {}
            self.audit.record(
                event_for(origin, "authenticate", "auth", None, error=error, details=details)
            )
        return error

    async def login(self, name: str, password: str, origin: Caller | None = None) -> str:
        """Exchange a password for a new token (audited as ``login``).

        Raises:
            Unauthenticated: the same message for every reason.
            RateLimited: too many failures for this name or client address (see ratelimit.py).
        """
        origin = origin or Caller(user=ANONYMOUS)
        try:
            self.limiter.check(name, origin.client)
        except RateLimited as exc:
            self._audit_login(origin, ANONYMOUS, exc)
            raise
        async with self.uows.write() as uow:
            user = await uow.users.get_by_name(name)
            # The claimed name is recorded only when such a user exists: a password typed into
            # the name field must not end up in the audit trail.
            who = replace(origin, user=name if user is not None else ANONYMOUS)
            if (
                user is None
                or user.disabled
                or not user.password_hash
                or not self._matches(user.password_hash, password)
            ):
                self.limiter.failed(name, origin.client)
                error = Unauthenticated("wrong user name or password")
                if self.audit is not None:
                    self.audit.record(event_for(who, "login", "auth", None, error=error))
                raise error
            token = await _issue_token(uow.users, user, "login", self.token_lifetime)
            await uow.commit()
        self.limiter.succeeded(name)
        if self.audit is not None:
            self.audit.record(event_for(who, "login", "auth", None))
        return token

    def _audit_login(self, origin: Caller, user: str, error: Exception) -> None:
        if self.audit is not None:
            self.audit.record(
                event_for(replace(origin, user=user), "login", "auth", None, error=error)
            )

    async def change_password(self, caller: Caller, current: str, new: str) -> None:
        """Replace the caller's own password (audited as ``change-password``).

        Raises:
            PermissionDenied: the caller is impersonating someone.
            Unauthenticated: ``current`` is not the caller's password.
            InvalidInput: ``new`` is shorter than MIN_PASSWORD_LENGTH.
        """
        self.refuse_if_impersonating(
            caller, "change-password", "auth", caller.user, "change a password"
        )
        if len(new) < MIN_PASSWORD_LENGTH:
            raise invalid_input(
                [{"path": "new", "message": f"at least {MIN_PASSWORD_LENGTH} characters"}]
            )
        async with self.uows.write() as uow:
            user = await uow.users.get_by_name(caller.user)
            if (
                user is None
                or not user.password_hash
                or not self._matches(user.password_hash, current)
            ):
                error = Unauthenticated("the current password is wrong")
                self._audit_password(caller, error)
                raise error
            user.password_hash = self.hasher.hash(new)
            await uow.commit()
        self._audit_password(caller, None)

    def _audit_password(self, caller: Caller, error: Exception | None) -> None:
        if self.audit is not None:
            self.audit.record(
                event_for(caller, "change-password", "auth", caller.user, error=error)
            )

    async def bootstrap_admin(self, data_dir: Path, password: str | None) -> bool:
        """On an empty database create ``admin`` and write its token; True if it did."""
        async with self.uows.write() as uow:
            if await uow.users.count() > 0:
                if password:
                    await self._set_password(uow.users, ADMIN, password)
                    await uow.commit()
                return False
            user = await uow.users.add(
                UserRow(
                    name=ADMIN,
                    display_name="Administrator",
                    is_admin=True,
                    disabled=False,
                    password_hash=self.hasher.hash(password) if password else None,
                    created_at=utcnow(),
                )
            )
            token = await _issue_token(uow.users, user, "bootstrap admin token", None)
            write_private_file(data_dir / ADMIN_TOKEN_FILE, token + "\n")
            await uow.commit()
        log.info("created user %r; its token is in %s", ADMIN, data_dir / ADMIN_TOKEN_FILE)
        return True

    async def _set_password(self, users: UserRepository, name: str, password: str) -> None:
        user = await users.get_by_name(name)
        if user is not None and not (
            user.password_hash and self._matches(user.password_hash, password)
        ):
            user.password_hash = self.hasher.hash(password)

    def _matches(self, stored: str, password: str) -> bool:
        try:
            return self.hasher.verify(stored, password)
        except (VerificationError, InvalidHashError):
            return False
