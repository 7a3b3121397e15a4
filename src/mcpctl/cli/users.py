"""`disable user NAME` / `enable user NAME`: flip ``spec.disabled`` of a User.

The object is read, changed and put back with its resourceVersion, so a concurrent change to
the same user makes this fail (exit 5) instead of being overwritten.
"""

from __future__ import annotations

from typing import Any

import click

from mcpctl.cli.completion_names import fetch_names
from mcpctl.cli.session import client_for


def _complete_users(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
    return [n for n in fetch_names(ctx, "users") if n.startswith(incomplete)]


def _kind(ctx: click.Context, param: click.Parameter, value: str) -> str:
    from mcpctl.errors import InvalidInput
    from mcpctl.resources.kinds import lookup

    try:
        kind = lookup(value).kind
    except InvalidInput as exc:
        raise click.BadParameter(exc.message) from exc
    if kind != "User":
        raise click.BadParameter(f"only users can be disabled or enabled, not {value!r}")
    return kind


def set_disabled(ctx: click.Context, name: str, disabled: bool) -> None:
    client = client_for(ctx)
    current = client.get_object("users", name)
    spec: dict[str, Any] = dict(current["spec"])
    if disabled:
        spec["disabled"] = True
    else:
        spec.pop("disabled", None)
    meta = current["metadata"]
    outcome, _ = client.apply_object(
        "users",
        {
            "apiVersion": current["apiVersion"],
            "kind": current["kind"],
            "metadata": {
                "name": name,
                "labels": meta.get("labels", {}),
                "resourceVersion": meta["resourceVersion"],
            },
            "spec": spec,
        },
    )
    done = "disabled" if disabled else "enabled"
    click.echo(f"user/{name} {done if outcome != 'unchanged' else f'was already {done}'}")


@click.command()
@click.argument("kind", metavar="user", callback=_kind)
@click.argument("name", shell_complete=_complete_users)
@click.pass_context
def disable(ctx: click.Context, kind: str, name: str) -> None:
    """Disable a user: they can no longer log in, and their tokens stop working at once."""
    set_disabled(ctx, name, True)


@click.command()
@click.argument("kind", metavar="user", callback=_kind)
@click.argument("name", shell_complete=_complete_users)
@click.pass_context
def enable(ctx: click.Context, kind: str, name: str) -> None:
    """Enable a disabled user again (their unexpired tokens work again)."""
    set_disabled(ctx, name, False)
