"""Cross-replica wake-ups of object followers over PostgreSQL LISTEN/NOTIFY (DESIGN.md §6).

With several mcpd replicas on one PostgreSQL, a commit made through one must wake the
long-polls waiting on the others (``changes.py``). So, on PostgreSQL:

- ``PgAnnouncer.announce`` runs ``pg_notify`` in the writing transaction, just before its
  commit: PostgreSQL delivers the notification when (and only if) the transaction commits.
  The payload is the JSON list of the written ``[kind, name]`` pairs, or ``"*"`` (everything
  may have changed) when that would not fit in a notification.
- ``PgListener`` holds one connection per replica that LISTENs and feeds what it hears into
  the replica's ``ObjectChanges``. After (re)connecting it wakes every waiter once, for what
  it may have missed while it was not listening; a waiter woken needlessly reads its object
  and answers it unchanged.

The channel is per schema (``channel_for``), so that mcpd instances in other schemas of the
same database never wake each other. A replica also hears its own notifications: its
waiters were woken at commit already and are gone, so nothing happens twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
from collections.abc import Iterable

import asyncpg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from mcpctl.mcpd.changes import ObjectChanges, ObjectKey

log = logging.getLogger(__name__)

EVERYTHING = "*"
MAX_PAYLOAD = 7000  # bytes; PostgreSQL's limit is 8000
_NOTIFY = text("SELECT pg_notify(:channel, :payload)")


def channel_for(schema: str | None) -> str:
    """The NOTIFY channel of mcpd's objects in ``schema`` (a valid identifier)."""
    digest = hashlib.sha256((schema or "public").encode()).hexdigest()[:16]
    return f"mcpctl_objects_{digest}"


def asyncpg_dsn(url: str) -> str:
    """A database URL as asyncpg takes it (no SQLAlchemy driver suffix)."""
    for prefix in ("postgresql+asyncpg://", "postgres+asyncpg://"):
        if url.startswith(prefix):
            return "postgresql://" + url[len(prefix) :]
    return url


def payload_of(keys: Iterable[ObjectKey]) -> str:
    payload = json.dumps(sorted(keys), separators=(",", ":"))
    return payload if len(payload.encode()) <= MAX_PAYLOAD else EVERYTHING


def keys_of(payload: str) -> list[ObjectKey] | None:
    """The keys a payload names; None for "everything" (or one we cannot read)."""
    if payload == EVERYTHING:
        return None
    try:
        pairs = json.loads(payload)
        return [(str(kind), str(name)) for kind, name in pairs]
    except (ValueError, TypeError):
        log.warning("an object change notification that is not ours was ignored")
        return None


class PgAnnouncer:
    """Sends the notification of a transaction's object writes, inside it."""

    def __init__(self, channel: str) -> None:
        self.channel = channel

    async def announce(self, session: AsyncSession, keys: set[ObjectKey]) -> None:
        await session.execute(_NOTIFY, {"channel": self.channel, "payload": payload_of(keys)})


class PgListener:
    """One LISTEN connection of this replica, reconnected with backoff until closed."""

    def __init__(
        self, dsn: str, channel: str, changes: ObjectChanges, *, retry_max: float = 5.0
    ) -> None:
        self.dsn = dsn
        self.channel = channel
        self.changes = changes
        self.retry_max = retry_max
        self.listening = asyncio.Event()
        self.listens = 0  # how many connections have listened so far (1 + reconnections)
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="object-change-listener")

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        failures = 0
        while True:
            try:
                connection = await asyncpg.connect(self.dsn)
            except Exception as exc:  # the listener's top level: it must outlive any failure
                failures += 1
                log.warning("object change listener cannot connect (%s); retrying", exc)
                await asyncio.sleep(min(self.retry_max, 0.25 * 2**failures))
                continue
            try:
                await self._listen(connection)
                failures = 0
                log.warning("object change listener lost its connection; reconnecting")
            except Exception as exc:  # the same: listen again after a pause
                failures += 1
                log.warning("object change listener failed (%s); reconnecting", exc)
                await asyncio.sleep(min(self.retry_max, 0.25 * 2**failures))
            finally:
                self.listening.clear()
                with contextlib.suppress(Exception):
                    await connection.close(timeout=5)

    async def _listen(self, connection: asyncpg.Connection) -> None:
        """Feed what ``connection`` hears into the changes until it is lost."""
        lost = asyncio.Event()
        connection.add_termination_listener(lambda _: lost.set())
        await connection.add_listener(self.channel, self._heard)
        self.listens += 1
        self.listening.set()
        self.changes.notify_all()  # what changed while nobody listened
        await lost.wait()

    def _heard(self, _connection: object, _pid: int, _channel: str, payload: str) -> None:
        keys = keys_of(payload)
        if keys is None:
            self.changes.notify_all()
        else:
            self.changes.notify(keys)
