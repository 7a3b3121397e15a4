"""RBAC in mcpd: compiled grants per user (cached), the Group and RbacDefinition behaviours,
the last-full-access guard and the bootstrap ``admin`` RbacDefinition.

Grants are compiled when a token is authenticated, from a snapshot of every Group and
RbacDefinition. The snapshot is cached: a write of either kind in this process drops it at once
(``GrantCache.invalidate``, called after the commit), and it is reloaded after ``ttl`` seconds
anyway, so changes made through another replica take effect within that bound.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from mcpctl.domain.caller import SYSTEM, Caller
from mcpctl.domain.rbac import (
    ACTIONS,
    ANY,
    ROLES,
    Grant,
    Permission,
    grants_of,
    group_permissions,
    has_full_access,
    subjects_of,
    user_permissions,
)
from mcpctl.errors import InUse, NotFound
from mcpctl.mcpd.db.tables import ObjectRow
from mcpctl.mcpd.db.uow import UnitOfWork, UnitOfWorkFactory
from mcpctl.mcpd.services.authz import Authorizer
from mcpctl.mcpd.services.behaviours import Behaviour, Prepared, invalid
from mcpctl.mcpd.services.objects import ObjectService
from mcpctl.resources.envelope import ObjectMeta, Resource
from mcpctl.resources.groups import GroupSpec
from mcpctl.resources.kinds import by_kind
from mcpctl.resources.rbacdefinitions import Binding, RbacDefinitionSpec, subject_users

log = logging.getLogger(__name__)

GROUP = "Group"
RBAC = "RbacDefinition"
ADMIN_DEFINITION = "admin"
DEFAULT_TTL = 5.0


@dataclass
class _Snapshot:
    """Every Group's members and every RbacDefinition's spec, as loaded at one moment."""

    generation: int
    loaded_at: float
    groups: dict[str, list[str]]
    definitions: list[dict[str, Any]]
    compiled: dict[str, frozenset[Grant]] = field(default_factory=dict)

    def grants_for(self, user: str) -> frozenset[Grant]:
        found = self.compiled.get(user)
        if found is None:
            found = grants_of(subjects_of(user, self.groups), self.definitions)
            self.compiled[user] = found
        return found


async def _load(uow: UnitOfWork) -> tuple[dict[str, list[str]], list[dict[str, Any]]]:
    return await _groups(uow), [r.spec for r in await _all(uow, RBAC)]


async def _groups(uow: UnitOfWork) -> dict[str, list[str]]:
    """Every Group's members, by group name."""
    return {r.name: list(r.spec.get("members", [])) for r in await _all(uow, GROUP)}


async def _all(uow: UnitOfWork, kind: str) -> list[ObjectRow]:
    return await uow.objects.select_page(kind, [], None, None)


