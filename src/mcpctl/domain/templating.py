"""How a Server that names a Template gets its effective spec, and what the template demands."""

from __future__ import annotations

from mcpctl.resources.servers import EnvVar, ServerFields, ServerSpec
from mcpctl.resources.templates import TemplateSpec

_SCALARS = ("transport", "runtime", "command", "image", "url")


def effective_server(server: ServerSpec, template: TemplateSpec | None) -> ServerFields:
    """Server fields win; unset ones come from the template; env merges by name."""
    if template is None:
        return ServerFields.model_validate(
            server.model_dump(include=set(ServerFields.model_fields))
        )
    merged = {name: getattr(server, name) or getattr(template, name) for name in _SCALARS}
    env: dict[str, EnvVar] = {
        p.name: EnvVar(name=p.name, value=p.default)
        for p in template.parameters
        if p.default is not None
    }
    env.update({e.name: e for e in template.env})
    env.update({e.name: e for e in server.env})
    return ServerFields(
        description=server.description or template.description,
        args=server.args or template.args,
        clientFeatures=server.clientFeatures or template.clientFeatures,
        env=list(env.values()),
        **merged,
    )


def parameter_problems(server: ServerSpec, template: TemplateSpec) -> list[tuple[str, str]]:
    """(field path, message) for every template parameter the server fails to satisfy."""
    given = {e.name: (i, e) for i, e in enumerate(server.env)}
    problems = []
    for param in template.parameters:
        hit = given.get(param.name)
        if hit is None:
            if param.required and param.default is None:
                problems.append(
                    (
                        "spec.env",
                        f"template parameter {param.name!r} is required"
                        + (f" ({param.description})" if param.description else ""),
                    )
                )
            continue
        index, entry = hit
        if param.secret and entry.valueFrom is None:
            problems.append(
                (
                    f"spec.env[{index}]",
                    f"template parameter {param.name!r} is secret: "
                    "give it as valueFrom.secretRef (CLI: --env NAME=secret:SECRET/KEY)",
                )
            )
    return problems
