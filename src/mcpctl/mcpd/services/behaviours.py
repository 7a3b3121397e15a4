"""What differs between kinds when they are stored and shown; the rest is generic."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from mcpctl.domain.pools import PoolMember, key_clash, pool_key
from mcpctl.domain.templating import effective_server, parameter_problems
from mcpctl.errors import InUse, InvalidInput
from mcpctl.mcpd.db.tables import ObjectRow
from mcpctl.mcpd.db.uow import UnitOfWork
from mcpctl.resources.llms import LIFECYCLE_FIELDS, LlmSpec
from mcpctl.resources.servers import ServerSpec, runnable_problem
from mcpctl.resources.templates import TemplateSpec


def spec_json(spec: BaseModel) -> dict[str, Any]:
    """The stored and shown form of a spec: defaults left out, so YAML stays short."""
    return spec.model_dump(mode="json", exclude_defaults=True)


def invalid(path: str, message: str) -> InvalidInput:
    return InvalidInput(
        f"{path}: {message}", details={"errors": [{"path": path, "message": message}]}
    )


@dataclass
class Prepared:
    """A spec ready to store; ``fingerprint`` decides whether anything changed."""

    spec: dict[str, Any]
    status: dict[str, Any] = field(default_factory=dict)
    sealed: bytes | None = None
    fingerprint: Any = None


class Behaviour:
    """Default: the spec is stored as given, shown as stored."""

    async def prepare(
        self, uow: UnitOfWork, name: str, spec: BaseModel, existing: ObjectRow | None
    ) -> Prepared:
        stored = spec_json(spec)
        return Prepared(spec=stored, fingerprint=stored)

    def fingerprint(self, row: ObjectRow) -> Any:
        return row.spec

    def shown_spec(self, row: ObjectRow, reveal: bool) -> dict[str, Any]:
        return row.spec

    async def shown_status(
        self, uow: UnitOfWork, rows: Sequence[ObjectRow]
    ) -> dict[int, dict[str, Any]]:
        return {row.id: row.status for row in rows}

    async def narrowing_check(self, uow: UnitOfWork, existing: ObjectRow, new: Prepared) -> None:
        """Refuse an update that would break objects pointing at this one."""

    async def deleting(self, uow: UnitOfWork, row: ObjectRow) -> None:
        """Called in a delete's transaction just before ``row`` goes (also when a cascade takes
        it): refuse by raising, or remove what belongs to the object outside ``objects``."""

    async def after_change(self, uow: UnitOfWork) -> None:
        """Refuse a write or delete (flushed, not committed) that breaks a rule spanning
        objects of several kinds (RBAC: someone keeps full access)."""

    def committed(self) -> None:
        """Called after a write or delete of this kind was committed (to drop caches)."""


class Followed(Behaviour):
    """A kind that something outside the object service follows: the instance supervisor
    follows Servers and Templates (a running instance rolls when its spec changes). It is told
    through the callback given here at assembly, not through a global."""

    def __init__(self, on_committed: Callable[[], None] | None = None) -> None:
        self.on_committed = on_committed

    def committed(self) -> None:
        if self.on_committed is not None:
            self.on_committed()


class TemplateBehaviour(Followed):
    async def prepare(
        self, uow: UnitOfWork, name: str, spec: BaseModel, existing: ObjectRow | None
    ) -> Prepared:
        assert isinstance(spec, TemplateSpec)
        problem = runnable_problem(spec)
        if problem:
            path, _, message = problem.partition(": ")
            raise invalid(path, message)
        return await super().prepare(uow, name, spec, existing)

    async def narrowing_check(self, uow: UnitOfWork, existing: ObjectRow, new: Prepared) -> None:
        """A template change may not break a server built from it (a new required parameter,
        a dropped command, a parameter turned secret)."""
        template = TemplateSpec.model_validate(new.spec)
        broken: list[tuple[str, str]] = []
        for ref in await uow.objects.refs_to(existing.id):
            row = await uow.objects.get("Server", ref.name) if ref.kind == "Server" else None
            if row is None:
                continue
            server = ServerSpec.model_validate(row.spec)
            problems = [m for _, m in parameter_problems(server, template)]
            problems += [p for p in [runnable_problem(effective_server(server, template))] if p]
            if problems:
                broken.append((ref.name, problems[0]))
        if broken:
            named = ", ".join(f"server/{name} ({problem})" for name, problem in broken)
            raise InUse(
                f"template/{existing.name}: the change would break {named}; "
                "change those servers first",
                details={"usedBy": [{"kind": "Server", "name": name} for name, _ in broken]},
            )


class ServerBehaviour(Followed):
    async def prepare(
        self, uow: UnitOfWork, name: str, spec: BaseModel, existing: ObjectRow | None
    ) -> Prepared:
        assert isinstance(spec, ServerSpec)
        template = await self._template(uow, spec.fromTemplate)
        if template is not None:
            for path, message in parameter_problems(spec, template):
                raise invalid(path, message)
        problem = runnable_problem(effective_server(spec, template))
        if problem:
            path, _, message = problem.partition(": ")
            suffix = f" (not set here nor in template {spec.fromTemplate!r})" if template else ""
            raise invalid(path, message + suffix)
        return await super().prepare(uow, name, spec, existing)

    @staticmethod
    async def _template(uow: UnitOfWork, name: str | None) -> TemplateSpec | None:
        if not name:
            return None
        row = await uow.objects.get("Template", name)
        if row is None:
            raise invalid("spec.fromTemplate", f"template {name!r} not found")
        return TemplateSpec.model_validate(row.spec)

    async def shown_status(
        self, uow: UnitOfWork, rows: Sequence[ObjectRow]
    ) -> dict[int, dict[str, Any]]:
        """Servers show their effective spec, computed now so template changes show at once."""
        names = [r.spec["fromTemplate"] for r in rows if r.spec.get("fromTemplate")]
        templates = {
            name: TemplateSpec.model_validate(row.spec)
            for name, row in (await uow.objects.ids_by_name("Template", names)).items()
        }
        out = {}
        for row in rows:
            spec = ServerSpec.model_validate(row.spec)
            effective = effective_server(spec, templates.get(spec.fromTemplate or ""))
            shown = effective.model_dump(mode="json", exclude_none=True)
            shown.setdefault("transport", "stdio")
            shown.setdefault("runtime", "process")
            shown["env"] = [e["name"] for e in shown["env"]]
            out[row.id] = {**row.status, "effective": shown}
        return out


class ProjectBehaviour(Behaviour):
    """A project's status warns when its names can collide: with ``toolPrefix: never`` and
    more than one server, a tool or prompt name offered by two servers is served once (the
    first server's) and the other is left out. Which names do collide only mcplocal knows (it
    lists the servers' tools): it shows them at ``/projects/NAME/status`` and logs them."""

    async def prepare(
        self, uow: UnitOfWork, name: str, spec: BaseModel, existing: ObjectRow | None
    ) -> Prepared:
        stored = spec_json(spec)
        servers = stored.get("servers") or []
        status: dict[str, Any] = {}
        if stored.get("toolPrefix") == "never" and len(servers) > 1:
            status["warnings"] = [
                f"toolPrefix: never with {len(servers)} servers: a tool or prompt name offered "
                "by two of them is served once (the first server's) and the other is left out; "
                f"mcplocal lists the collisions at /projects/{name}/status"
            ]
        return Prepared(spec=stored, status=status, fingerprint=stored)


class LlmBehaviour(Followed):
    """Llms keep their lifecycle fields (set by mcpd, in status) across applies, show their
    effective pool key as ``status.poolKey``, and may not make a pool key ambiguous. The pool
    dispatcher follows them (its cached view of the Llms is dropped on every commit)."""

    async def prepare(
        self, uow: UnitOfWork, name: str, spec: BaseModel, existing: ObjectRow | None
    ) -> Prepared:
        assert isinstance(spec, LlmSpec)
        member = PoolMember(name, spec.poolName, spec.status)
        others = [
            PoolMember(row.name, row.spec.get("poolName"))
            for row in await uow.objects.select_page("Llm", [], None, None)
        ]
        clash = key_clash(member, others)
        if clash:
            raise invalid("spec.poolName", clash)
        stored = spec_json(spec)
        kept = existing.status if existing is not None else {}
        status = {k: kept[k] for k in LIFECYCLE_FIELDS if k in kept}
        return Prepared(spec=stored, status=status, fingerprint=stored)

    async def shown_status(
        self, uow: UnitOfWork, rows: Sequence[ObjectRow]
    ) -> dict[int, dict[str, Any]]:
        return {
            row.id: {**row.status, "poolKey": pool_key(row.name, row.spec.get("poolName"))}
            for row in rows
        }
