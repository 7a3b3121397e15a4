"""Generic CRUD over every kind in the registry: validation, references, concurrency.

What a delete takes with it (cascades, set-null references, refusals) is ``deletion.py``.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError
from sqlalchemy.exc import IntegrityError

from mcpctl.domain.caller import Caller
from mcpctl.domain.labels import check_labels, parse_selector
from mcpctl.errors import (
    AlreadyExists,
    AppError,
    Conflict,
    InvalidInput,
    NotFound,
    PermissionDenied,
    VersionConflict,
)
from mcpctl.mcpd.db.tables import ObjectRow, utcnow
from mcpctl.mcpd.db.uow import UnitOfWork, UnitOfWorkFactory
from mcpctl.mcpd.services.audit import AuditLog, event_for
from mcpctl.mcpd.services.authz import Authorizer
from mcpctl.mcpd.services.behaviours import Behaviour, Prepared, invalid
from mcpctl.mcpd.services.deletion import Effect, delete_tree
from mcpctl.resources.envelope import API_VERSION, ApplyOutcome, Resource, Usage, UsageReport
from mcpctl.resources.kinds import KindInfo, by_kind
from mcpctl.resources.references import Reference
from mcpctl.resources.validation import from_validation_error

MAX_CHUNK = 500
APPLY_ATTEMPTS = 5


@dataclass(frozen=True)
class ItemResult:
    """The outcome of one object of a bulk apply: an outcome and the object, or an error."""

    kind: str
    name: str
    outcome: ApplyOutcome | None = None
    object: dict[str, Any] | None = None
    error: AppError | None = None


def _parse_body(info: KindInfo, item: dict[str, Any]) -> Resource[Any]:
    model: Any = Resource[info.spec_model]  # type: ignore[name-defined]
    try:
        body: Resource[Any] = model.model_validate(item)
    except ValidationError as exc:
        raise from_validation_error(exc) from exc
    return body


@dataclass(frozen=True)
class Page:
    items: list[dict[str, Any]]
    continue_token: str | None


def _encode_continue(name: str) -> str:
    return base64.urlsafe_b64encode(json.dumps({"after": name}).encode()).decode().rstrip("=")


def _decode_continue(token: str) -> str:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        after = json.loads(raw)["after"]
    except (binascii.Error, ValueError, KeyError, TypeError) as exc:
        raise invalid("continue", "not a token this server handed out") from exc
    if not isinstance(after, str):
        raise invalid("continue", "not a token this server handed out")
    return after


def _iso(row_value: Any) -> str:
    return str(row_value.isoformat().replace("+00:00", "Z"))


class ObjectService:
    def __init__(
        self,
        uow_factory: UnitOfWorkFactory,
        authorizer: Authorizer,
        behaviours: Mapping[str, Behaviour],
        audit: AuditLog | None = None,
    ) -> None:
        self.uows = uow_factory
        self.authz = authorizer
        self.behaviours = behaviours
        self.audit = audit
        self._default = Behaviour()

    def behaviour(self, kind: str) -> Behaviour:
        return self.behaviours.get(kind, self._default)

    # -- reads ---------------------------------------------------------------------------

    async def list_page(
        self,
        caller: Caller,
        info: KindInfo,
        *,
        selector: str | None = None,
        limit: int | None = None,
        continue_token: str | None = None,
        reveal: bool = False,
    ) -> Page:
        """Raises:
        InvalidInput: for a bad selector, limit or continue token."""
        names = self.authz.viewable(caller, info.plural)
        if reveal:
            self.authz.authorize(caller, "reveal", info.plural, None)
        requirements = parse_selector(selector)
        if limit is not None and not 1 <= limit <= MAX_CHUNK:
            raise invalid("limit", f"must be between 1 and {MAX_CHUNK}")
        after = _decode_continue(continue_token) if continue_token else None
        async with self.uows.read() as uow:
            rows = await uow.objects.select_page(
                info.kind, requirements, after, None if limit is None else limit + 1, names=names
            )
            more = limit is not None and len(rows) > limit
            rows = rows[:limit] if limit is not None else rows
            items = await self._render(uow, info, rows, reveal)
        token = _encode_continue(rows[-1].name) if more and rows else None
        if reveal:
            self._record(caller, "reveal", info.kind, None)
        return Page(items, token)

    async def get(
        self, caller: Caller, info: KindInfo, name: str, *, reveal: bool = False
    ) -> dict[str, Any]:
        """Raises:
        NotFound: when there is no such object."""
        self.authz.authorize(caller, "view", info.plural, name)
        if reveal:
            self.authz.authorize(caller, "reveal", info.plural, name)
        async with self.uows.read() as uow:
            row = await self._must_get(uow, info, name)
            obj = (await self._render(uow, info, [row], reveal))[0]
        if reveal:
            self._record(caller, "reveal", info.kind, name)
        return obj

    async def usage(self, caller: Caller, info: KindInfo, name: str) -> UsageReport:
        """Who uses this object and what it uses. Raises: NotFound."""
        self.authz.authorize(caller, "view", info.plural, name)
        async with self.uows.read() as uow:
            row = await self._must_get(uow, info, name)
            used_by = await uow.objects.refs_to(row.id)
            uses = await uow.objects.refs_from(row.id)
        return UsageReport(
            usedBy=[Usage(kind=r.kind, name=r.name, field=r.field) for r in used_by],
            uses=[Usage(kind=r.kind, name=r.name, field=r.field) for r in uses],
        )

    # -- writes --------------------------------------------------------------------------

    async def create(
        self, caller: Caller, info: KindInfo, body: Resource[Any], *, dry_run: bool = False
    ) -> dict[str, Any]:
        """Raises:
        AlreadyExists: when the name is taken. InvalidInput: for a bad object."""
        with self._audited(caller, "create", info.kind, body.metadata.name, dry_run) as details:
            name = self._check_envelope(info, body, body.metadata.name)
            self.authz.authorize(caller, "create", info.plural, name)
            async with self._writing() as uow:
                if await uow.objects.get(info.kind, name) is not None:
                    raise AlreadyExists(f"{info.singular}/{name} already exists")
                _, obj = await self._write(uow, info, name, body, None)
                if not dry_run:
                    await uow.commit()
                    self.committed([info.kind])
            details["outcome"] = "created"
        return obj

    async def apply(
        self,
        caller: Caller,
        info: KindInfo,
        name: str,
        body: Resource[Any],
        *,
        dry_run: bool = False,
    ) -> tuple[ApplyOutcome, dict[str, Any]]:
        """Create or replace. Raises:
        VersionConflict: when metadata.resourceVersion is stale. InvalidInput, InUse."""
        with self._audited(caller, "apply", info.kind, name, dry_run) as details:
            outcome, obj = await self._apply(caller, info, name, body, dry_run=dry_run)
            details["outcome"] = outcome
        return outcome, obj

    async def _apply(
        self,
        caller: Caller,
        info: KindInfo,
        name: str,
        body: Resource[Any],
        *,
        dry_run: bool,
    ) -> tuple[ApplyOutcome, dict[str, Any]]:
        self._check_envelope(info, body, name)
        conditional = body.metadata.resourceVersion is not None
        for attempt in range(APPLY_ATTEMPTS):
            try:
                async with self.uows.write() as uow:
                    result = await self._apply_in(uow, caller, info, name, body)
                    if not dry_run:
                        await uow.commit()
                        self.committed([info.kind])
                return result
            except (AlreadyExists, VersionConflict) as exc:
                # Lost a race: to create the same name, or (unconditional apply only) to another
                # writer's compare-and-set. The next round rereads the object and goes again.
                if attempt == APPLY_ATTEMPTS - 1 or (
                    conditional and isinstance(exc, VersionConflict)
                ):
                    raise
            except IntegrityError as exc:
                # The database refused what a concurrent writer made invalid meanwhile (a
                # reference to an object just deleted): the next round sees why, and says so.
                if attempt == APPLY_ATTEMPTS - 1:
                    raise Conflict("the change collided with a concurrent one; try again") from exc
        raise AssertionError("unreachable")

    async def apply_many(
        self, caller: Caller, items: list[dict[str, Any]], *, dry_run: bool = False
    ) -> list[ItemResult]:
        """Apply objects in order in one transaction, each in its own savepoint.

        Each object succeeds or fails alone, exactly as if applied by itself, but later objects
        see earlier ones (also in a dry run, which is rolled back whole at the end).
        """
        results: list[ItemResult] = []
        try:
            async with self._writing() as uow:
                uow.deferred = set()
                for item in items:
                    results.append(await self._apply_item(uow, caller, item))
                await self.finish_batch(uow)
                if not dry_run:
                    await uow.commit()
                    self.committed([r.kind for r in results if r.outcome is not None])
        except Exception as exc:
            # The whole transaction failed: none of the objects was applied. Recorded, re-raised.
            for r in results:
                self._record(caller, "apply", r.kind, r.name, error=exc, details=_dry(dry_run))
            raise
        for r in results:
            details = (
                _dry(dry_run) if r.outcome is None else {"outcome": r.outcome, **_dry(dry_run)}
            )
            self._record(caller, "apply", r.kind, r.name, error=r.error, details=details)
        return results

    async def write_batch_in(
        self,
        uow: UnitOfWork,
        info: KindInfo,
        bodies: Sequence[Resource[Any]],
        *,
        overwrite: bool,
    ) -> list[ApplyOutcome | None]:
        """Create, or with ``overwrite`` also replace, many objects of one kind as mcpd itself,
        inside the caller's unit of work, which commits (or not) itself: restore's path.

        Each object gets the checks ``apply`` makes (envelope, spec, references, the kind's
        ``prepare`` once per object in order, ``narrowing_check`` when replaced), but what
        ``apply`` does with a statement per object is one per batch here: which names exist,
        which referenced objects exist, and the INSERTs of new objects, labels and references.
        References may point at objects earlier in the batch; deferrable ones also at objects
        written later (the caller calls ``finish_batch`` before it commits). ``after_change``
        runs once, after the whole batch. None in the answer: the object exists and
        ``overwrite`` is off (left as it is, unchecked).

        Raises:
            InvalidInput, InUse, VersionConflict: naming the object (``kind/name: ...``).
        """
        names = [self._check_envelope(info, b, b.metadata.name) for b in bodies]
        specs = [info.spec_model.model_validate(b.spec) for b in bodies]
        existing = await uow.objects.ids_by_name(info.kind, names)
        old_labels = (
            await uow.objects.labels_of([r.id for r in existing.values()]) if overwrite else {}
        )
        if uow.deferred is None:
            uow.deferred = set()
        targets = await self._batch_targets(uow, info, zip(names, specs, strict=True))
        behaviour = self.behaviour(info.kind)
        writes: dict[str, _BatchWrite] = {}
        outcomes: list[ApplyOutcome | None] = []
        for name, spec, body in zip(names, specs, bodies, strict=True):
            row = existing.get(name)
            if row is not None and not overwrite:
                outcomes.append(None)
                continue
            labels = dict(body.metadata.labels)
            outcome: ApplyOutcome = "created"
            try:
                refs = _batch_refs(info, name, spec, targets, writes, uow.deferred)
                prepared = await behaviour.prepare(uow, name, spec, row)
                if row is not None:
                    outcome = await self._update(
                        uow, info, row, prepared, labels, behaviour, old_labels[row.id]
                    )
            except AppError as exc:
                raise type(exc)(
                    f"{info.singular}/{name}: {exc.message}", details=exc.details
                ) from exc
            outcomes.append(outcome)
            if outcome != "unchanged":
                writes[name] = _BatchWrite(name, labels, row, prepared, refs)
        await self._store_batch(uow, info, list(writes.values()))
        if writes:
            try:
                await behaviour.after_change(uow)
            except AppError as exc:
                raise type(exc)(f"{info.plural}: {exc.message}", details=exc.details) from exc
        return outcomes

    async def finish_batch(self, uow: UnitOfWork) -> None:
        """Record the deferrable references of a batch (bulk apply, restore) whose targets were
        missing when their referrer was written, now that the whole batch is written.

        Raises:
            InvalidInput: a target is still missing (naming the referrer and its field); the
                caller rolls the whole batch back.
        """
        pending, uow.deferred = uow.deferred or set(), None
        for kind, name in sorted(pending):
            info = by_kind(kind)
            row = await uow.objects.get(kind, name)
            if row is None:  # its write was rolled back
                continue
            spec = info.spec_model.model_validate(row.spec)
            recorded = {r.field for r in await uow.objects.refs_from(row.id)}
            refs = []
            for ref in info.references_of(name, spec):
                if ref.field in recorded:
                    continue
                target = await uow.objects.get(ref.kind, ref.name)
                if target is None:
                    message = (
                        f"{ref.kind.lower()} {ref.name!r} not found (nor written in this batch)"
                    )
                    raise InvalidInput(
                        f"{info.singular}/{name}: {ref.field}: {message}",
                        details={"errors": [{"path": ref.field, "message": message}]},
                    )
                refs.append(_ref_row(ref, target.id))
            await uow.objects.set_refs(row.id, refs, replace=False)

    @staticmethod
    async def _batch_targets(
        uow: UnitOfWork, info: KindInfo, specs: Iterable[tuple[str, BaseModel]]
    ) -> dict[tuple[str, str], ObjectRow]:
        """The stored objects the specs refer to, one query per kind referred to."""
        wanted: dict[str, set[str]] = {}
        for name, spec in specs:
            for ref in info.references_of(name, spec):
                wanted.setdefault(ref.kind, set()).add(ref.name)
        found: dict[tuple[str, str], ObjectRow] = {}
        for kind, names in wanted.items():
            for name, row in (await uow.objects.ids_by_name(kind, names)).items():
                found[(kind, name)] = row
        return found

    @staticmethod
    async def _store_batch(uow: UnitOfWork, info: KindInfo, writes: list[_BatchWrite]) -> None:
        """INSERT the new objects, then every written object's labels and references."""
        now = utcnow()
        new = [w for w in writes if w.existing is None]
        ids = await uow.objects.insert_many(
            [
                {
                    "uid": str(uuid.uuid4()),
                    "kind": info.kind,
                    "name": w.name,
                    "spec": w.prepared.spec,
                    "status": w.prepared.status,
                    "sealed": w.prepared.sealed,
                    "resource_version": 1,
                    "created_at": now,
                    "updated_at": now,
                }
                for w in new
            ]
        )
        id_of = {w.name: w.existing.id for w in writes if w.existing is not None}
        id_of.update((name, row_id) for (_, name), row_id in ids.items())
        await uow.objects.clear_labels_and_refs([w.existing.id for w in writes if w.existing])
        await uow.objects.add_labels(
            [
                {"object_id": id_of[w.name], "key": k, "value": v}
                for w in writes
                for k, v in w.labels.items()
            ]
        )
        await uow.objects.add_refs(
            [
                {
                    "source_id": id_of[w.name],
                    "field": ref.field,
                    **_ref_row(ref, target if isinstance(target, int) else id_of[target]),
                }
                for w in writes
                for ref, target in w.refs
            ]
        )

    async def _apply_item(
        self, uow: UnitOfWork, caller: Caller, item: dict[str, Any]
    ) -> ItemResult:
        kind = str(item.get("kind", "")) if isinstance(item, dict) else ""
        meta = item.get("metadata") if isinstance(item, dict) else None
        name = str(meta.get("name", "")) if isinstance(meta, dict) else ""
        try:
            info = by_kind(kind)
            body = _parse_body(info, item)
            self._check_envelope(info, body, body.metadata.name)
            async with uow.savepoint():
                outcome, obj = await self._apply_in(uow, caller, info, body.metadata.name, body)
        except IntegrityError:
            error: AppError = Conflict("the change collided with a concurrent one; try again")
        except AppError as exc:
            error = exc
        else:
            return ItemResult(kind, name, outcome=outcome, object=obj)
        return ItemResult(kind, name, error=error)

    async def _apply_in(
        self,
        uow: UnitOfWork,
        caller: Caller,
        info: KindInfo,
        name: str,
        body: Resource[Any],
        *,
        render: bool = True,
    ) -> tuple[ApplyOutcome, dict[str, Any]]:
        existing = await uow.objects.get(info.kind, name)
        self.authz.authorize(caller, "edit" if existing else "create", info.plural, name)
        wanted = body.metadata.resourceVersion
        if wanted is not None and (existing is None or str(existing.resource_version) != wanted):
            current = (
                "it does not exist" if existing is None else f"it is at {existing.resource_version}"
            )
            raise VersionConflict(
                f"{info.singular}/{name}: resourceVersion {wanted} is stale ({current}); "
                "get it again and reapply your change"
            )
        return await self._write(uow, info, name, body, existing, render=render)

    async def delete(
        self, caller: Caller, info: KindInfo, name: str, *, dry_run: bool = False
    ) -> dict[str, Any]:
        """Delete and return the object; objects whose references cascade go with it, and
        set-null references to them are cleared (each audited, ``cause`` naming this delete).

        Raises:
            NotFound. InUse: naming every object that still refers to it (or to an object that
                would go with it). Conflict: concurrent changes kept getting in the way.
        """
        with self._audited(caller, "delete", info.kind, name, dry_run):
            self.authz.authorize(caller, "delete", info.plural, name)
            obj, effects = await self._delete(info, name, dry_run)
        for effect in effects:
            details = {"cause": f"{info.singular}/{name}", **_dry(dry_run)}
            if effect.field is not None:
                details["cleared"] = effect.field
            self._record(caller, effect.verb, effect.kind, effect.name, details=details)
        return obj

    async def _delete(
        self, info: KindInfo, name: str, dry_run: bool
    ) -> tuple[dict[str, Any], list[Effect]]:
        for attempt in range(APPLY_ATTEMPTS):
            try:
                async with self.uows.write() as uow:
                    row = await self._must_get(uow, info, name)
                    obj = (await self._render(uow, info, [row], False))[0]
                    effects = await delete_tree(uow, row, self.behaviour)
                    kinds = sorted({info.kind, *(e.kind for e in effects)})
                    for kind in kinds:
                        await self.behaviour(kind).after_change(uow)
                    if not dry_run:
                        await uow.commit()
                        self.committed(kinds)
                return obj, effects
            except (IntegrityError, VersionConflict) as exc:
                # The database refused: a reference to one of these objects was written
                # meanwhile; or a referrer to clear moved on. Look again.
                if attempt == APPLY_ATTEMPTS - 1:
                    raise Conflict(
                        "the delete collided with concurrent changes; try again"
                    ) from exc
        raise AssertionError("unreachable")

    def committed(self, kinds: Iterable[str]) -> None:
        """Tell the behaviours of ``kinds`` that writes of theirs were committed."""
        for kind in set(kinds):
            self.behaviour(kind).committed()

    # -- audit ---------------------------------------------------------------------------

    def _record(
        self,
        caller: Caller,
        verb: str,
        kind: str,
        name: str | None,
        *,
        error: BaseException | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        # Denials are recorded by the Authorizer, where they are decided.
        if self.audit is None or isinstance(error, PermissionDenied):
            return
        self.audit.record(event_for(caller, verb, kind, name, error=error, details=details))

    @contextmanager
    def _audited(
        self, caller: Caller, verb: str, kind: str, name: str | None, dry_run: bool
    ) -> Iterator[dict[str, Any]]:
        """Record the block's outcome: ok with the details it filled in, or its error."""
        details = _dry(dry_run)
        try:
            yield details
        except Exception as exc:  # recorded and re-raised, never swallowed
            self._record(caller, verb, kind, name, error=exc, details=_dry(dry_run))
            raise
        self._record(caller, verb, kind, name, details=details)

    # -- internals -----------------------------------------------------------------------

    @staticmethod
    def _check_envelope(info: KindInfo, body: Resource[Any], name: str) -> str:
        if body.kind != info.kind:
            raise invalid("kind", f"expected {info.kind!r} at this URL, got {body.kind!r}")
        if body.metadata.name != name:
            raise invalid(
                "metadata.name", f"{body.metadata.name!r} does not match the URL name {name!r}"
            )
        info.check_name(name)
        check_labels(body.metadata.labels)
        return name

    @staticmethod
    async def _must_get(uow: UnitOfWork, info: KindInfo, name: str) -> ObjectRow:
        row = await uow.objects.get(info.kind, name)
        if row is None:
            raise NotFound(f"{info.singular}/{name} not found")
        return row

    @asynccontextmanager
    async def _writing(self) -> AsyncIterator[UnitOfWork]:
        """A write unit of work whose integrity errors become a Conflict the caller may retry."""
        # The database refuses what a concurrent writer made invalid meanwhile (a reference to an
        # object just deleted, a delete under a new reference): a conflict, not a server error.
        async with self.uows.write() as uow:
            try:
                yield uow
            except IntegrityError as exc:
                raise Conflict("the change collided with a concurrent one; try again") from exc

    async def _resolve_refs(
        self, uow: UnitOfWork, info: KindInfo, name: str, spec: BaseModel
    ) -> list[dict[str, Any]]:
        """The reference rows of the object; in a batch, a deferrable reference to a missing
        object is left for ``finish_batch``.

        Raises:
            InvalidInput: a missing target or secret key.
        """
        refs = []
        for ref in info.references_of(name, spec):
            target = await uow.objects.get(ref.kind, ref.name)
            if target is None:
                if ref.deferrable and uow.deferred is not None:
                    uow.deferred.add((info.kind, name))
                    continue
                raise invalid(ref.field, f"{ref.kind.lower()} {ref.name!r} not found")
            if ref.key is not None and ref.key not in target.status.get("keys", []):
                raise invalid(f"{ref.field}.key", f"secret {ref.name!r} has no key {ref.key!r}")
            refs.append(_ref_row(ref, target.id))
        return refs

    async def _write(
        self,
        uow: UnitOfWork,
        info: KindInfo,
        name: str,
        body: Resource[Any],
        existing: ObjectRow | None,
        *,
        render: bool = True,
    ) -> tuple[ApplyOutcome, dict[str, Any]]:
        spec = info.spec_model.model_validate(body.spec)
        behaviour = self.behaviour(info.kind)
        refs = await self._resolve_refs(uow, info, name, spec)
        prepared = await behaviour.prepare(uow, name, spec, existing)
        labels = dict(body.metadata.labels)
        if existing is None:
            row = await self._insert(uow, info, name, prepared)
            outcome: ApplyOutcome = "created"
        else:
            row = existing
            outcome = await self._update(uow, info, existing, prepared, labels, behaviour)
        if outcome != "unchanged":
            await uow.objects.set_labels(row.id, labels, replace=existing is not None)
            await uow.objects.set_refs(row.id, refs, replace=existing is not None)
            await behaviour.after_change(uow)
        if not render:  # writers that throw the answer away (restore) skip building it
            return outcome, {}
        return outcome, (await self._render(uow, info, [row], False, labels))[0]

    async def _insert(
        self, uow: UnitOfWork, info: KindInfo, name: str, prepared: Prepared
    ) -> ObjectRow:
        now = utcnow()
        row = ObjectRow(
            uid=str(uuid.uuid4()),
            kind=info.kind,
            name=name,
            spec=prepared.spec,
            status=prepared.status,
            sealed=prepared.sealed,
            resource_version=1,
            created_at=now,
            updated_at=now,
        )
        try:
            return await uow.objects.insert(row)
        except IntegrityError as exc:
            raise AlreadyExists(f"{info.singular}/{name} already exists") from exc

    async def _update(
        self,
        uow: UnitOfWork,
        info: KindInfo,
        existing: ObjectRow,
        prepared: Prepared,
        labels: dict[str, str],
        behaviour: Behaviour,
        old_labels: dict[str, str] | None = None,
    ) -> ApplyOutcome:
        if old_labels is None:
            old_labels = (await uow.objects.labels_of([existing.id]))[existing.id]
        if behaviour.fingerprint(existing) == prepared.fingerprint and old_labels == labels:
            return "unchanged"
        await behaviour.narrowing_check(uow, existing, prepared)
        won = await uow.objects.update_if_version(
            existing.id,
            existing.resource_version,
            spec=prepared.spec,
            status=prepared.status,
            sealed=prepared.sealed,
            resource_version=existing.resource_version + 1,
            updated_at=utcnow(),
        )
        if not won:
            raise VersionConflict(
                f"{info.singular}/{existing.name} changed concurrently; try again"
            )
        # The UPDATE bypassed the session; reload the row (async) so callers see what is stored.
        await uow.session.refresh(existing)
        return "configured"

    async def _render(
        self,
        uow: UnitOfWork,
        info: KindInfo,
        rows: list[ObjectRow],
        reveal: bool,
        labels_override: dict[str, str] | None = None,
    ) -> list[dict[str, Any]]:
        behaviour = self.behaviour(info.kind)
        ids = [r.id for r in rows]
        labels = (
            {ids[0]: labels_override}
            if labels_override is not None and len(rows) == 1
            else await uow.objects.labels_of(ids)
        )
        statuses = await behaviour.shown_status(uow, rows)
        return [
            {
                "apiVersion": API_VERSION,
                "kind": info.kind,
                "metadata": {
                    "name": row.name,
                    "labels": labels.get(row.id, {}),
                    "uid": row.uid,
                    "resourceVersion": str(row.resource_version),
                    "createdAt": _iso(row.created_at),
                    "updatedAt": _iso(row.updated_at),
                },
                "spec": behaviour.shown_spec(row, reveal),
                "status": statuses.get(row.id, {}),
            }
            for row in rows
        ]


@dataclass(frozen=True)
class _BatchWrite:
    """One object of ``write_batch_in``, checked and prepared, waiting for the batch's INSERTs."""

    name: str
    labels: dict[str, str]
    existing: ObjectRow | None
    prepared: Prepared
    # Each reference with its target: a stored object's id, or the name of an object written
    # earlier in the same batch (its id is known once the batch is inserted).
    refs: list[tuple[Reference, int | str]]


def _batch_refs(
    info: KindInfo,
    name: str,
    spec: BaseModel,
    stored: Mapping[tuple[str, str], ObjectRow],
    earlier: Mapping[str, _BatchWrite],
    deferred: set[tuple[str, str]] | None,
) -> list[tuple[Reference, int | str]]:
    """Resolve references as ``_resolve_refs`` does, against the stored objects and the
    objects written earlier in the batch (which win: they are what the target is now).

    Raises:
        InvalidInput: a missing target or secret key.
    """
    out: list[tuple[Reference, int | str]] = []
    for ref in info.references_of(name, spec):
        before = earlier.get(ref.name) if ref.kind == info.kind else None
        row = stored.get((ref.kind, ref.name))
        target: int | str
        if before is not None:
            status, target = before.prepared.status, ref.name
        elif row is not None:
            status, target = row.status, row.id
        elif ref.deferrable and deferred is not None:
            deferred.add((info.kind, name))
            continue
        else:
            raise invalid(ref.field, f"{ref.kind.lower()} {ref.name!r} not found")
        if ref.key is not None and ref.key not in status.get("keys", []):
            raise invalid(f"{ref.field}.key", f"secret {ref.name!r} has no key {ref.key!r}")
        out.append((ref, target))
    return out


def _ref_row(ref: Reference, target_id: int) -> dict[str, Any]:
    """A reference row's columns but its source."""
    return {"field": ref.field, "target_id": target_id, "key": ref.key, "on_delete": ref.on_delete}


def _dry(dry_run: bool) -> dict[str, Any]:
    return {"dryRun": True} if dry_run else {}
