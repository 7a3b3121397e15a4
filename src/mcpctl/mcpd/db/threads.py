"""The chat repository: the only code that writes SQL for ``chat_threads`` and ``chat_messages``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from mcpctl.mcpd.db.tables import ChatMessageRow, ChatThreadRow, ObjectRow

AGENT_KIND = "Agent"


@dataclass(frozen=True)
class ThreadRecord:
    """A thread row with its agent's name and how many messages it holds."""

    row: ChatThreadRow
    agent: str
    message_count: int


def _listing() -> sa.Select[ChatThreadRow, str, int]:
    count = (
        sa.select(sa.func.count(ChatMessageRow.id))
        .where(ChatMessageRow.thread_id == ChatThreadRow.id)
        .scalar_subquery()
    )
    return sa.select(ChatThreadRow, ObjectRow.name, count).join(
        ObjectRow, ObjectRow.id == ChatThreadRow.agent_id
    )


class ThreadRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, row: ChatThreadRow) -> None:
        self.session.add(row)
        await self.session.flush()

    async def get(self, thread_id: str) -> ThreadRecord | None:
        stmt = _listing().where(ChatThreadRow.id == thread_id)
        found = (await self.session.execute(stmt)).one_or_none()
        return None if found is None else ThreadRecord(found[0], found[1], found[2])

    async def select(self, *, agent: str | None, owner: str | None) -> list[ThreadRecord]:
        """Threads, most recently active first; only ``agent``'s and ``owner``'s when given."""
        stmt = _listing()
        if agent is not None:
            stmt = stmt.where(ObjectRow.name == agent)
        if owner is not None:
            stmt = stmt.where(ChatThreadRow.owner == owner)
        stmt = stmt.order_by(ChatThreadRow.last_turn_at.desc(), ChatThreadRow.id.desc())
        return [ThreadRecord(r[0], r[1], r[2]) for r in await self.session.execute(stmt)]

    async def touch(self, thread_id: str, at: datetime) -> bool:
        """Set ``last_turn_at``; False when there is no such thread.

        On PostgreSQL the UPDATE also locks the thread's row until the transaction ends, so
        concurrent appends to one thread take turns instead of colliding on turn indexes.
        """
        stmt = (
            sa.update(ChatThreadRow)
            .where(ChatThreadRow.id == thread_id)
            .values(last_turn_at=at)
            .execution_options(synchronize_session=False)
        )
        result = await self.session.execute(stmt)
        return bool(getattr(result, "rowcount", 0) == 1)

    async def next_turn_index(self, thread_id: str) -> int:
        stmt = sa.select(sa.func.max(ChatMessageRow.turn_index)).where(
            ChatMessageRow.thread_id == thread_id
        )
        last = (await self.session.execute(stmt)).scalar_one_or_none()
        return 0 if last is None else int(last) + 1

    async def add_messages(self, rows: Sequence[dict[str, Any]]) -> None:
        if rows:
            await self.session.execute(sa.insert(ChatMessageRow), list(rows))

    async def messages(self, thread_id: str) -> list[ChatMessageRow]:
        stmt = (
            sa.select(ChatMessageRow)
            .where(ChatMessageRow.thread_id == thread_id)
            .order_by(ChatMessageRow.turn_index)
        )
        return list((await self.session.execute(stmt)).scalars())

    async def delete(self, thread_id: str) -> bool:
        """Delete a thread (its messages go with it: ON DELETE CASCADE); False if missing."""
        result = await self.session.execute(
            sa.delete(ChatThreadRow).where(ChatThreadRow.id == thread_id)
        )
        return bool(getattr(result, "rowcount", 0) == 1)

    async def agent_id(self, name: str) -> int | None:
        stmt = sa.select(ObjectRow.id).where(ObjectRow.kind == AGENT_KIND, ObjectRow.name == name)
        return (await self.session.execute(stmt)).scalar_one_or_none()