class GrantCache:
    """Compiled grants per user, from a snapshot dropped on local writes and after ``ttl``."""

    def __init__(
        self,
        uow_factory: UnitOfWorkFactory,
        *,
        ttl: float = DEFAULT_TTL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.uows = uow_factory
        self.ttl = ttl
        self.clock = clock
        self.generation = 0
        self._snapshot: _Snapshot | None = None
        # One reload at a time: requests arriving while the snapshot is stale wait for the
        # reload under way instead of each reading the tables again.
        self._loading = asyncio.Lock()

    def invalidate(self) -> None:
        self.generation += 1

    def _fresh(self) -> _Snapshot | None:
        snapshot = self._snapshot
        if (
            snapshot is None
            or snapshot.generation != self.generation
            or self.clock() - snapshot.loaded_at > self.ttl
        ):
            return None
        return snapshot

    async def grants_for(self, user: str) -> frozenset[Grant]:
        snapshot = self._fresh()
        if snapshot is None:
            async with self._loading:
                snapshot = self._fresh()
                if snapshot is None:
                    # Tagged with the generation seen before loading: a write committed
                    # meanwhile makes this snapshot stale at once, so it is never trusted
                    # past that write.
                    generation, loaded_at = self.generation, self.clock()
                    async with self.uows.read() as uow:
                        groups, definitions = await _load(uow)
                    snapshot = _Snapshot(generation, loaded_at, groups, definitions)
                    self._snapshot = snapshot
        return snapshot.grants_for(user)


async def ensure_full_access_remains(uow: UnitOfWork) -> None:
    """Refuse a change (flushed in ``uow``) after which no enabled user has full access.

    Raises:
        InUse: naming what full access is.
    """
    groups, definitions = await _load(uow)
    for user in await uow.users.all():
        if not user.disabled and has_full_access(
            grants_of(subjects_of(user.name, groups), definitions)
        ):
            return
    raise InUse(
        "the change would leave no enabled user with full access (every role on * and every "
        "action); grant full access to another user first"
    )


class _RbacKindBehaviour(Behaviour):
    """Shared by Group and RbacDefinition: guard full access, drop cached grants on commit."""

    def __init__(self, cache: GrantCache) -> None:
        self.cache = cache

    async def after_change(self, uow: UnitOfWork) -> None:
        await ensure_full_access_remains(uow)

    def committed(self) -> None:
        self.cache.invalidate()

    @staticmethod
    async def _check_users(uow: UnitOfWork, users: list[tuple[int, str]], path: str) -> None:
        for i, name in users:
            if await uow.users.get_by_name(name) is None:
                raise invalid(f"{path}[{i}]", f"user {name!r} not found")


class GroupBehaviour(_RbacKindBehaviour):
    async def prepare(
        self, uow: UnitOfWork, name: str, spec: BaseModel, existing: ObjectRow | None
    ) -> Prepared:
        assert isinstance(spec, GroupSpec)
        await self._check_users(uow, list(enumerate(spec.members)), "spec.members")
        return await super().prepare(uow, name, spec, existing)


class RbacDefinitionBehaviour(_RbacKindBehaviour):
    async def prepare(
        self, uow: UnitOfWork, name: str, spec: BaseModel, existing: ObjectRow | None
    ) -> Prepared:
        assert isinstance(spec, RbacDefinitionSpec)
        await self._check_users(uow, subject_users(spec), "spec.subjects")
        return await super().prepare(uow, name, spec, existing)


def admin_definition(users: list[str]) -> Resource[RbacDefinitionSpec]:
    """The ``admin`` RbacDefinition: full access for ``users``."""
    bindings = [Binding(role=role, resource=ANY) for role in ROLES]
    bindings += [Binding(role="run", action=action) for action in ACTIONS]
    spec = RbacDefinitionSpec(
        description="Full access (created by mcpd at first start).",
        subjects=[f"user:{u}" for u in users],
        bindings=bindings,
    )
    return Resource[RbacDefinitionSpec](
        kind=RBAC, metadata=ObjectMeta(name=ADMIN_DEFINITION), spec=spec
    )


async def bootstrap_rbac(uows: UnitOfWorkFactory, objects: ObjectService) -> bool:
    """With no RbacDefinition at all (a new database, or one from before RBAC), give every
    enabled user flagged ``is_admin`` full access through the ``admin`` RbacDefinition.

    True if it created it.
    """
    async with uows.read() as uow:
        if await uow.objects.select_page(RBAC, [], None, 1):
            return False
        admins = [u.name for u in await uow.users.all() if u.is_admin and not u.disabled]
    if not admins:
        log.warning("no RbacDefinition and no admin user: nobody has any access")
        return False
    await objects.create(SYSTEM, by_kind(RBAC), admin_definition(admins))
    log.info("created rbacdefinition/%s for %s", ADMIN_DEFINITION, ", ".join(admins))
    return True


def behaviours(cache: GrantCache) -> Mapping[str, Behaviour]:
    return {GROUP: GroupBehaviour(cache), RBAC: RbacDefinitionBehaviour(cache)}


async def _definitions_by_name(uow: UnitOfWork) -> dict[str, dict[str, Any]]:
    return {r.name: r.spec for r in await _all(uow, RBAC)}


async def permissions_of_user(
    uows: UnitOfWorkFactory, authz: Authorizer, caller: Caller, name: str
) -> list[Permission]:
    """Every permission of user ``name`` with where it comes from, read afresh (not cached).

    Raises:
        PermissionDenied: without ``view`` on that user.
        NotFound: no such user.
    """
    authz.authorize(caller, "view", "users", name)
    async with uows.read() as uow:
        if await uow.users.get_by_name(name) is None:
            raise NotFound(f"user/{name} not found")
        groups = await _groups(uow)
        definitions = await _definitions_by_name(uow)
    return user_permissions(name, groups, definitions)


async def permissions_of_group(
    uows: UnitOfWorkFactory, authz: Authorizer, caller: Caller, name: str
) -> list[Permission]:
    """The permissions RbacDefinitions give group ``name``.

    Raises:
        PermissionDenied: without ``view`` on that group.
        NotFound: no such group.
    """
    authz.authorize(caller, "view", "groups", name)
    async with uows.read() as uow:
        if await uow.objects.get(GROUP, name) is None:
            raise NotFound(f"group/{name} not found")
        definitions = await _definitions_by_name(uow)
    return group_permissions(name, definitions)
