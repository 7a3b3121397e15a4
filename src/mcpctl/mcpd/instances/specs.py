"""What to run for a server: its effective spec (template applied) with every secret resolved.

``resolve_server`` is the one place secret values are decrypted for running a server. The
result lives in mcpd's memory only; its values go into the child's environment (or an
external server's headers) and nowhere else. ``secret_values`` lets the logs scrub them.
``args`` stay as written: the runtime expands their ``$(NAME)`` references (runtime/base.py).

``fingerprint`` is what a running instance was started from, compared with the stored specs
(``stored_launches``) when servers or templates change: every field of the effective spec that
shapes a launch (runtime, transport, command, args, image, url, env, headers, and the
client features declared when it is initialized), secret
references as written rather than their values, so that a rotated secret alone restarts
nothing (``mcpctl restart server`` does), and neither do ``description`` or ``keepAlive``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field

from mcpctl.domain.templating import effective_server
from mcpctl.errors import InvalidInput, NotFound
from mcpctl.mcpd.db.uow import UnitOfWork, UnitOfWorkFactory
from mcpctl.mcpd.services.secrets import SecretBehaviour
from mcpctl.resources.servers import EnvSource, ServerFields, ServerSpec
from mcpctl.resources.templates import TemplateSpec


@dataclass(frozen=True)
class ResolvedServer:
    name: str
    runtime: str
    transport: str
    command: str | None = None
    args: tuple[str, ...] = ()
    image: str | None = None
    url: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    keep_alive: bool = False
    client_features: tuple[str, ...] = ()
    secret_values: frozenset[str] = frozenset()
    fingerprint: str = ""


@dataclass(frozen=True)
class Launch:
    """What the stored spec of a server says about running it, without reading secrets."""

    fingerprint: str
    keep_alive: bool


def launch_fingerprint(spec: ServerSpec, effective: ServerFields) -> str:
    """The fields of a server that shape its launch, as one comparable string (see above)."""
    launch = effective.model_dump(mode="json", exclude={"description"})
    launch["runtime"] = effective.runtime or "process"
    launch["transport"] = effective.transport or "stdio"
    launch["headers"] = [h.model_dump(mode="json") for h in spec.headers]
    return json.dumps(launch, sort_keys=True)


class _Secrets:
    """Secret data read once per resolution, by secret name."""

    def __init__(self, secrets: SecretBehaviour, data: dict[str, dict[str, str]]) -> None:
        self._secrets = secrets
        self._data = data
        self.used: set[str] = set()

    def value(self, path: str, source: EnvSource) -> str:
        ref = source.secretRef
        data = self._data.get(ref.name)
        if data is None:
            raise InvalidInput(f"{path}: secret {ref.name!r} not found")
        if ref.key not in data:
            raise InvalidInput(f"{path}: secret {ref.name!r} has no key {ref.key!r}")
        self.used.add(data[ref.key])
        return data[ref.key]


async def resolve_server(
    uows: UnitOfWorkFactory, secrets: SecretBehaviour, name: str
) -> ResolvedServer:
    """The server's effective spec with env and headers resolved.

    Raises:
        NotFound: there is no server ``name``.
        InvalidInput: a template or a secret key it needs has gone missing.
    """
    async with uows.read() as uow:
        row = await uow.objects.get("Server", name)
        if row is None:
            raise NotFound(f"server {name!r} not found")
        spec = ServerSpec.model_validate(row.spec)
        template = await _template(uow, spec.fromTemplate)
        effective = effective_server(spec, template)
        wanted = [e.valueFrom.secretRef.name for e in effective.env if e.valueFrom]
        wanted += [h.valueFrom.secretRef.name for h in spec.headers if h.valueFrom]
        rows = await uow.objects.ids_by_name("Secret", wanted)
        box = _Secrets(secrets, {n: secrets.plaintext(r) for n, r in rows.items()})
    env = {
        e.name: e.value if e.value is not None else box.value(f"spec.env[{i}]", _src(e.valueFrom))
        for i, e in enumerate(effective.env)
    }
    headers = {
        h.name: h.value
        if h.value is not None
        else box.value(f"spec.headers[{i}]", _src(h.valueFrom))
        for i, h in enumerate(spec.headers)
    }
    return ResolvedServer(
        name=name,
        runtime=effective.runtime or "process",
        transport=effective.transport or "stdio",
        command=effective.command,
        args=tuple(effective.args),
        image=effective.image,
        url=effective.url,
        env=env,
        headers=headers,
        keep_alive=spec.keepAlive,
        client_features=tuple(effective.clientFeatures),
        secret_values=frozenset(box.used),
        fingerprint=launch_fingerprint(spec, effective),
    )


def _src(source: EnvSource | None) -> EnvSource:
    assert source is not None
    return source


async def _template(uow: UnitOfWork, name: str | None) -> TemplateSpec | None:
    if not name:
        return None
    row = await uow.objects.get("Template", name)
    if row is None:
        raise InvalidInput(f"spec.fromTemplate: template {name!r} not found")
    return TemplateSpec.model_validate(row.spec)


async def stored_launches(uows: UnitOfWorkFactory) -> dict[str, Launch]:
    """Every stored server's ``Launch`` by name: two queries (servers, their templates)."""
    async with uows.read() as uow:
        rows = await uow.objects.select_page("Server", [], None, None)
        specs = {row.name: ServerSpec.model_validate(row.spec) for row in rows}
        wanted = {spec.fromTemplate for spec in specs.values() if spec.fromTemplate}
        found = await uow.objects.ids_by_name("Template", wanted)
    templates = {name: TemplateSpec.model_validate(row.spec) for name, row in found.items()}
    return {
        name: Launch(
            launch_fingerprint(
                spec, effective_server(spec, templates.get(spec.fromTemplate or ""))
            ),
            spec.keepAlive,
        )
        for name, spec in specs.items()
    }


async def keep_alive_servers(uows: UnitOfWorkFactory) -> Sequence[str]:
    """Names of the servers whose spec says ``keepAlive: true``."""
    async with uows.read() as uow:
        rows = await uow.objects.select_page("Server", [], None, None)
    return [r.name for r in rows if r.spec.get("keepAlive")]
