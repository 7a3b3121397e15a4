"""Database tables. Rows end in ``Row`` so they never collide with wire models.

Declarative objects of every kind share one table (as Kubernetes keeps every kind in one store):
their spec is validated by the kinds registry before it gets here. References between objects
are rows of ``object_refs`` carrying their ``on_delete`` action (restrict, set-null, cascade);
the target has an ON DELETE RESTRICT foreign key whatever the action, so the database itself
refuses to drop an object that something still points at: mcpd clears set-null references and
deletes cascading referrers in the same transaction first (``services/deletion.py``), and a
reference added concurrently makes the delete fail rather than dangle.

Chat threads and their messages are plain tables (not declarative objects): a thread belongs to
an Agent's ``objects`` row and goes with it (ON DELETE CASCADE), its messages with the thread.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# Plain JSON, also on PostgreSQL: JSONB would reorder keys, so `get -o yaml` would list fields
# differently per engine. Nothing queries inside these documents.
JsonType = sa.JSON()


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on both engines (SQLite stores them naive)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)


class ObjectRow(Base):
    __tablename__ = "objects"
    __table_args__ = (sa.UniqueConstraint("kind", "name"),)

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    uid: Mapped[str] = mapped_column(sa.String(36), unique=True)
    kind: Mapped[str] = mapped_column(sa.String(40))
    name: Mapped[str] = mapped_column(sa.String(63))
    spec: Mapped[dict[str, Any]] = mapped_column(JsonType)
    status: Mapped[dict[str, Any]] = mapped_column(JsonType)
    sealed: Mapped[bytes | None] = mapped_column(sa.LargeBinary, nullable=True)
    resource_version: Mapped[int] = mapped_column(sa.Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ObjectLabelRow(Base):
    __tablename__ = "object_labels"
    __table_args__ = (sa.Index("ix_object_labels_key_value", "key", "value"),)

    object_id: Mapped[int] = mapped_column(
        sa.ForeignKey("objects.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(sa.String(317), primary_key=True)
    value: Mapped[str] = mapped_column(sa.String(63))


class ObjectRefRow(Base):
    __tablename__ = "object_refs"

    source_id: Mapped[int] = mapped_column(
        sa.ForeignKey("objects.id", ondelete="CASCADE"), primary_key=True
    )
    field: Mapped[str] = mapped_column(sa.String(200), primary_key=True)
    target_id: Mapped[int] = mapped_column(
        sa.ForeignKey("objects.id", ondelete="RESTRICT"), index=True
    )
    key: Mapped[str | None] = mapped_column(sa.String(253), nullable=True)
    on_delete: Mapped[str] = mapped_column(sa.String(16))


class UserRow(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(sa.String(63), unique=True)
    display_name: Mapped[str] = mapped_column(sa.String(200), default="")
    password_hash: Mapped[str | None] = mapped_column(sa.String(200), nullable=True)
    is_admin: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    disabled: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class TokenRow(Base):
    __tablename__ = "tokens"

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    description: Mapped[str] = mapped_column(sa.String(200), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class AuditEventRow(Base):
    """One audited action. Written in batches by ``AuditLog``; read newest first.

    Sized for the MCP relay's volume too: indexes serve the three queries (recent events, one
    user's, one kind's) and retention deletes by ``time``.
    """

    __tablename__ = "audit_events"
    __table_args__ = (
        sa.Index("ix_audit_events_actor_time", "actor", "time"),
        sa.Index("ix_audit_events_kind_time", "kind", "time"),
    )

    id: Mapped[int] = mapped_column(
        sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True
    )
    time: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    actor: Mapped[str] = mapped_column(sa.String(253))
    impersonated_by: Mapped[str | None] = mapped_column(sa.String(253), nullable=True)
    verb: Mapped[str] = mapped_column(sa.String(40))
    kind: Mapped[str] = mapped_column(sa.String(63))
    name: Mapped[str | None] = mapped_column(sa.String(253), nullable=True)
    outcome: Mapped[str] = mapped_column(sa.String(16))
    code: Mapped[str | None] = mapped_column(sa.String(63), nullable=True)
    request_id: Mapped[str | None] = mapped_column(sa.String(128), nullable=True)
    client: Mapped[str | None] = mapped_column(sa.String(253), nullable=True)
    details: Mapped[dict[str, Any]] = mapped_column(JsonType)


class ChatThreadRow(Base):
    """One conversation of a user with an agent; ``id`` sorts by creation time."""

    __tablename__ = "chat_threads"
    __table_args__ = (sa.Index("ix_chat_threads_owner_last_turn_at", "owner", "last_turn_at"),)

    id: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    agent_id: Mapped[int] = mapped_column(
        sa.ForeignKey("objects.id", ondelete="CASCADE"), index=True
    )
    owner: Mapped[str] = mapped_column(sa.String(253))
    title: Mapped[str] = mapped_column(sa.String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_turn_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ChatMessageRow(Base):
    """One turn of a thread, in the internal message format (``mcpd/llm/messages.py``)."""

    __tablename__ = "chat_messages"
    __table_args__ = (
        sa.UniqueConstraint("thread_id", "turn_index"),
        sa.CheckConstraint("role IN ('system', 'user', 'assistant', 'tool')", name="role"),
    )

    id: Mapped[int] = mapped_column(
        sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True
    )
    thread_id: Mapped[str] = mapped_column(sa.ForeignKey("chat_threads.id", ondelete="CASCADE"))
    turn_index: Mapped[int] = mapped_column(sa.Integer)
    role: Mapped[str] = mapped_column(sa.String(16))
    content: Mapped[str | None] = mapped_column(sa.Text, nullable=True)
    # [{id, name, arguments}] on assistant turns that call tools; arguments is JSON text.
    tool_calls: Mapped[list[dict[str, Any]] | None] = mapped_column(JsonType, nullable=True)
    tool_call_id: Mapped[str | None] = mapped_column(sa.String(253), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
