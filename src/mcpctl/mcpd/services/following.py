"""Following one object: the long-poll of ``GET /api/v1/{plural}/{name}?changedAfter=RV``.

A client that has the object at resourceVersion RV asks for it again with RV and a wait; the
answer comes as soon as the object is at another version (at once if it already is), or
says "not modified" when the wait ends first. Commits wake the waiter through
``ObjectChanges``; in process only for now (see ``mcpd/changes.py``), so with several
replicas a change made through another one is seen when the wait times out.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from dataclasses import replace
from typing import Any

from mcpctl.domain.caller import Caller
from mcpctl.mcpd.changes import ObjectChanges
from mcpctl.mcpd.services.objects import ObjectService
from mcpctl.mcpd.services.rbac import GrantCache
from mcpctl.resources.kinds import KindInfo

MAX_WAIT_SECONDS = 60.0


class ObjectFollower:
    def __init__(self, objects: ObjectService, changes: ObjectChanges, grants: GrantCache) -> None:
        self.objects = objects
        self.changes = changes
        self.grants = grants

    async def changed_after(
        self,
        caller: Caller,
        info: KindInfo,
        name: str,
        version: str,
        wait: float,
        *,
        reveal: bool = False,
    ) -> dict[str, Any] | None:
        """The object once its resourceVersion is not ``version`` (at once if it is not now),
        or None when ``wait`` seconds pass without that.

        Authorized as ``get`` is, when asked and again (with the caller's current grants)
        before answering after a wait.

        Raises:
            NotFound: no such object, also when it is deleted during the wait.
            PermissionDenied: the caller may not view it (any more).
        """
        # Subscribed before the first read: a commit between that read and the wait wakes it.
        with self.changes.subscribe(info.kind, name) as change:
            obj = await self.objects.get(caller, info, name, reveal=reveal)
            if _version_of(obj) != version:
                return obj
            woken = await _within(wait, change.wait())
        caller = await self._regranted(caller)
        if not woken:
            self.objects.authz.authorize(caller, "view", info.plural, name)
            return None
        # Its row was written: updated, deleted (NotFound), or deleted and created again (at
        # the same resourceVersion, perhaps, but another object: answered all the same).
        return await self.objects.get(caller, info, name, reveal=reveal)

    async def _regranted(self, caller: Caller) -> Caller:
        """The caller with the grants its user has now (RBAC may have changed during a wait)."""
        if caller.is_system:
            return caller
        return replace(caller, grants=await self.grants.grants_for(caller.user))


async def _within(seconds: float, done: Awaitable[None]) -> bool:
    """Whether ``done`` finished within ``seconds``."""
    try:
        async with asyncio.timeout(seconds):
            await done
    except TimeoutError:
        return False
    return True


def _version_of(obj: dict[str, Any]) -> str:
    return str(obj["metadata"]["resourceVersion"])
