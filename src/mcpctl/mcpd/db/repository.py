"""Repositories: the only code that writes SQL for objects, labels, references and users."""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from mcpctl.domain.labels import Requirement
from mcpctl.mcpd.changes import ObjectKey
from mcpctl.mcpd.db.tables import ObjectLabelRow, ObjectRefRow, ObjectRow, TokenRow, UserRow

# Bound parameters per IN (...): far below SQLite's and asyncpg's limits (32,766 / 32,767).
IN_CHUNK = 500
_T = TypeVar("_T")


@dataclass(frozen=True)
class StoredRef:
    """A reference as stored, joined with the other end's kind and name."""

    kind: str
    name: str
    field: str
    key: str | None
    on_delete: str
    object_id: int


def _label_clause(req: Requirement) -> sa.ColumnElement[bool]:
    sub = sa.select(ObjectLabelRow.object_id).where(
        ObjectLabelRow.object_id == ObjectRow.id, ObjectLabelRow.key == req.key
    )
    if req.op in ("eq", "in", "ne", "notin"):
        sub = sub.where(ObjectLabelRow.value.in_(req.values))
    exists = sa.exists(sub)
    return exists if req.op in ("eq", "in", "exists") else ~exists


class ObjectRepository:
    """Objects, their labels and references.

    Every write of an object row (insert, update, delete) marks the object's ``(kind, name)``
    in ``written``, which the unit of work publishes once it has committed. Label and
    reference rows are not marked: they change only together with their object's row (whose
    resourceVersion the change bumps), or with the object's deletion.
    """

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.written: set[ObjectKey] = set()

    async def get(self, kind: str, name: str) -> ObjectRow | None:
        stmt = sa.select(ObjectRow).where(ObjectRow.kind == kind, ObjectRow.name == name)
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def get_by_id(self, row_id: int) -> ObjectRow | None:
        return await self.session.get(ObjectRow, row_id)

    async def first_sealed(self, kind: str) -> ObjectRow | None:
        """Any one object of ``kind`` holding sealed data (to prove the key opens it)."""
        stmt = (
            sa.select(ObjectRow)
            .where(ObjectRow.kind == kind, ObjectRow.sealed.is_not(None))
            .order_by(ObjectRow.id)
            .limit(1)
        )
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def ids_by_name(self, kind: str, names: Collection[str]) -> dict[str, ObjectRow]:
        """The objects of ``kind`` with these names (any number: queried in chunks)."""
        out: dict[str, ObjectRow] = {}
        for chunk in _chunks(sorted(set(names))):
            stmt = sa.select(ObjectRow).where(ObjectRow.kind == kind, ObjectRow.name.in_(chunk))
            out.update((row.name, row) for row in (await self.session.execute(stmt)).scalars())
        return out

    async def select_page(
        self,
        kind: str,
        selector: list[Requirement],
        after: str | None,
        limit: int | None,
        *,
        names: Collection[str] | None = None,
    ) -> list[ObjectRow]:
        """Objects of ``kind`` by name, matching ``selector``; only ``names`` when given."""
        stmt = sa.select(ObjectRow).where(ObjectRow.kind == kind)
        if names is not None:
            stmt = stmt.where(ObjectRow.name.in_(sorted(names)))
        for req in selector:
            stmt = stmt.where(_label_clause(req))
        if after is not None:
            stmt = stmt.where(ObjectRow.name > after)
        stmt = stmt.order_by(ObjectRow.name)
        if limit is not None:
            stmt = stmt.limit(limit)
        return list((await self.session.execute(stmt)).scalars())

    async def labels_of(self, ids: Sequence[int]) -> dict[int, dict[str, str]]:
        out: dict[int, dict[str, str]] = {i: {} for i in ids}
        for chunk in _chunks(ids):
            stmt = sa.select(
                ObjectLabelRow.object_id, ObjectLabelRow.key, ObjectLabelRow.value
            ).where(ObjectLabelRow.object_id.in_(chunk))
            for object_id, key, value in await self.session.execute(stmt):
                out[object_id][key] = value
        return out

    async def insert(self, row: ObjectRow) -> ObjectRow:
        self.session.add(row)
        await self.session.flush()
        self.written.add((row.kind, row.name))
        return row

    async def insert_many(self, rows: Sequence[dict[str, Any]]) -> dict[tuple[str, str], int]:
        """Insert objects (column values) in as few statements as the driver allows; their
        ids by (kind, name)."""
        if not rows:
            return {}
        stmt = sa.insert(ObjectRow).returning(ObjectRow.kind, ObjectRow.name, ObjectRow.id)
        result = await self.session.execute(stmt, list(rows))
        ids = {(kind, name): row_id for kind, name, row_id in result}
        self.written.update(ids)
        return ids

    async def add_labels(self, rows: Sequence[dict[str, Any]]) -> None:
        """Insert label rows (``object_id``, ``key``, ``value``) of many objects at once."""
        if rows:
            await self.session.execute(sa.insert(ObjectLabelRow), list(rows))

    async def add_refs(self, rows: Sequence[dict[str, Any]]) -> None:
        """Insert reference rows (``source_id``, ``field``, ...) of many objects at once."""
        if rows:
            await self.session.execute(sa.insert(ObjectRefRow), list(rows))

    async def clear_labels_and_refs(self, ids: Sequence[int]) -> None:
        """Drop the labels and outgoing references of these objects (before writing new ones)."""
        for chunk in _chunks(ids):
            await self.session.execute(
                sa.delete(ObjectLabelRow).where(ObjectLabelRow.object_id.in_(chunk))
            )
            await self.session.execute(
                sa.delete(ObjectRefRow).where(ObjectRefRow.source_id.in_(chunk))
            )

    async def update_if_version(self, row_id: int, version: int, **values: Any) -> bool:
        """Compare-and-set on resource_version; True when this writer won."""
        stmt = (
            sa.update(ObjectRow)
            .where(ObjectRow.id == row_id, ObjectRow.resource_version == version)
            .values(**values)
            .returning(ObjectRow.kind, ObjectRow.name)
            .execution_options(synchronize_session=False)
        )
        updated = [(kind, name) for kind, name in await self.session.execute(stmt)]
        self.written.update(updated)
        return len(updated) == 1

    async def delete(self, row_id: int) -> None:
        await self.delete_many([row_id])

    async def delete_many(self, ids: Sequence[int]) -> None:
        for chunk in _chunks(ids):
            stmt = (
                sa.delete(ObjectRow)
                .where(ObjectRow.id.in_(chunk))
                .returning(ObjectRow.kind, ObjectRow.name)
            )
            self.written.update((kind, name) for kind, name in await self.session.execute(stmt))

    async def delete_refs_from(self, ids: Sequence[int]) -> None:
        """Drop the outgoing references of these objects."""
        for chunk in _chunks(ids):
            await self.session.execute(
                sa.delete(ObjectRefRow).where(ObjectRefRow.source_id.in_(chunk))
            )

    async def delete_ref(self, source_id: int, field: str) -> None:
        await self.session.execute(
            sa.delete(ObjectRefRow).where(
                ObjectRefRow.source_id == source_id, ObjectRefRow.field == field
            )
        )

    async def set_labels(
        self, row_id: int, labels: dict[str, str], *, replace: bool = True
    ) -> None:
        if replace:
            await self.session.execute(
                sa.delete(ObjectLabelRow).where(ObjectLabelRow.object_id == row_id)
            )
        if labels:
            await self.session.execute(
                sa.insert(ObjectLabelRow),
                [{"object_id": row_id, "key": k, "value": v} for k, v in labels.items()],
            )

    async def set_refs(
        self, row_id: int, refs: list[dict[str, Any]], *, replace: bool = True
    ) -> None:
        if replace:
            await self.session.execute(
                sa.delete(ObjectRefRow).where(ObjectRefRow.source_id == row_id)
            )
        if refs:
            await self.session.execute(
                sa.insert(ObjectRefRow), [{"source_id": row_id, **ref} for ref in refs]
            )

    async def refs_to(self, row_id: int) -> list[StoredRef]:
        """Who points at this object."""
        return await self._refs(ObjectRefRow.source_id, ObjectRefRow.target_id == row_id)

    async def refs_from(self, row_id: int) -> list[StoredRef]:
        """What this object points at."""
        return await self._refs(ObjectRefRow.target_id, ObjectRefRow.source_id == row_id)

    async def _refs(
        self, other_end: InstrumentedAttribute[int], this_end: sa.ColumnElement[bool]
    ) -> list[StoredRef]:
        stmt = (
            sa.select(
                ObjectRow.kind,
                ObjectRow.name,
                ObjectRefRow.field,
                ObjectRefRow.key,
                ObjectRefRow.on_delete,
                ObjectRow.id,
            )
            .join(ObjectRow, ObjectRow.id == other_end)
            .where(this_end)
            .order_by(ObjectRow.kind, ObjectRow.name, ObjectRefRow.field)
        )
        return [StoredRef(*r) for r in await self.session.execute(stmt)]


class UserRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def count(self) -> int:
        return int((await self.session.execute(sa.select(sa.func.count(UserRow.id)))).scalar_one())

    async def get_by_name(self, name: str) -> UserRow | None:
        stmt = sa.select(UserRow).where(UserRow.name == name)
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def all(self) -> list[UserRow]:
        """Every user, by name."""
        return list(
            (await self.session.execute(sa.select(UserRow).order_by(UserRow.name))).scalars()
        )

    async def add(self, user: UserRow) -> UserRow:
        self.session.add(user)
        await self.session.flush()
        return user

    async def delete(self, user_id: int) -> None:
        """Delete a user; the database deletes their tokens with them (ON DELETE CASCADE)."""
        await self.session.execute(sa.delete(UserRow).where(UserRow.id == user_id))

    async def add_token(self, token: TokenRow) -> None:
        self.session.add(token)
        await self.session.flush()

    async def user_for_token(
        self, token_hash: str, now: datetime
    ) -> tuple[UserRow, TokenRow] | None:
        """The enabled user owning an unexpired token, and the token row (its stored hash, its
        id). A disabled user's tokens find nobody, from the moment the change is committed."""
        stmt = (
            sa.select(UserRow, TokenRow)
            .join(TokenRow, TokenRow.user_id == UserRow.id)
            .where(TokenRow.token_hash == token_hash)
            .where(UserRow.disabled.is_(False))
            .where(_unexpired(now))
        )
        row = (await self.session.execute(stmt)).one_or_none()
        return None if row is None else (row[0], row[1])

    async def tokens(self, now: datetime, user_id: int | None = None) -> list[tuple[TokenRow, str]]:
        """Unexpired tokens with their owner's name (one user's, or everyone's), oldest first."""
        stmt = (
            sa.select(TokenRow, UserRow.name)
            .join(UserRow, TokenRow.user_id == UserRow.id)
            .where(_unexpired(now))
            .order_by(TokenRow.created_at, TokenRow.id)
        )
        if user_id is not None:
            stmt = stmt.where(TokenRow.user_id == user_id)
        return [(row[0], row[1]) for row in await self.session.execute(stmt)]

    async def token(self, token_id: str) -> tuple[TokenRow, str] | None:
        """A token (expired or not) and its owner's name."""
        stmt = (
            sa.select(TokenRow, UserRow.name)
            .join(UserRow, TokenRow.user_id == UserRow.id)
            .where(TokenRow.id == token_id)
        )
        row = (await self.session.execute(stmt)).one_or_none()
        return None if row is None else (row[0], row[1])

    async def delete_token(self, token_id: str) -> None:
        await self.session.execute(sa.delete(TokenRow).where(TokenRow.id == token_id))


def _chunks(items: Sequence[_T], size: int = IN_CHUNK) -> Iterator[Sequence[_T]]:
    """``items`` in slices small enough for one IN (...) on every engine."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _unexpired(now: datetime) -> sa.ColumnElement[bool]:
    return sa.or_(TokenRow.expires_at.is_(None), TokenRow.expires_at > now)
