"""What to run for a server: its effective spec (template applied) with every secret resolved.

``resolve_server`` is the one place secret values are decrypted for running a server. The
result lives in mcpd's memory only; its values go into the child's environment (or an
external server's headers) and nowhere else. ``secret_values`` lets the logs scrub them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from mcpctl.domain.templating import effective_server
from mcpctl.errors import InvalidInput, NotFound
from mcpctl.mcpd.db.uow import UnitOfWork, UnitOfWorkFactory
from mcpctl.mcpd.runtime.base import expand_args
from mcpctl.mcpd.services.secrets import SecretBehaviour
from mcpctl.resources.servers import EnvSource, ServerSpec
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
    secret_values: frozenset[str] = frozenset()


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
        args=expand_args(effective.args, env),
        image=effective.image,
        url=effective.url,
        env=env,
        headers=headers,
        keep_alive=spec.keepAlive,
        secret_values=frozenset(box.used),
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


async def keep_alive_servers(uows: UnitOfWorkFactory) -> Sequence[str]:
    """Names of the servers whose spec says ``keepAlive: true``."""
    async with uows.read() as uow:
        rows = await uow.objects.select_page("Server", [], None, None)
    return [r.name for r in rows if r.spec.get("keepAlive")]
