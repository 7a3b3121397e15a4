"""Secrets: values sealed at rest, masked on the way out, and never narrowed under a user."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel

from mcpctl.errors import InUse
from mcpctl.mcpd.db.tables import ObjectRow
from mcpctl.mcpd.db.uow import UnitOfWork
from mcpctl.mcpd.services.behaviours import Behaviour, Prepared, invalid
from mcpctl.mcpd.services.sealing import SecretBox
from mcpctl.resources.secrets import SecretSpec


def _context(name: str) -> bytes:
    return f"mcpctl/v1 Secret {name}".encode()


class SecretBehaviour(Behaviour):
    def __init__(self, box: SecretBox) -> None:
        self.box = box

    def plaintext(self, row: ObjectRow) -> dict[str, str]:
        if row.sealed is None:
            return {}
        data: dict[str, str] = json.loads(self.box.open(row.sealed, _context(row.name)))
        return data

    async def prepare(
        self, uow: UnitOfWork, name: str, spec: BaseModel, existing: ObjectRow | None
    ) -> Prepared:
        assert isinstance(spec, SecretSpec)
        stored = self.plaintext(existing) if existing else {}
        data: dict[str, str] = {}
        for key, value in spec.data.items():
            if value is not None:
                data[key] = value
            elif key in stored:
                data[key] = stored[key]
            else:
                raise invalid(f"spec.data.{key}", "null keeps the stored value, but none is stored")
        sealed = self.box.seal(json.dumps(data, sort_keys=True).encode(), _context(name))
        return Prepared(spec={}, status={"keys": sorted(data)}, sealed=sealed, fingerprint=data)

    def fingerprint(self, row: ObjectRow) -> Any:
        return self.plaintext(row)

    def shown_spec(self, row: ObjectRow, reveal: bool) -> dict[str, Any]:
        if reveal:
            return {"data": dict(sorted(self.plaintext(row).items()))}
        return {"data": dict.fromkeys(row.status.get("keys", []))}

    async def narrowing_check(self, uow: UnitOfWork, existing: ObjectRow, new: Prepared) -> None:
        removed = set(existing.status.get("keys", [])) - set(new.status["keys"])
        if not removed:
            return
        users = [r for r in await uow.objects.refs_to(existing.id) if r.key in removed]
        if users:
            named = ", ".join(f"{r.kind.lower()}/{r.name} ({r.field}, key {r.key})" for r in users)
            raise InUse(
                f"secret/{existing.name}: cannot remove keys still in use by {named}",
                details={
                    "usedBy": [{"kind": r.kind, "name": r.name, "field": r.field} for r in users]
                },
            )
