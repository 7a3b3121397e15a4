"""Chat threads and their messages: the storage the chat endpoint writes to (``ThreadStore``),
and the reads and deletes of the REST API with their access rules (``ThreadService``).

Decisions (docs/agents.md):

- A thread id is 26 characters of lowercase Crockford base32, sortable by creation time (a
  48-bit millisecond timestamp, then 80 random bits), like a ULID.
- ``append`` writes a batch of messages with consecutive turn indexes in one transaction. The
  thread's row is updated first (``last_turn_at``), which on PostgreSQL locks it, so appends
  to one thread take turns; SQLite writers take turns anyway. The unique (thread, turn index)
  constraint is the guard either way: a collision rolls the batch back and it is written again
  after the winner's messages, never over them.
- A message maps 1:1 onto the internal LLM message format (``mcpd/llm/messages.py``), except
  that an empty text is stored as NULL (the internal format uses ``""`` for "no text").
- Access: a thread belongs to its owner (the user who chatted), who may always read and delete
  it. Anyone else needs ``view`` (to list and read) or ``delete`` on ``threads`` (a resource of
  RBAC bindings, like ``tokens``). Deletes are audited (kind ``ChatThread``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from sqlalchemy.exc import IntegrityError

from mcpctl.domain.caller import Caller
from mcpctl.errors import Conflict, InvalidInput, NotFound
from mcpctl.mcpd.db.tables import ChatMessageRow, ChatThreadRow, utcnow
from mcpctl.mcpd.db.threads import ThreadRecord
from mcpctl.mcpd.db.uow import UnitOfWorkFactory
from mcpctl.mcpd.llm.messages import Message, Role, ToolCall
from mcpctl.mcpd.services.audit import AuditLog, event_for
from mcpctl.mcpd.services.authz import Authorizer

THREAD_KIND = "ChatThread"
THREADS = "threads"  # the RBAC resource
ROLES: tuple[Role, ...] = ("system", "user", "assistant", "tool")
MAX_TITLE = 200
MAX_TOOL_CALL_ID = 253
# Each lost round means another writer's batch was stored: a bound, not a wait.
APPEND_ATTEMPTS = 50
_CROCKFORD = "0123456789abcdefghjkmnpqrstvwxyz"


def new_thread_id(now: datetime) -> str:
    """26 characters, sortable by ``now`` (milliseconds), then 80 random bits."""
    value = (int(now.timestamp() * 1000) << 80) | int.from_bytes(os.urandom(10), "big")
    return "".join(_CROCKFORD[(value >> shift) & 31] for shift in range(125, -1, -5))


def _iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class Thread:
    id: str
    agent: str
    owner: str
    title: str
    created_at: datetime
    last_turn_at: datetime
    message_count: int = 0

    @classmethod
    def of(cls, record: ThreadRecord) -> Thread:
        row = record.row
        return cls(
            row.id,
            record.agent,
            row.owner,
            row.title,
            row.created_at,
            row.last_turn_at,
            record.message_count,
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "agent": self.agent,
            "owner": self.owner,
            "title": self.title,
            "createdAt": _iso(self.created_at),
            "lastTurnAt": _iso(self.last_turn_at),
            "messageCount": self.message_count,
        }


@dataclass(frozen=True)
class NewMessage:
    """A message to append. ``tool_calls`` only on assistant turns; ``tool_call_id`` (the call
    answered) on tool turns only, where it is required."""

    role: Role
    content: str | None = None
    tool_calls: tuple[ToolCall, ...] = field(default_factory=tuple)
    tool_call_id: str | None = None

    @classmethod
    def of(cls, message: Message) -> NewMessage:
        """The internal format's message, to store."""
        return cls(message.role, message.content or None, message.tool_calls, message.tool_call_id)

    def check(self, path: str) -> None:
        """Raises:
        InvalidInput: naming the field at ``path`` (``messages[2].toolCallId``)."""
        if self.role not in ROLES:
            raise _invalid(f"{path}.role", f"must be one of {', '.join(ROLES)}")
        if self.tool_calls and self.role != "assistant":
            raise _invalid(f"{path}.toolCalls", "only assistant messages call tools")
        if (self.role == "tool") != (self.tool_call_id is not None):
            raise _invalid(
                f"{path}.toolCallId", "required on tool messages (the call answered), only there"
            )
        if self.tool_call_id is not None and not 1 <= len(self.tool_call_id) <= MAX_TOOL_CALL_ID:
            raise _invalid(f"{path}.toolCallId", f"must be 1 to {MAX_TOOL_CALL_ID} characters")


