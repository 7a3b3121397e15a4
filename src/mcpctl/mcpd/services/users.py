"""Users in mcpd: the User behaviour that keeps the ``users`` table in step with User objects,
and the startup adoption of ``users`` rows that have no object yet.

Decisions:

- The ``users`` table stays the authentication record (argon2id hash, tokens, ``disabled`` read
  on every request); the User object is what people read and write. Every User write updates
  its row in the same transaction (``prepare``), every User delete removes it (``deleting``),
  and the database deletes the user's tokens with it.
- A User created where a row already exists (a restore writes the rows first; the bootstrap
  admin; databases from before User was a kind) adopts the row and keeps its password hash.
- The password is never part of the object. Reapplying the password the row already has is no
  change (checked against the hash, so re-applying a manifest answers ``unchanged``); a
  different one is hashed and makes the apply ``configured``.
- Disabling a user, or deleting one, is refused (409) when afterwards no enabled user would have
  full access. Both checks run where the change is made (``prepare`` for a disable, ``deleting``
  for a delete), not in ``after_change``, so that creating User objects never needs someone to
  have full access already (startup adopts the admin's row before its RbacDefinition exists).
- Deleting a user still named by a Group or an RbacDefinition is refused (409), naming them.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from pydantic import BaseModel

from mcpctl.domain.caller import SYSTEM
from mcpctl.errors import InUse
from mcpctl.mcpd.db.tables import ObjectRow, UserRow, utcnow
from mcpctl.mcpd.db.uow import UnitOfWork, UnitOfWorkFactory
from mcpctl.mcpd.services.auth import MIN_PASSWORD_LENGTH
from mcpctl.mcpd.services.behaviours import Behaviour, Prepared, invalid
from mcpctl.mcpd.services.objects import ObjectService
from mcpctl.mcpd.services.rbac import GROUP, RBAC, ensure_full_access_remains
from mcpctl.resources.envelope import ObjectMeta, Resource
from mcpctl.resources.kinds import by_kind
from mcpctl.resources.users import UserSpec

log = logging.getLogger(__name__)

USER = "User"


class UserBehaviour(Behaviour):
    def __init__(self, hasher: PasswordHasher) -> None:
        self.hasher = hasher

    async def prepare(
        self, uow: UnitOfWork, name: str, spec: BaseModel, existing: ObjectRow | None
    ) -> Prepared:
        """Write the user's ``users`` row as the spec says; the object stores no password.

        Raises:
            InvalidInput: a password shorter than MIN_PASSWORD_LENGTH (``spec.password``).
            InUse: a disable that would leave nobody enabled with full access.
        """
        assert isinstance(spec, UserSpec)
        password = None if spec.password is None else spec.password.get_secret_value()
        if password is not None and len(password) < MIN_PASSWORD_LENGTH:
            raise invalid("spec.password", f"must be at least {MIN_PASSWORD_LENGTH} characters")
        row = await uow.users.get_by_name(name)
        new_hash = await self._new_hash(row, password)
        if row is None:
            await uow.users.add(
                UserRow(
                    name=name,
                    display_name=spec.displayName,
                    is_admin=False,
                    disabled=spec.disabled,
                    password_hash=new_hash,
                    created_at=utcnow(),
                )
            )
        else:
            disabling = spec.disabled and not row.disabled
            row.display_name = spec.displayName
            row.disabled = spec.disabled
            if new_hash is not None:
                row.password_hash = new_hash
            await uow.session.flush()
            if disabling:
                await ensure_full_access_remains(uow)
        stored = spec.stored()
        # Not stored, only compared: a new password is a change even if nothing else is.
        fingerprint: Any = stored if new_hash is None else (stored, "new password")
        return Prepared(spec=stored, fingerprint=fingerprint)

    async def _new_hash(self, row: UserRow | None, password: str | None) -> str | None:
        """The hash to store for ``password``; None when there is none or it is the current one."""
        if password is None:
            return None
        if (
            row is not None
            and row.password_hash
            and await asyncio.to_thread(self._matches, row.password_hash, password)
        ):
            return None
        return await asyncio.to_thread(self.hasher.hash, password)

    def _matches(self, stored: str, password: str) -> bool:
        try:
            return self.hasher.verify(stored, password)
        except (VerificationError, InvalidHashError):
            return False

    async def deleting(self, uow: UnitOfWork, row: ObjectRow) -> None:
        """Delete the user's row (and so their tokens).

        Raises:
            InUse: the user is still named by groups or RbacDefinitions, or nobody enabled
                would keep full access.
        """
        naming = await named_by(uow, row.name)
        if naming:
            listed = ", ".join(f"{kind.lower()}/{name} ({field})" for kind, name, field in naming)
            raise InUse(
                f"user/{row.name} is in use by {listed}; remove those references first",
                details={"usedBy": [{"kind": k, "name": n, "field": f} for k, n, f in naming]},
            )
        user = await uow.users.get_by_name(row.name)
        if user is not None:
            await uow.users.delete(user.id)
        await ensure_full_access_remains(uow)


async def named_by(uow: UnitOfWork, user: str) -> list[tuple[str, str, str]]:
    """(kind, name, field) of every Group member and RbacDefinition subject naming ``user``."""
    found: list[tuple[str, str, str]] = []
    for group in await uow.objects.select_page(GROUP, [], None, None):
        for i, member in enumerate(group.spec.get("members", [])):
            if member == user:
                found.append((GROUP, group.name, f"spec.members[{i}]"))
    for definition in await uow.objects.select_page(RBAC, [], None, None):
        for i, subject in enumerate(definition.spec.get("subjects", [])):
            if subject == f"user:{user}":
                found.append((RBAC, definition.name, f"spec.subjects[{i}]"))
    return found


def user_object(row: UserRow) -> Resource[UserSpec]:
    """The User object for a ``users`` row (no password: the row keeps its hash)."""
    spec = UserSpec(displayName=row.display_name, disabled=row.disabled)
    return Resource[UserSpec](kind=USER, metadata=ObjectMeta(name=row.name), spec=spec)


async def adopt_user_rows(uows: UnitOfWorkFactory, objects: ObjectService) -> list[str]:
    """Give every ``users`` row without a User object one (the bootstrap admin, databases from
    before User was a kind); idempotent. The names adopted."""
    async with uows.read() as uow:
        rows = await uow.users.all()
        have = {r.name for r in await uow.objects.select_page(USER, [], None, None)}
    adopted = []
    info = by_kind(USER)
    for row in rows:
        if row.name not in have:
            # apply, not create: another replica starting at the same time may win the race.
            await objects.apply(SYSTEM, info, row.name, user_object(row))
            adopted.append(row.name)
    if adopted:
        log.info("created user objects for %s", ", ".join(adopted))
    return adopted
