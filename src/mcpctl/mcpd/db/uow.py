"""Unit of work: one transaction that rolls back unless ``commit()`` is called."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import TracebackType

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from mcpctl.mcpd.changes import ObjectChanges
from mcpctl.mcpd.db.audit import AuditRepository
from mcpctl.mcpd.db.engine import WRITE_OPTION
from mcpctl.mcpd.db.repository import ObjectRepository, UserRepository
from mcpctl.mcpd.db.threads import ThreadRepository


class UnitOfWork:
    def __init__(self, session: AsyncSession, changes: ObjectChanges | None = None) -> None:
        self.session = session
        self.changes = changes
        self.objects = ObjectRepository(session)
        self.users = UserRepository(session)
        self.audit = AuditRepository(session)
        self.threads = ThreadRepository(session)
        # In a batch (bulk apply, restore): the (kind, name) of objects written with a deferrable
        # reference whose target was missing, checked when the batch ends. None outside batches.
        self.deferred: set[tuple[str, str]] | None = None
        self._committed = False

    async def __aenter__(self) -> UnitOfWork:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # close() rolls back whatever was not committed (the connection goes back to the pool
        # with a reset) and detaches loaded rows without expiring them, so callers may read them.
        await self.session.close()

    async def commit(self) -> None:
        """Commit; then wake whoever follows an object this transaction wrote (changes.py;
        the other replicas are told in the transaction, so only if it commits)."""
        written, self.objects.written = self.objects.written, set()
        if written and self.changes is not None:
            await self.changes.announce(self.session, written)
        await self.session.commit()
        self._committed = True
        if written and self.changes is not None:
            self.changes.notify(written)

    @asynccontextmanager
    async def savepoint(self) -> AsyncIterator[None]:
        """A nested transaction; when it rolls back, so do the writes it marked for ``commit``
        to publish."""
        before = set(self.objects.written)
        try:
            async with self.session.begin_nested():
                yield
        except BaseException:
            self.objects.written = before
            raise


class UnitOfWorkFactory:
    """Hands out units of work; writers take the write lock at BEGIN on SQLite."""

    def __init__(self, engine: AsyncEngine, changes: ObjectChanges | None = None) -> None:
        # Where commits of object writes are published; None: nobody follows objects.
        self.changes = changes
        self._read = async_sessionmaker(engine, expire_on_commit=False)
        self._write = async_sessionmaker(
            engine.execution_options(**{WRITE_OPTION: True}), expire_on_commit=False
        )

    def read(self) -> UnitOfWork:
        return UnitOfWork(self._read(), self.changes)

    def write(self) -> UnitOfWork:
        return UnitOfWork(self._write(), self.changes)