@dataclass(frozen=True)
class StoredMessage:
    thread_id: str
    turn_index: int
    role: Role
    content: str | None
    tool_calls: tuple[ToolCall, ...]
    tool_call_id: str | None
    created_at: datetime

    @classmethod
    def of(cls, row: ChatMessageRow) -> StoredMessage:
        calls = tuple(ToolCall(c["id"], c["name"], c["arguments"]) for c in row.tool_calls or ())
        role: Role = row.role  # type: ignore[assignment]  # the table's CHECK constraint
        return cls(
            row.thread_id,
            row.turn_index,
            role,
            row.content,
            calls,
            row.tool_call_id,
            row.created_at,
        )

    def to_message(self) -> Message:
        """As the internal format's message, to send to an LLM again."""
        return Message(self.role, self.content or "", self.tool_calls, self.tool_call_id)

    def as_json(self) -> dict[str, Any]:
        return {
            "turnIndex": self.turn_index,
            "role": self.role,
            "content": self.content,
            "toolCalls": [
                {"id": c.id, "name": c.name, "arguments": c.arguments} for c in self.tool_calls
            ]
            or None,
            "toolCallId": self.tool_call_id,
            "createdAt": _iso(self.created_at),
        }


def _invalid(path: str, message: str) -> InvalidInput:
    return InvalidInput(
        f"{path}: {message}", details={"errors": [{"path": path, "message": message}]}
    )


def _not_found(thread_id: str) -> NotFound:
    return NotFound(f"thread {thread_id!r} not found")


def _row(thread_id: str, index: int, message: NewMessage, now: datetime) -> dict[str, Any]:
    calls = [{"id": c.id, "name": c.name, "arguments": c.arguments} for c in message.tool_calls]
    return {
        "thread_id": thread_id,
        "turn_index": index,
        "role": message.role,
        "content": message.content or None,
        "tool_calls": calls or None,
        "tool_call_id": message.tool_call_id,
        "created_at": now,
    }


class ThreadStore:
    """Threads and messages as stored, with no access rules (callers check them)."""

    def __init__(self, uow_factory: UnitOfWorkFactory) -> None:
        self.uows = uow_factory

    async def create_thread(self, agent: str, owner: str, title: str) -> Thread:
        """A new, empty thread of ``owner`` with ``agent`` (a title longer than 200 characters
        is cut).

        Raises:
            NotFound: no such agent (also when it is deleted meanwhile).
        """
        now = utcnow()
        row = ChatThreadRow(
            id=new_thread_id(now),
            owner=owner,
            title=title[:MAX_TITLE],
            created_at=now,
            last_turn_at=now,
        )
        try:
            async with self.uows.write() as uow:
                agent_id = await uow.threads.agent_id(agent)
                if agent_id is None:
                    raise NotFound(f"agent/{agent} not found")
                row.agent_id = agent_id
                await uow.threads.add(row)
                await uow.commit()
        except IntegrityError as exc:  # the agent went in between
            raise NotFound(f"agent/{agent} not found") from exc
        return Thread(row.id, agent, owner, row.title, now, now)

    async def append(self, thread_id: str, messages: Sequence[NewMessage]) -> list[StoredMessage]:
        """Append ``messages`` with consecutive turn indexes after the thread's last one, all
        or none, and move the thread's ``last_turn_at`` on.

        Raises:
            InvalidInput: a malformed message (``messages[i]...``; nothing is stored).
            NotFound: no such thread. Conflict: other writers kept winning (not expected).
        """
        for i, message in enumerate(messages):
            message.check(f"messages[{i}]")
        if not messages:
            await self.get_thread(thread_id)
            return []
        for attempt in range(APPEND_ATTEMPTS):
            try:
                async with self.uows.write() as uow:
                    now = utcnow()
                    if not await uow.threads.touch(thread_id, now):
                        raise _not_found(thread_id)
                    first = await uow.threads.next_turn_index(thread_id)
                    rows = [_row(thread_id, first + i, m, now) for i, m in enumerate(messages)]
                    await uow.threads.add_messages(rows)
                    await uow.commit()
            except IntegrityError as exc:
                # Another writer took these turn indexes first: go again after its messages.
                if attempt == APPEND_ATTEMPTS - 1:
                    raise Conflict(
                        f"thread {thread_id!r}: could not append after {APPEND_ATTEMPTS} "
                        "attempts (concurrent writers); try again"
                    ) from exc
                continue
            return [
                StoredMessage(
                    thread_id, first + i, m.role, r["content"], m.tool_calls, m.tool_call_id, now
                )
                for i, (m, r) in enumerate(zip(messages, rows, strict=True))
            ]
        raise AssertionError("unreachable")

    async def get_thread(self, thread_id: str) -> Thread:
        """Raises:
        NotFound: no such thread."""
        async with self.uows.read() as uow:
            record = await uow.threads.get(thread_id)
        if record is None:
            raise _not_found(thread_id)
        return Thread.of(record)

    async def messages(self, thread_id: str) -> list[StoredMessage]:
        """The thread's messages by turn index (none for an unknown thread)."""
        async with self.uows.read() as uow:
            return [StoredMessage.of(r) for r in await uow.threads.messages(thread_id)]

    async def list_threads(
        self, agent: str | None = None, owner: str | None = None
    ) -> list[Thread]:
        """Threads, most recently active first; of ``agent`` and of ``owner`` when given."""
        async with self.uows.read() as uow:
            return [Thread.of(r) for r in await uow.threads.select(agent=agent, owner=owner)]

    async def delete_thread(self, thread_id: str) -> Thread:
        """Delete a thread and its messages.

        Raises:
            NotFound: no such thread.
        """
        async with self.uows.write() as uow:
            record = await uow.threads.get(thread_id)
            if record is None or not await uow.threads.delete(thread_id):
                raise _not_found(thread_id)
            await uow.commit()
        return Thread.of(record)


