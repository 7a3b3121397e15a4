"""What deleting an object takes with it, by the on-delete action of each reference to it.

Everything that cascades from the object is collected first (and what cascades from that);
then a ``restrict`` reference from an object that stays refuses the whole delete (409
``in_use`` naming each referrer), ``set-null`` references from objects that stay are cleared
from their referrer's spec by a compare-and-set on its resourceVersion, and the collected
objects go. References among the objects that go do not count. All of it happens in the
caller's transaction; the database's RESTRICT foreign key on every reference target is the last
word, so a reference written concurrently makes the delete fail (the caller retries) instead of
leaving a reference to nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from mcpctl.errors import InUse, VersionConflict
from mcpctl.mcpd.db.repository import StoredRef
from mcpctl.mcpd.db.tables import ObjectRow, utcnow
from mcpctl.mcpd.db.uow import UnitOfWork
from mcpctl.mcpd.services.behaviours import Behaviour


@dataclass(frozen=True)
class Effect:
    """What a delete did besides deleting its object: a cascaded ``delete``, or an ``edit``
    clearing ``field`` (a set-null reference)."""

    verb: Literal["delete", "edit"]
    kind: str
    name: str
    field: str | None = None


async def delete_tree(
    uow: UnitOfWork, row: ObjectRow, behaviour: Callable[[str], Behaviour]
) -> list[Effect]:
    """Delete ``row`` with everything that cascades from it, clearing set-null references from
    the objects that stay (``behaviour(kind).deleting`` is called for each object that goes,
    dependants first); what was done besides deleting ``row``.

    Raises:
        InUse: an object that stays refers to one that goes, with ``restrict``.
        VersionConflict: a referrer to clear changed meanwhile.
    """
    doomed: dict[int, ObjectRow] = {row.id: row}
    incoming: dict[int, list[StoredRef]] = {}
    queue = [row]
    while queue:
        current = queue.pop(0)
        incoming[current.id] = refs = await uow.objects.refs_to(current.id)
        for ref in refs:
            if ref.on_delete == "cascade" and ref.object_id not in doomed:
                dependant = await uow.objects.get_by_id(ref.object_id)
                if dependant is not None:
                    doomed[dependant.id] = dependant
                    queue.append(dependant)
    staying = [
        (doomed[target], ref)
        for target, refs in incoming.items()
        for ref in refs
        if ref.object_id not in doomed
    ]
    blocking = [(target, ref) for target, ref in staying if ref.on_delete == "restrict"]
    if blocking:
        raise _in_use(row, blocking)
    effects = [Effect("delete", r.kind, r.name) for r in list(doomed.values())[1:]]
    for _, ref in staying:
        if ref.on_delete == "set-null":
            await _clear(uow, ref)
            effects.append(Effect("edit", ref.kind, ref.name, ref.field))
    for doomed_row in reversed(doomed.values()):
        await behaviour(doomed_row.kind).deleting(uow, doomed_row)
    # Their references among themselves go first, so that no RESTRICT key stops the rows.
    await uow.objects.delete_refs_from(list(doomed))
    await uow.objects.delete_many(list(doomed))
    return effects


async def _clear(uow: UnitOfWork, ref: StoredRef) -> None:
    """Clear a set-null reference: drop the field from the referrer's spec (compare-and-set on
    its resourceVersion) and the reference row.

    Raises:
        VersionConflict: the referrer changed or went meanwhile.
    """
    row = await uow.objects.get_by_id(ref.object_id)
    if row is None:
        raise VersionConflict(f"{ref.kind.lower()}/{ref.name} was deleted meanwhile")
    field = ref.field.removeprefix("spec.")
    won = await uow.objects.update_if_version(
        row.id,
        row.resource_version,
        spec={k: v for k, v in row.spec.items() if k != field},
        resource_version=row.resource_version + 1,
        updated_at=utcnow(),
    )
    if not won:
        raise VersionConflict(f"{ref.kind.lower()}/{ref.name} changed concurrently")
    await uow.objects.delete_ref(row.id, ref.field)


def _in_use(row: ObjectRow, blocking: list[tuple[ObjectRow, StoredRef]]) -> InUse:
    """The refusal of a delete: each referrer, and which object going with it it refers to."""
    parts = []
    used_by = []
    for target, ref in blocking:
        entry = {"kind": ref.kind, "name": ref.name, "field": ref.field}
        where = ref.field
        if target.id != row.id:
            via = f"{target.kind.lower()}/{target.name}"
            where += f", naming {via}, which would be deleted with it"
            entry["via"] = via
        parts.append(f"{ref.kind.lower()}/{ref.name} ({where})")
        used_by.append(entry)
    return InUse(
        f"{row.kind.lower()}/{row.name} is in use by {', '.join(parts)}; "
        "remove those references first",
        details={"usedBy": used_by},
    )
