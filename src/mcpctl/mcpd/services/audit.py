"""The audit trail: who did what, to which object, with what outcome.

``AuditLog.record`` never blocks and never fails the request that calls it: it appends to a
bounded in-memory queue. A background task writes the queue in batches (one transaction each,
one INSERT statement executed for all its rows), at the latest ``interval`` seconds after an
event arrived, or at once when a batch is full. When the queue is full the event is dropped,
counted (``dropped``, and the ``mcpd_audit_events_dropped_total`` metric) and logged: a
database that cannot keep up must not stall every request. ``close()`` (the app's shutdown)
writes everything still queued before the engine is disposed, so a clean shutdown loses
nothing.

Events never hold secret values, passwords, tokens or spec contents; ``details`` is a small map
of flags (``dryRun``, an apply's ``outcome``), never request bodies.

A second task prunes events older than the retention period, in bounded batches.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import re
from collections import deque
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from prometheus_client import CollectorRegistry, Counter

from mcpctl.domain.caller import Caller
from mcpctl.errors import AppError
from mcpctl.mcpd.db.tables import AuditEventRow, utcnow
from mcpctl.mcpd.db.uow import UnitOfWorkFactory
from mcpctl.mcpd.services.behaviours import invalid
from mcpctl.resources.kinds import KINDS

if TYPE_CHECKING:
    # authz records its denials here, so it imports this module at run time.
    from mcpctl.mcpd.services.authz import Authorizer

log = logging.getLogger(__name__)

Outcome = Literal["ok", "denied", "error"]
MAX_PAGE = 500
SWEEP_BATCH = 5000


@dataclass(frozen=True)
class AuditEvent:
    actor: str
    verb: str
    kind: str
    name: str | None
    outcome: Outcome
    code: str | None = None
    request_id: str | None = None
    client: str | None = None
    impersonated_by: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    time: datetime = field(default_factory=utcnow)

    def as_row(self) -> dict[str, Any]:
        """The row to insert; free-form fields cut to their column's size (a bad request may
        name a kind or object of any length, and one long value must not fail a whole batch)."""
        return {
            "time": self.time,
            "actor": self.actor[:253],
            "impersonated_by": _cut(self.impersonated_by, 253),
            "verb": self.verb[:40],
            "kind": self.kind[:63],
            "name": _cut(self.name, 253),
            "outcome": self.outcome,
            "code": _cut(self.code, 63),
            "request_id": _cut(self.request_id, 128),
            "client": _cut(self.client, 253),
            "details": self.details,
        }


def _cut(value: str | None, size: int) -> str | None:
    return None if value is None else value[:size]


def event_for(
    caller: Caller,
    verb: str,
    kind: str,
    name: str | None,
    *,
    error: BaseException | None = None,
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    """The event of ``caller`` doing ``verb``: ok, or the outcome of ``error``."""
    outcome: Outcome = "ok"
    code = None
    if error is not None:
        code = error.code if isinstance(error, AppError) else AppError.code
        outcome = "denied" if code in ("permission_denied", "unauthenticated") else "error"
    return AuditEvent(
        actor=caller.user,
        verb=verb,
        kind=kind,
        name=name,
        outcome=outcome,
        code=code,
        request_id=caller.request_id,
        client=caller.client,
        impersonated_by=caller.impersonated_by,
        details=details or {},
    )


_VERB_OF_METHOD = {"POST": "create", "PUT": "apply", "PATCH": "edit", "DELETE": "delete"}


def rejected_event(
    caller: Caller, method: str, path: str, name: str | None, error: AppError
) -> AuditEvent | None:
    """The event of a mutating request refused before it reached a service (its body or
    parameters did not validate); None for reads."""
    verb = _VERB_OF_METHOD.get(method.upper())
    if verb is None:
        return None
    parts = path.strip("/").split("/")
    resource = parts[2] if len(parts) > 2 and parts[:2] == ["api", "v1"] else path
    if resource == "apply":
        verb, resource = "apply", "*"
    return event_for(caller, verb, kind_of(resource), name, error=error)


def kind_of(resource: str) -> str:
    """The Kind of an authorization resource ("servers" → "Server"); others stay as they are."""
    needle = resource.strip().lower()
    for info in KINDS:
        if needle in info.names:
            return info.kind
    return resource


class AuditLog:
    """Records events without blocking; writes them in batches; prunes old ones."""

    def __init__(
        self,
        uow_factory: UnitOfWorkFactory,
        *,
        registry: CollectorRegistry | None = None,
        max_queue: int = 10_000,
        batch_size: int = 500,
        interval: float = 0.2,
        retention: timedelta | None = timedelta(days=90),
        sweep_every: float = 3600.0,
    ) -> None:
        self.uows = uow_factory
        self.max_queue = max_queue
        self.batch_size = batch_size
        self.interval = interval
        self.retention = retention
        self.sweep_every = sweep_every
        self.dropped = 0
        self._queue: deque[AuditEvent] = deque()
        self._pending = asyncio.Event()
        self._full = asyncio.Event()
        self._stopping = asyncio.Event()
        self._lock = asyncio.Lock()
        self._tasks: list[asyncio.Task[None]] = []
        self._dropped_metric = Counter(
            "mcpd_audit_events_dropped",
            "Audit events dropped because the write queue was full or a write failed",
            registry=registry,
        )

    # -- recording -----------------------------------------------------------------------

    def record(self, event: AuditEvent) -> None:
        """Queue ``event`` for writing; drop it (counted and logged) when the queue is full."""
        if len(self._queue) >= self.max_queue:
            self._drop(1, "the audit queue is full")
            return
        self._queue.append(event)
        self._pending.set()
        if len(self._queue) >= self.batch_size:
            self._full.set()

    def _drop(self, count: int, why: str) -> None:
        first = self.dropped == 0
        self.dropped += count
        self._dropped_metric.inc(count)
        # Logged on the first drop and then every 1000th, not per event: the log must not
        # become the next bottleneck.
        if first or self.dropped // 1000 != (self.dropped - count) // 1000:
            log.warning("dropped %d audit event(s) so far: %s", self.dropped, why)

    async def flush(self) -> None:
        """Write every event queued so far (and wait for a write already under way)."""
        async with self._lock:
            while self._queue:
                await self._write(self._take())
            self._pending.clear()
            self._full.clear()

    async def _write_batch(self) -> None:
        """Write one batch of what is queued. Events that arrive while it is written wait for
        the next one: under a steady stream (the relay's calls) that makes one transaction per
        ``interval``, not one per handful of events that came during the last write."""
        async with self._lock:
            if self._queue:
                await self._write(self._take())
            if not self._queue:
                self._pending.clear()
            if len(self._queue) < self.batch_size:
                self._full.clear()

    def _take(self) -> list[AuditEvent]:
        return [self._queue.popleft() for _ in range(min(self.batch_size, len(self._queue)))]

    async def _write(self, batch: list[AuditEvent]) -> None:
        try:
            async with self.uows.write() as uow:
                await uow.audit.insert_many([e.as_row() for e in batch])
                await uow.commit()
        except Exception:
            # A background writer is a top-level handler: losing a batch must not stop the
            # ones after it, and it is counted and logged like any other drop.
            log.exception("could not write %d audit event(s)", len(batch))
            self._drop(len(batch), "the database refused a batch")

    # -- background tasks ----------------------------------------------------------------

    def start(self) -> None:
        """Start the writer and (with a retention period) the sweeper."""
        self._tasks.append(asyncio.create_task(self._write_loop(), name="audit-writer"))
        if self.retention is not None:
            self._tasks.append(asyncio.create_task(self._sweep_loop(), name="audit-sweeper"))

    async def close(self) -> None:
        """Stop the tasks and write everything still queued."""
        self._stopping.set()
        self._pending.set()
        self._full.set()
        for task in self._tasks:
            await task
        self._tasks.clear()
        await self.flush()

    async def _write_loop(self) -> None:
        while not self._stopping.is_set():
            await self._pending.wait()
            if len(self._queue) < self.batch_size:
                with suppress(TimeoutError):
                    await asyncio.wait_for(self._full.wait(), self.interval)
            await self._write_batch()

    async def _sweep_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                await self.sweep()
            except Exception:
                log.exception("the audit retention sweep failed; trying again later")
            with suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.sweep_every)

    async def sweep(self, now: datetime | None = None) -> int:
        """Delete events older than the retention period, in bounded batches; how many went."""
        if self.retention is None:
            return 0
        cutoff = (now or utcnow()) - self.retention
        total = 0
        while True:
            async with self.uows.write() as uow:
                deleted = await uow.audit.delete_older_than(cutoff, SWEEP_BATCH)
                await uow.commit()
            total += deleted
            if deleted < SWEEP_BATCH or self._stopping.is_set():
                break
        if total:
            log.info("pruned %d audit event(s) older than %s", total, cutoff.isoformat())
        return total


# -- reading -------------------------------------------------------------------------------

_DURATION = re.compile(r"(?:\d+[smhd])+")
_PART = re.compile(r"(\d+)([smhd])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_since(text: str, now: datetime) -> datetime:
    """An RFC 3339 timestamp, or a duration back from ``now`` (90s, 15m, 1h, 7d, 1h30m).

    Raises:
        InvalidInput: naming ``since``.
    """
    value = text.strip()
    if _DURATION.fullmatch(value):
        return now - timedelta(seconds=sum(int(n) * _UNITS[u] for n, u in _PART.findall(value)))
    try:
        when = datetime.fromisoformat(value)
    except ValueError as exc:
        raise invalid(
            "since", f"{text!r} is neither a duration (90s, 15m, 1h, 7d) nor an RFC 3339 time"
        ) from exc
    return when if when.tzinfo is not None else when.replace(tzinfo=now.tzinfo)


def _iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def _encode_continue(row: AuditEventRow) -> str:
    raw = json.dumps({"t": row.time.isoformat(), "id": row.id}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_continue(token: str) -> tuple[datetime, int]:
    try:
        raw = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        when, row_id = datetime.fromisoformat(raw["t"]), raw["id"]
    except (binascii.Error, ValueError, KeyError, TypeError) as exc:
        raise invalid("continue", "not a token this server handed out") from exc
    if not isinstance(row_id, int) or when.tzinfo is None:
        raise invalid("continue", "not a token this server handed out")
    return when, row_id


@dataclass(frozen=True)
class AuditPage:
    items: list[dict[str, Any]]
    continue_token: str | None


def _shown(row: AuditEventRow) -> dict[str, Any]:
    return {
        "time": _iso(row.time),
        "user": row.actor,
        "impersonatedBy": row.impersonated_by,
        "verb": row.verb,
        "kind": row.kind,
        "name": row.name,
        "outcome": row.outcome,
        "code": row.code,
        "requestId": row.request_id,
        "client": row.client,
        "details": row.details,
    }


class AuditReader:
    """Queries over the audit trail, behind the ``audit`` operation."""

    def __init__(self, uow_factory: UnitOfWorkFactory, authorizer: Authorizer) -> None:
        self.uows = uow_factory
        self.authz = authorizer

    async def list_page(
        self,
        caller: Caller,
        *,
        since: str | None = None,
        user: str | None = None,
        kind: str | None = None,
        limit: int = MAX_PAGE,
        continue_token: str | None = None,
    ) -> AuditPage:
        """Events newest first.

        Raises:
            PermissionDenied: without the ``audit`` operation. InvalidInput: bad since, limit
            or continue token.
        """
        self.authz.authorize(caller, "run", "audit", None)
        if not 1 <= limit <= MAX_PAGE:
            raise invalid("limit", f"must be between 1 and {MAX_PAGE}")
        after = parse_since(since, utcnow()) if since else None
        before = _decode_continue(continue_token) if continue_token else None
        async with self.uows.read() as uow:
            rows = await uow.audit.select_page(
                since=after,
                actor=user or None,
                kind=kind_of(kind) if kind else None,
                before=before,
                limit=limit + 1,
            )
        more = len(rows) > limit
        rows = rows[:limit]
        token = _encode_continue(rows[-1]) if more and rows else None
        return AuditPage([_shown(r) for r in rows], token)
