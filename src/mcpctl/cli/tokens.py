"""`get tokens`, `delete token ID` and `logout`: bearer tokens are not objects of the kinds
registry, so `get` and `delete` hand them to this module (as they do `audit`)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from mcpctl.client.http import McpdClient

NAMES = ("token", "tokens")
COLUMNS = (
    ("ID", "id"),
    ("USER", "user"),
    ("DESCRIPTION", "description"),
    ("CREATED", "createdAt"),
    ("EXPIRES", "expiresAt"),
    ("CURRENT", "current"),
)


def is_tokens(args: tuple[str, ...]) -> bool:
    return bool(args) and args[0].partition("/")[0].lower() in NAMES


def token_ids(args: tuple[str, ...]) -> list[str]:
    """The ids of `token ID...` or `token/ID...`."""
    if all("/" in a for a in args):
        return [a.partition("/")[2] for a in args if a.partition("/")[2]]
    if any("/" in a for a in args):
        raise click.UsageError("use either `token ID...` or `token/ID...`, not both")
    return list(args[1:])


def _cell(token: dict[str, Any], key: str) -> str:
    value = token.get(key)
    if key == "current":
        return "*" if value else ""
    if key == "expiresAt" and value is None:
        return "never"
    return str(value) if value else "<none>"


def render_tokens(tokens: list[dict[str, Any]], fmt: str, *, headers: bool = True) -> str:
    """Tokens as a table (ID USER DESCRIPTION CREATED EXPIRES CURRENT), json or yaml."""
    listed = {"apiVersion": "mcpctl/v1", "kind": "TokenList", "items": tokens}
    if fmt == "json":
        return json.dumps(listed, indent=2) + "\n"
    if fmt == "yaml":
        from mcpctl.resources.yamlcodec import dump

        return dump(listed)
    rows = [[h for h, _ in COLUMNS]] if headers else []
    rows += [[_cell(t, key) for _, key in COLUMNS] for t in tokens]
    if not rows:
        return ""
    widths = [max(len(r[i]) for r in rows) for i in range(len(COLUMNS))]
    lines = ("   ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in rows)
    return "\n".join(lines) + "\n"


def get_tokens(
    client: McpdClient, args: tuple[str, ...], fmt: str, headers: bool, all_users: bool
) -> None:
    if len(args) > 1:
        raise click.UsageError("`get tokens` takes no names; --all lists every user's")
    if fmt not in ("table", "json", "yaml"):
        raise click.UsageError("`get tokens` prints -o table, json or yaml")
    tokens = client.list_tokens(all_users=all_users)
    if not tokens and fmt == "table":
        click.echo("No tokens found.", err=True)
        return
    click.echo(render_tokens(tokens, fmt, headers=headers), nl=False)


def delete_tokens(client: McpdClient, args: tuple[str, ...]) -> None:
    ids = token_ids(args)
    if not ids:
        raise click.UsageError("say which token: delete token ID (see `mcpctl get tokens`)")
    for token_id in ids:
        client.delete_token(token_id)
        click.echo(f"token/{token_id} deleted")


@click.command()
@click.pass_context
def logout(ctx: click.Context) -> None:
    """Revoke the current context's token and remove it from the config (the context and its
    server stay). A token that never expires, such as the bootstrap admin's, is only removed
    from the config: revoke it explicitly with `delete token ID`."""
    from mcpctl.cli.session import Options
    from mcpctl.client.config import load_config, save_config
    from mcpctl.client.http import McpdClient
    from mcpctl.errors import NotFound, Unauthenticated

    opts = ctx.find_object(Options) or Options()
    config = load_config()
    name = opts.context or config.current
    if not name:
        raise NotFound("no current context: nothing to log out of")
    context = config.get(name)
    if not context.token:
        raise NotFound(f"context {name!r} holds no token: not logged in")
    revoked = False
    with McpdClient(context.server, context.token) as client:
        try:
            current = [t for t in client.list_tokens() if t.get("current")]
            if current and current[0].get("expiresAt"):
                client.delete_token(str(current[0]["id"]))
                revoked = True
        except Unauthenticated:
            pass  # already expired or revoked: forgetting it is all there is to do
    context.token = None
    save_config(config)
    what = "revoked the token and removed" if revoked else "removed the token"
    click.echo(f"logged out of {context.server}: {what} from context {name!r}")
