"""The change feed of objects: waiters for one object each, woken when a write of it commits.

The unit of work (``db/uow.py``) publishes the ``(kind, name)`` of every object whose row it
inserted, updated or deleted, once its transaction has committed; nothing is published for a
write that was rolled back (a failed request, a dry run, a bulk-apply item whose savepoint
failed). The long-poll of ``GET /api/v1/{plural}/{name}?changedAfter=...`` waits here.

``notify`` wakes the waiters of this process. On PostgreSQL the other replicas hear of the
same commit through LISTEN/NOTIFY (``db/notify.py``): the unit of work ``announce``s the
written objects inside its transaction, and each replica's listener feeds what it hears
into its own ``notify``. On SQLite there is one mcpd and nothing to announce.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

ObjectKey = tuple[str, str]
"""``(kind, name)``, e.g. ``("Project", "dev")``."""


class Subscription:
    """One waiter's interest in one object, registered before it reads the object, so that a
    change committed between that read and the wait still wakes it."""

    def __init__(self) -> None:
        self._changed = asyncio.Event()

    def wake(self) -> None:
        self._changed.set()

    async def wait(self) -> None:
        """Return once the object changed since subscribing (callers bound the wait)."""
        await self._changed.wait()


class ObjectChanges:
    """Who waits for which object, and the wake-up after a commit (held by the app state)."""

    def __init__(
        self, announcer: Callable[[Any, set[ObjectKey]], Awaitable[None]] | None = None
    ) -> None:
        self._waiters: dict[ObjectKey, set[Subscription]] = {}
        self._count = 0
        # Tells the other replicas, inside the writing transaction (db/notify.py); None: none.
        self._announcer = announcer

    async def announce(self, session: Any, changed: set[ObjectKey]) -> None:
        """Before the commit, in its transaction: tell the other replicas (if any)."""
        if self._announcer is not None:
            await self._announcer(session, changed)

    @property
    def waiting(self) -> int:
        """How many subscriptions are open now (a gauge in /metrics; tests check for leaks)."""
        return self._count

    def notify(self, changed: Iterable[ObjectKey]) -> None:
        """Wake everyone waiting for one of these objects; call only after the commit."""
        for key in changed:
            for subscription in self._waiters.get(key, ()):
                subscription.wake()

    def notify_all(self) -> None:
        """Wake every waiter: what changed is not known (a listener that reconnected)."""
        for subscriptions in self._waiters.values():
            for subscription in subscriptions:
                subscription.wake()

    @contextmanager
    def subscribe(self, kind: str, name: str) -> Iterator[Subscription]:
        """Be woken by commits of ``kind``/``name`` until the block ends, however it ends."""
        key = (kind, name)
        subscription = Subscription()
        self._waiters.setdefault(key, set()).add(subscription)
        self._count += 1
        try:
            yield subscription
        finally:
            self._count -= 1
            held = self._waiters[key]
            held.discard(subscription)
            if not held:
                del self._waiters[key]
