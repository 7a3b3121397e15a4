"""`create server|secret|project`: imperative shortcuts that build an object and POST it."""

from __future__ import annotations

from typing import Any

import click

from mcpctl.cli.completion_names import complete_server_names, complete_template_names
from mcpctl.cli.session import client_for


def parse_env(entries: tuple[str, ...]) -> list[dict[str, Any]]:
    """``K=V`` → a literal; ``K=secret:NAME/KEY`` → a secretRef."""
    from mcpctl.errors import InvalidInput

    env: list[dict[str, Any]] = []
    for entry in entries:
        key, sep, value = entry.partition("=")
        if not sep or not key:
            raise InvalidInput(f"--env {entry!r}: use NAME=VALUE or NAME=secret:SECRET/KEY")
        if value.startswith("secret:"):
            secret, slash, secret_key = value[len("secret:") :].partition("/")
            if not slash or not secret or not secret_key:
                raise InvalidInput(f"--env {entry!r}: use NAME=secret:SECRET/KEY")
            env.append(
                {"name": key, "valueFrom": {"secretRef": {"name": secret, "key": secret_key}}}
            )
        else:
            env.append({"name": key, "value": value})
    return env


def parse_literals(entries: tuple[str, ...]) -> dict[str, str]:
    from mcpctl.errors import InvalidInput

    data: dict[str, str] = {}
    for entry in entries:
        key, sep, value = entry.partition("=")
        if not sep or not key:
            raise InvalidInput(f"--from-literal {entry!r}: use KEY=VALUE")
        data[key] = value
    return data


def parse_labels(entries: tuple[str, ...]) -> dict[str, str]:
    from mcpctl.errors import InvalidInput

    labels: dict[str, str] = {}
    for entry in entries:
        key, sep, value = entry.partition("=")
        if not sep:
            raise InvalidInput(f"--label {entry!r}: use KEY=VALUE")
        labels[key] = value
    return labels


def _submit(
    ctx: click.Context, plural: str, obj: dict[str, Any], dry_run: bool, fmt: str | None
) -> None:
    created = client_for(ctx).create_object(plural, obj, dry_run=dry_run)
    if fmt:
        from mcpctl.cli.printers import render

        click.echo(render([created], fmt, single=True), nl=False)
    else:
        click.echo(
            f"{obj['kind'].lower()}/{obj['metadata']['name']} created"
            + (" (dry run)" if dry_run else "")
        )


COMMON = [
    click.option("-l", "--label", "labels", multiple=True, help="KEY=VALUE label (repeatable)."),
    click.option("--dry-run", is_flag=True, help="Validate on the server; create nothing."),
    click.option(
        "-o",
        "--output",
        "fmt",
        type=click.Choice(["yaml", "json", "name"]),
        help="Print the object instead of a message.",
    ),
]


def common(fn: Any) -> Any:
    for option in reversed(COMMON):
        fn = option(fn)
    return fn


def _obj(kind: str, name: str, labels: tuple[str, ...], spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "mcpctl/v1",
        "kind": kind,
        "metadata": {"name": name, "labels": parse_labels(labels)},
        "spec": spec,
    }


@click.group()
def create() -> None:
    """Create an object from flags (use `apply -f` for YAML)."""


@create.command("server")
@click.argument("name")
@click.option(
    "--from-template",
    "template",
    shell_complete=complete_template_names,
    help="Template to build the server from.",
)
@click.option(
    "--env",
    "env",
    multiple=True,
    metavar="K=V|K=secret:S/KEY",
    help="Environment entry (repeatable).",
)
@click.option("--command", "command", help="Command to run (runtime process).")
@click.option("--arg", "args", multiple=True, help="Argument (repeatable).")
@click.option("--image", help="Container image (runtime docker).")
@click.option("--url", help="URL of an external HTTP server.")
@click.option("--runtime", type=click.Choice(["process", "docker", "external"]))
@click.option("--transport", type=click.Choice(["stdio", "http"]))
@click.option("--description", default="")
@common
@click.pass_context
def create_server(
    ctx: click.Context,
    name: str,
    template: str | None,
    env: tuple[str, ...],
    command: str | None,
    args: tuple[str, ...],
    image: str | None,
    url: str | None,
    runtime: str | None,
    transport: str | None,
    description: str,
    labels: tuple[str, ...],
    dry_run: bool,
    fmt: str | None,
) -> None:
    """Create a server, usually from a template: --from-template T --env K=V."""
    spec: dict[str, Any] = {
        "fromTemplate": template,
        "env": parse_env(env),
        "command": command,
        "args": list(args),
        "image": image,
        "url": url,
        "runtime": runtime,
        "transport": transport,
        "description": description,
    }
    spec = {k: v for k, v in spec.items() if v not in (None, [], "")}
    _submit(ctx, "servers", _obj("Server", name, labels, spec), dry_run, fmt)


@create.command("secret")
@click.argument("name")
@click.option(
    "--from-literal",
    "literals",
    multiple=True,
    metavar="KEY=VALUE",
    help="A key and its value (repeatable).",
)
@common
@click.pass_context
def create_secret(
    ctx: click.Context,
    name: str,
    literals: tuple[str, ...],
    labels: tuple[str, ...],
    dry_run: bool,
    fmt: str | None,
) -> None:
    """Create a secret: --from-literal KEY=VALUE ..."""
    _submit(
        ctx,
        "secrets",
        _obj("Secret", name, labels, {"data": parse_literals(literals)}),
        dry_run,
        fmt,
    )


@create.command("project")
@click.argument("name")
@click.option(
    "--server",
    "servers",
    multiple=True,
    shell_complete=complete_server_names,
    help="Server to include (repeatable).",
)
@click.option("--description", default="")
@click.option("--gated", is_flag=True, help="Reveal tools only once the client states its task.")
@common
@click.pass_context
def create_project(
    ctx: click.Context,
    name: str,
    servers: tuple[str, ...],
    description: str,
    gated: bool,
    labels: tuple[str, ...],
    dry_run: bool,
    fmt: str | None,
) -> None:
    """Create a project: --server S ..."""
    spec: dict[str, Any] = {"servers": list(servers)}
    if description:
        spec["description"] = description
    if gated:
        spec["gated"] = True
    _submit(ctx, "projects", _obj("Project", name, labels, spec), dry_run, fmt)
