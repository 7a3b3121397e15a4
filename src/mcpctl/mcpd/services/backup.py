"""Backup and restore of the whole control plane: every kind of the registry, and the users.

Decisions:

- Every kind comes from the kinds registry, in apply order, read through ObjectService's own
  reveal path; a kind added later is backed up and restored with no change here. Objects whose
  revealed spec differs from the masked one (Secret values, and any later kind that masks) are
  sealed whole under the passphrase (``mcpd/services/passphrase.py``).
- A passphrase is always required: the file never holds a plaintext secret value, and there is
  no "unencrypted" mode to pick by mistake.
- Users are the rows of the ``users`` table with their argon2 hashes. Tokens are not backed up:
  after a restore into a fresh mcpd, users log in again.
- Restore validates the whole file first (format, passphrase canary, every sealed value, every
  object's schema), before it touches the database. It then writes users, then objects in apply
  order, in ONE transaction: any failure rolls everything back, so nothing is half-restored.
  A dry run does the same and rolls back at the end.
- Objects are written a kind at a time (``ObjectService.write_batch_in``): a few statements per
  kind rather than several per object, with the same checks as an apply (10,000 objects in
  about a second inside mcpd instead of 25-40 s; bench/RESULTS.md).
- Restore adds and (with ``overwrite``) replaces; it never deletes objects missing from the file.
- The ``backup`` / ``restore`` operations are the only permissions checked; reads and writes
  then run as mcpd itself (a restore operator needs no grant on each kind).
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError

from mcpctl.domain.caller import SYSTEM, Caller
from mcpctl.domain.labels import check_labels
from mcpctl.domain.names import check_name
from mcpctl.errors import AppError, Conflict, InvalidInput
from mcpctl.mcpd.db.tables import UserRow, utcnow
from mcpctl.mcpd.db.uow import UnitOfWork, UnitOfWorkFactory
from mcpctl.mcpd.services.audit import AuditLog, event_for
from mcpctl.mcpd.services.authz import Authorizer
from mcpctl.mcpd.services.objects import MAX_CHUNK, ObjectService
from mcpctl.mcpd.services.passphrase import KdfParams, PassphraseBox, invalid
from mcpctl.mcpd.services.users import user_object
from mcpctl.resources.backup import (
    BACKUP_KIND,
    FORMAT_VERSION,
    MIN_PASSPHRASE_LENGTH,
    BackupDocument,
    BackupUser,
    ConflictPolicy,
    RestoreItem,
    RestoreOutcome,
    RestoreResult,
)
from mcpctl.resources.envelope import API_VERSION, Resource
from mcpctl.resources.kinds import KINDS, KindInfo, by_kind
from mcpctl.resources.validation import error_path

USER_KIND = "User"


def mcpd_version() -> str:
    try:
        return version("mcpctl")
    except PackageNotFoundError:
        return "unknown"


def _check_passphrase(passphrase: str) -> None:
    if len(passphrase) < MIN_PASSPHRASE_LENGTH:
        raise invalid("passphrase", f"must be at least {MIN_PASSPHRASE_LENGTH} characters")


def _iso_now() -> str:
    return utcnow().isoformat().replace("+00:00", "Z")


def _sealing_context(kind: str, name: str) -> str:
    return f"{kind}/{name}"


def _ordered_kinds() -> list[KindInfo]:
    return sorted(KINDS, key=lambda k: k.apply_order)


def _within(path: str, exc: InvalidInput) -> InvalidInput:
    """The same error, its message and paths placed under ``path`` of the file."""
    errors = [
        {**e, "path": f"{path}.{e['path']}" if e.get("path") else path}
        for e in exc.details.get("errors", [])
    ]
    return InvalidInput(f"{path}.{exc.message}", details={**exc.details, "errors": errors})


def _from_validation(path: str, exc: ValidationError) -> InvalidInput:
    errors = [
        {"path": ".".join(p for p in (path, error_path(e["loc"])) if p), "message": e["msg"]}
        for e in exc.errors()
    ]
    first = errors[0]
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return InvalidInput(f"{first['path']}: {first['message']}{more}", details={"errors": errors})


@dataclass(frozen=True)
class Plan:
    """A validated, decrypted backup, ready to write."""

    users: list[BackupUser]
    objects: list[tuple[KindInfo, Resource[Any]]]


class BackupService:
    def __init__(
        self,
        uow_factory: UnitOfWorkFactory,
        objects: ObjectService,
        authorizer: Authorizer,
        audit: AuditLog | None = None,
    ) -> None:
        self.uows = uow_factory
        self.objects = objects
        self.authz = authorizer
        self.audit = audit
        self.version = mcpd_version()

    # -- backup --------------------------------------------------------------------------

    async def backup(self, caller: Caller, passphrase: str) -> dict[str, Any]:
        """The backup document (JSON-ready). Raises:
        PermissionDenied: without the ``backup`` operation. InvalidInput: a short passphrase."""
        self.authz.authorize(caller, "run", "backup", None)
        _check_passphrase(passphrase)
        box = await asyncio.to_thread(PassphraseBox, passphrase, KdfParams.fresh())
        async with self.uows.read() as uow:
            users = [_user_entry(u) for u in await uow.users.all()]
        objects: list[dict[str, Any]] = []
        for info in _ordered_kinds():
            objects += await self._kind_entries(info, box)
        self._record(caller, "backup", {"users": len(users), "objects": len(objects)})
        return {
            "apiVersion": API_VERSION,
            "kind": BACKUP_KIND,
            "formatVersion": FORMAT_VERSION,
            "createdAt": _iso_now(),
            "mcpdVersion": self.version,
            "encryption": box.encryption().model_dump(mode="json"),
            "users": users,
            "objects": objects,
        }

    async def _kind_entries(self, info: KindInfo, box: PassphraseBox) -> list[dict[str, Any]]:
        masked = {o["metadata"]["name"]: o["spec"] for o in await self._every(info, reveal=False)}
        entries = []
        for obj in await self._every(info, reveal=True):
            name = obj["metadata"]["name"]
            entry: dict[str, Any] = {
                "apiVersion": API_VERSION,
                "kind": info.kind,
                "metadata": {"name": name, "labels": obj["metadata"]["labels"]},
                "spec": obj["spec"],
            }
            if name not in masked or masked[name] != obj["spec"]:
                # The revealed spec holds values the masked one hides: seal it whole.
                plain = json.dumps(obj["spec"], sort_keys=True).encode()
                entry["spec"] = masked.get(name, {})
                entry["encryptedSpec"] = box.seal(plain, _sealing_context(info.kind, name))
            entries.append(entry)
        return entries

    async def _every(self, info: KindInfo, *, reveal: bool) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            page = await self.objects.list_page(
                SYSTEM, info, limit=MAX_CHUNK, continue_token=token, reveal=reveal
            )
            items += page.items
            token = page.continue_token
            if token is None:
                return items

    # -- restore -------------------------------------------------------------------------

    async def restore(
        self,
        caller: Caller,
        passphrase: str,
        document: dict[str, Any],
        *,
        conflict: ConflictPolicy = "skip",
        dry_run: bool = False,
    ) -> RestoreResult:
        """Validate the whole document, then write it in one transaction.

        Raises:
            PermissionDenied: without the ``restore`` operation.
            InvalidInput: a malformed file or a wrong passphrase (nothing changed).
            Conflict, InUse: an object cannot be written (nothing changed).
        """
        self.authz.authorize(caller, "run", "restore", None)
        try:
            plan = await asyncio.to_thread(validate, passphrase, document)
            results = await self._restore_plan(plan, conflict, dry_run)
        except AppError as exc:
            self._record(caller, "restore", {"dryRun": dry_run}, error=exc)
            raise
        written = sum(r.outcome != "skipped" for r in results)
        self._record(caller, "restore", {"dryRun": dry_run, "written": written})
        return RestoreResult(dryRun=dry_run, conflict=conflict, results=results)

    def _record(
        self, caller: Caller, verb: str, details: dict[str, Any], error: AppError | None = None
    ) -> None:
        # One event per backup or restore; the objects a restore writes are not audited one
        # by one (the trail would copy the backup file's table of contents).
        if self.audit is not None:
            self.audit.record(event_for(caller, verb, verb, None, error=error, details=details))

    async def _restore_plan(
        self, plan: Plan, conflict: ConflictPolicy, dry_run: bool
    ) -> list[RestoreItem]:
        results: list[RestoreItem] = []
        # The users section holds credentials; a user is reported once, by its User object.
        # Users with no User object in the file (backups from before User was a kind) are
        # reported from the section and get their object after the rest, as at startup.
        with_objects = {b.metadata.name for info, b in plan.objects if info.kind == USER_KIND}
        async with self.uows.write() as uow:
            try:
                orphans: list[str] = []
                credentials: dict[str, RestoreOutcome] = {}
                for user in plan.users:
                    item = await _restore_user(uow, user, conflict)
                    credentials[user.name] = item.outcome
                    if user.name not in with_objects:
                        results.append(item)
                        orphans.append(user.name)
                for info, bodies in _batches(plan.objects):
                    outcomes = await self.objects.write_batch_in(
                        uow, info, bodies, overwrite=conflict == "overwrite"
                    )
                    for body, o in zip(bodies, outcomes, strict=True):
                        outcome: RestoreOutcome = o or "skipped"
                        if info.kind == USER_KIND:  # a restored password hash is a change too
                            outcome = _stronger(outcome, credentials.get(body.metadata.name))
                        results.append(
                            RestoreItem(kind=info.kind, name=body.metadata.name, outcome=outcome)
                        )
                await self._adopt(uow, orphans)
                await self.objects.finish_batch(uow)
            except IntegrityError as exc:
                raise Conflict(
                    "restore collided with a concurrent change; nothing was restored, try again"
                ) from exc
            except AppError as exc:
                raise type(exc)(
                    f"{exc.message} (nothing was restored)", details=exc.details
                ) from exc
            if not dry_run:
                await uow.commit()
                self.objects.committed(info.kind for info, _ in plan.objects)
        return results

    async def _adopt(self, uow: UnitOfWork, names: list[str]) -> None:
        """Give the ``users`` rows ``names`` their User objects (those that have none)."""
        rows = [row for name in names if (row := await uow.users.get_by_name(name)) is not None]
        if rows:
            await self.objects.write_batch_in(
                uow, by_kind(USER_KIND), [user_object(row) for row in rows], overwrite=False
            )


_STRENGTH: tuple[RestoreOutcome, ...] = ("skipped", "unchanged", "configured", "created")


def _stronger(a: RestoreOutcome, b: RestoreOutcome | None) -> RestoreOutcome:
    return a if b is None or _STRENGTH.index(a) >= _STRENGTH.index(b) else b


def _batches(
    objects: list[tuple[KindInfo, Resource[Any]]],
) -> list[tuple[KindInfo, list[Resource[Any]]]]:
    """Runs of objects of the same kind, in plan order (the plan is sorted by apply order)."""
    out: list[tuple[KindInfo, list[Resource[Any]]]] = []
    for info, body in objects:
        if out and out[-1][0].kind == info.kind:
            out[-1][1].append(body)
        else:
            out.append((info, [body]))
    return out


def _user_entry(user: UserRow) -> dict[str, Any]:
    return BackupUser(
        name=user.name,
        displayName=user.display_name,
        admin=user.is_admin,
        disabled=user.disabled,
        passwordHash=user.password_hash,
    ).model_dump(mode="json")


async def _restore_user(uow: UnitOfWork, user: BackupUser, conflict: ConflictPolicy) -> RestoreItem:
    existing = await uow.users.get_by_name(user.name)
    outcome: RestoreOutcome
    if existing is None:
        await uow.users.add(
            UserRow(
                name=user.name,
                display_name=user.displayName,
                is_admin=user.admin,
                disabled=user.disabled,
                password_hash=user.passwordHash,
                created_at=utcnow(),
            )
        )
        outcome = "created"
    elif conflict == "skip":
        outcome = "skipped"
    elif _user_entry(existing) == user.model_dump(mode="json"):
        outcome = "unchanged"
    else:
        existing.display_name = user.displayName
        existing.is_admin = user.admin
        existing.disabled = user.disabled
        existing.password_hash = user.passwordHash
        await uow.session.flush()
        outcome = "configured"
    return RestoreItem(kind=USER_KIND, name=user.name, outcome=outcome)


# -- validation (pure; runs in a worker thread: key derivation and parsing are CPU-bound) ----


def validate(passphrase: str, raw: dict[str, Any]) -> Plan:
    """Check a backup document whole and decrypt it, touching nothing.

    Raises:
        InvalidInput: naming the first problem's place in the file, or a wrong passphrase.
    """
    _check_header(raw)
    try:
        doc = BackupDocument.model_validate(raw)
    except ValidationError as exc:
        raise _from_validation("", exc) from exc
    box = PassphraseBox(passphrase, KdfParams.of(doc.encryption))
    box.check(doc.encryption)
    users = _checked_users(doc.users)
    seen: set[tuple[str, str]] = set()
    objects: list[tuple[int, KindInfo, Resource[Any]]] = []
    for index, item in enumerate(doc.objects):
        info, body = _decoded_object(box, f"objects[{index}]", item)
        key = (info.kind, body.metadata.name)
        if key in seen:
            raise invalid(
                f"objects[{index}]", f"{info.singular}/{key[1]} appears twice in the file"
            )
        seen.add(key)
        objects.append((index, info, body))
    objects.sort(key=lambda o: (o[1].apply_order, o[0]))
    return Plan(users, [(info, body) for _, info, body in objects])


def _check_header(raw: dict[str, Any]) -> None:
    if raw.get("kind") != BACKUP_KIND:
        raise invalid("kind", f"expected {BACKUP_KIND!r}, got {raw.get('kind')!r}: not a backup")
    fmt = raw.get("formatVersion")
    if not isinstance(fmt, int) or isinstance(fmt, bool):
        raise invalid("formatVersion", f"missing or not a number ({fmt!r})")
    if fmt != FORMAT_VERSION:
        raise invalid(
            "formatVersion",
            f"{fmt} is not supported: this mcpd reads format {FORMAT_VERSION} "
            "(restore with an mcpd at least as new as the one that made the backup)",
        )


def _checked_users(users: list[BackupUser]) -> list[BackupUser]:
    names: set[str] = set()
    for index, user in enumerate(users):
        path = f"users[{index}]"
        check_name(user.name, f"{path}.name")
        if user.name in names:
            raise invalid(f"{path}.name", f"user {user.name!r} appears twice in the file")
        names.add(user.name)
        if user.passwordHash is not None and not user.passwordHash.startswith("$argon2"):
            raise invalid(f"{path}.passwordHash", "not an argon2 hash")
    return users


def _decoded_object(
    box: PassphraseBox, path: str, item: dict[str, Any]
) -> tuple[KindInfo, Resource[Any]]:
    try:
        info = by_kind(str(item.get("kind")))
    except InvalidInput as exc:
        raise invalid(f"{path}.kind", exc.message.removeprefix("kind: ")) from exc
    item = dict(item)
    meta = item.get("metadata")
    name = str(meta.get("name")) if isinstance(meta, dict) else ""
    sealed = item.pop("encryptedSpec", None)
    if sealed is not None:
        if not isinstance(sealed, str):
            raise invalid(f"{path}.encryptedSpec", "must be a string")
        context = _sealing_context(info.kind, name)
        try:
            item["spec"] = json.loads(box.open(sealed, context, f"{path}.encryptedSpec"))
        except ValueError as exc:
            raise invalid(f"{path}.encryptedSpec", "does not hold JSON") from exc
    model: Any = Resource[info.spec_model]  # type: ignore[name-defined]
    try:
        body: Resource[Any] = model.model_validate(item)
    except ValidationError as exc:
        raise _from_validation(path, exc) from exc
    try:
        info.check_name(body.metadata.name)
        check_labels(body.metadata.labels)
    except InvalidInput as exc:
        raise _within(path, exc) from exc
    # Restore writes what the file says, whatever version the live object is at.
    body.metadata.resourceVersion = None
    return info, body
