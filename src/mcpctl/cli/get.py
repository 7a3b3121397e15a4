"""`get` and `describe`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from mcpctl.cli.audit import is_audit
from mcpctl.cli.completion_names import (
    complete_agent_names,
    complete_kind_or_ref,
    complete_name_of_kind,
    complete_targets,
)
from mcpctl.cli.instances import is_instances
from mcpctl.cli.session import client_for
from mcpctl.cli.threads import is_threads
from mcpctl.cli.tokens import is_tokens

if TYPE_CHECKING:
    from mcpctl.client.http import McpdClient
    from mcpctl.resources.kinds import KindInfo


def parse_targets(args: tuple[str, ...]) -> list[tuple[KindInfo, str | None]]:
    """KIND [NAME...] or TYPE/NAME [TYPE/NAME...] into (kind, name or None)."""
    from mcpctl.errors import InvalidInput
    from mcpctl.resources.kinds import lookup

    if not args:
        raise InvalidInput("say what to get: KIND [NAME...] or KIND/NAME")
    if all("/" in a for a in args):
        out: list[tuple[KindInfo, str | None]] = []
        for arg in args:
            kind, _, name = arg.partition("/")
            out.append((lookup(kind), name))
        return out
    if any("/" in a for a in args):
        raise InvalidInput("use either KIND NAME... or KIND/NAME..., not both")
    if args[0] == "all":
        from mcpctl.resources.kinds import KINDS

        infos = [k for k in KINDS if k.in_all]
    else:
        infos = [lookup(word) for word in args[0].split(",") if word]
    if len(infos) > 1 and len(args) > 1:
        raise InvalidInput("names go with one kind: KIND NAME... (or KIND/NAME...)")
    return [(infos[0], name) for name in args[1:]] or [(info, None) for info in infos]


@click.command()
@click.argument("args", nargs=-1, required=True, shell_complete=complete_targets)
@click.option(
    "-o",
    "--output",
    "fmt",
    default="table",
    type=click.Choice(["table", "wide", "yaml", "json", "name"]),
    help="Output format.",
)
@click.option("-l", "--selector", help="Label selector, e.g. team=infra,tier!=dev.")
@click.option("--no-headers", is_flag=True, help="Table without the header line.")
@click.option("--show-values", is_flag=True, help="Reveal secret values (needs permission).")
@click.option(
    "--chunk-size",
    default=500,
    show_default=True,
    type=click.IntRange(1, 500),
    help="Fetch lists in chunks of this size.",
)
@click.option("--since", help="get audit: events since a time (RFC 3339) or for 90s, 15m, 1h, 7d.")
@click.option("--user", help="get audit: only this user's events.")
@click.option("--kind", "audit_kind", help="get audit: only events on this kind.")
@click.option("--all", "all_users", is_flag=True, help="get tokens: every user's tokens.")
@click.option(
    "--agent",
    shell_complete=complete_agent_names,
    help="Only this agent's threads, prompts or personalities (names: short personality names).",
)
@click.pass_context
def get(
    ctx: click.Context,
    args: tuple[str, ...],
    fmt: str,
    selector: str | None,
    no_headers: bool,
    show_values: bool,
    chunk_size: int,
    since: str | None,
    user: str | None,
    audit_kind: str | None,
    all_users: bool,
    agent: str | None,
) -> None:
    """Show objects: `get KIND[,KIND...]|all`, `get KIND NAME...`, `get KIND/NAME...`.

    `get audit [--since 1h] [--user U] [--kind K]` shows the audit trail, newest first;
    `get tokens [--all]` your tokens (--all: every user's); `get threads [--agent A]` chat
    threads (yours, or everyone's with view on threads).
    """
    from mcpctl.cli.printers import render

    client = client_for(ctx)
    if is_audit(args):
        _get_audit(client, args, fmt, not no_headers, since, user, audit_kind, chunk_size)
        return
    if args and is_instances(args[0].partition("/")[0]):
        _get_instances(client, args, fmt, not no_headers)
        return
    if is_tokens(args):
        from mcpctl.cli.tokens import get_tokens

        get_tokens(client, args, fmt, not no_headers, all_users)
        return
    if args and is_threads(args[0]):
        from mcpctl.cli.threads import get_threads

        get_threads(client, args, fmt, not no_headers, agent)
        return
    if since or user or audit_kind:
        raise click.UsageError("--since, --user and --kind go with `get audit`")
    if all_users:
        raise click.UsageError("--all goes with `get tokens`")
    from mcpctl.cli.agents import check_agent_filter, of_agent, qualify

    targets = parse_targets(args)
    check_agent_filter([info for info, _ in targets], agent)
    objects: list[dict[str, Any]] = []
    for info, name in targets:
        if name is None:
            listed = client.iter_objects(
                info.plural, selector=selector, chunk_size=chunk_size, show_values=show_values
            )
            objects += of_agent(list(listed), agent)
        else:
            full = qualify(info, name, agent)
            objects.append(client.get_object(info.plural, full, show_values=show_values))
    single = len(targets) == 1 and targets[0][1] is not None
    if not objects:
        click.echo("No resources found.", err=True)
        return
    click.echo(render(objects, fmt, single=single, headers=not no_headers), nl=False)


def _get_instances(client: McpdClient, args: tuple[str, ...], fmt: str, headers: bool) -> None:
    from mcpctl.cli.instances import get_instances

    names = tuple(a.partition("/")[2] for a in args) if "/" in args[0] else args[1:]
    get_instances(client, names, fmt, headers)


def _get_audit(
    client: McpdClient,
    args: tuple[str, ...],
    fmt: str,
    headers: bool,
    since: str | None,
    user: str | None,
    kind: str | None,
    chunk_size: int,
) -> None:
    from mcpctl.cli.audit import fetch_audit, render_audit

    if len(args) > 1:
        raise click.UsageError("`get audit` takes no names; filter with --since, --user, --kind")
    if fmt not in ("table", "json", "yaml"):
        raise click.UsageError("`get audit` prints -o table, json or yaml")
    events = fetch_audit(client, since=since, user=user, kind=kind, chunk_size=chunk_size)
    if not events and fmt == "table":
        click.echo("No audit events found.", err=True)
        return
    click.echo(render_audit(events, fmt, headers=headers), nl=False)


@click.command()
@click.argument("kind", shell_complete=complete_kind_or_ref)
@click.argument("name", required=False, shell_complete=complete_name_of_kind)
@click.option("--show-values", is_flag=True, help="Reveal secret values (needs permission).")
@click.option(
    "--agent",
    shell_complete=complete_agent_names,
    help="The agent of a personality given by its short name.",
)
@click.pass_context
def describe(
    ctx: click.Context, kind: str, name: str | None, show_values: bool, agent: str | None
) -> None:
    """Show one object in detail, with what uses it and what it uses: KIND NAME or KIND/NAME.

    For a user or group also every permission and where it comes from (direct or via which
    group, and which RbacDefinition); for an agent its personalities and the system block it
    sends; `describe thread ID` shows a chat thread's conversation.
    """
    from mcpctl.cli.describe import describe_text
    from mcpctl.resources.kinds import lookup

    if "/" in kind:
        if name:
            raise click.UsageError("give either KIND NAME or KIND/NAME, not both")
        kind, _, name = kind.partition("/")
    if not name:
        raise click.UsageError("say which object: describe KIND NAME (or KIND/NAME)")
    if is_instances(kind):
        from mcpctl.cli.instances import describe_instance

        click.echo(describe_instance(client_for(ctx), name), nl=False)
        return
    if is_threads(kind):
        from mcpctl.cli.threads import describe_thread

        click.echo(describe_thread(client_for(ctx), name), nl=False)
        return
    from mcpctl.cli.agents import check_agent_filter, qualify

    info = lookup(kind)
    check_agent_filter([info], agent)
    name = qualify(info, name, agent)
    client = client_for(ctx)
    obj = client.get_object(info.plural, name, show_values=show_values)
    usage = client.usage(info.plural, name)
    # Users and groups also show every permission they hold and where it comes from.
    permissions = (
        client.permissions(info.plural, name) if info.plural in ("users", "groups") else None
    )
    pool = _pool_of(client, name) if info.plural == "llms" else None
    text = describe_text(info, obj, usage, permissions, pool)
    if info.kind == "Agent":
        from mcpctl.cli.agents import agent_sections

        text += agent_sections(client, obj)
    click.echo(text, nl=False)


def _pool_of(client: McpdClient, name: str) -> dict[str, Any] | None:
    """The Llm's pool block, or None from an mcpd that does not serve it yet."""
    from urllib.parse import quote

    from mcpctl.errors import NotFound

    try:
        pool: dict[str, Any] = client.request("GET", f"/api/v1/llms/{quote(name, safe='')}/members")
    except NotFound:
        return None
    return pool