class ThreadService:
    """The REST API's reads and deletes of threads, with their access rules and audit."""

    def __init__(
        self, store: ThreadStore, authz: Authorizer, audit: AuditLog | None = None
    ) -> None:
        self.store = store
        self.authz = authz
        self.audit = audit

    async def list_threads(
        self, caller: Caller, *, agent: str | None = None, owner: str | None = None
    ) -> list[Thread]:
        """Everyone's threads for callers who may view ``threads``, else the caller's own.

        Raises:
            PermissionDenied: asking for another owner's threads without ``view``.
        """
        if not self.authz.allows(caller, "view", THREADS, None):
            if owner is not None and owner != caller.user:
                self.authz.authorize(caller, "view", THREADS, None)
            owner = caller.user
        return await self.store.list_threads(agent, owner)

    async def read(self, caller: Caller, thread_id: str) -> tuple[Thread, list[StoredMessage]]:
        """A thread and its messages: the owner's, or anyone's with ``view`` on threads.

        Raises:
            PermissionDenied: another user's thread (or an unknown id, so that ids cannot be
                probed) without ``view``. NotFound: no such thread.
        """
        thread = await self._visible(caller, "view", thread_id)
        return thread, await self.store.messages(thread_id)

    async def delete(self, caller: Caller, thread_id: str) -> Thread:
        """Delete a thread: the owner's, or anyone's with ``delete`` on threads (audited).

        Raises:
            PermissionDenied, NotFound: as for ``read``.
        """
        try:
            await self._visible(caller, "delete", thread_id)
            thread = await self.store.delete_thread(thread_id)
        except NotFound as exc:
            self._record(caller, thread_id, error=exc)
            raise
        self._record(caller, thread_id, details={"agent": thread.agent, "owner": thread.owner})
        return thread

    async def _visible(
        self, caller: Caller, verb: Literal["view", "delete"], thread_id: str
    ) -> Thread:
        try:
            thread: Thread | None = await self.store.get_thread(thread_id)
        except NotFound:
            thread = None
        if thread is None or thread.owner != caller.user:
            self.authz.authorize(caller, verb, THREADS, thread_id)
        if thread is None:
            raise _not_found(thread_id)
        return thread

    def _record(
        self,
        caller: Caller,
        thread_id: str,
        *,
        error: BaseException | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        if self.audit is not None:
            self.audit.record(
                event_for(caller, "delete", THREAD_KIND, thread_id, error=error, details=details)
            )
