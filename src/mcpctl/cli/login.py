"""`login`, `config ...`, `auth whoami` and `auth change-password`."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from mcpctl.cli.completion_names import complete_context_names
from mcpctl.cli.session import Options, client_for


def _read_token_file(path: Path) -> str:
    from mcpctl.errors import InvalidInput

    try:
        token = path.read_text().strip()
    except OSError as exc:
        raise InvalidInput(f"--token-file {path}: {exc.strerror}") from exc
    if not token:
        raise InvalidInput(f"--token-file {path}: the file is empty")
    return token


@click.command()
@click.option(
    "--server",
    "server_url",
    help="mcpd URL (default: $MCPCTL_SERVER, else http://127.0.0.1:7460).",
)
@click.option(
    "--token-file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="File holding a token (e.g. <data dir>/admin.token).",
)
@click.option("--user", help="User name, to log in with a password.")
@click.option("--password-stdin", is_flag=True, help="Read the password from stdin.")
@click.option(
    "--context",
    "context_name",
    default=None,
    help="Context to write (default: the current one, else 'default').",
)
@click.pass_context
def login(
    ctx: click.Context,
    server_url: str | None,
    token_file: Path | None,
    user: str | None,
    password_stdin: bool,
    context_name: str | None,
) -> None:
    """Log in to mcpd and save the server and token as a context (file mode 0600)."""
    from mcpctl.client.config import DEFAULT_SERVER, Context, load_config, save_config
    from mcpctl.client.http import McpdClient

    if bool(token_file) == bool(user):
        raise click.UsageError("use either --token-file FILE or --user U --password-stdin")
    if user and not password_stdin:
        raise click.UsageError(
            "--user needs --password-stdin (passwords never go on the command line)"
        )
    opts = ctx.find_object(Options) or Options()
    if opts.impersonate:
        raise click.UsageError("--as does not apply to login: a person's credentials are their own")
    server = (
        server_url or opts.server or os.environ.get("MCPCTL_SERVER") or DEFAULT_SERVER
    ).rstrip("/")
    if token_file:
        token = _read_token_file(token_file)
    else:
        password = sys.stdin.readline().rstrip("\r\n")
        with McpdClient(server, None) as anonymous:
            token = anonymous.login(str(user), password)
    with McpdClient(server, token) as client:
        who = client.whoami()
    config = load_config()
    name = context_name or opts.context or config.current or "default"
    config.upsert(Context(name=name, server=server, token=token))
    config.current = name
    path = save_config(config)
    click.echo(f"logged in to {server} as {who['user']} (context {name!r} in {path})")


@click.group()
def config() -> None:
    """Show and switch contexts of the config file."""


@config.command("get-contexts")
def get_contexts() -> None:
    """List contexts; * marks the current one."""
    from mcpctl.client.config import load_config

    cfg = load_config()
    rows = [("CURRENT", "NAME", "SERVER")] + [
        ("*" if c.name == cfg.current else "", c.name, c.server) for c in cfg.contexts
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    for row in rows:
        click.echo("   ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())


@config.command("use-context")
@click.argument("name", shell_complete=complete_context_names)
def use_context(name: str) -> None:
    """Make NAME the current context."""
    from mcpctl.client.config import load_config, save_config

    cfg = load_config()
    cfg.get(name)
    cfg.current = name
    save_config(cfg)
    click.echo(f"switched to context {name!r}")


@config.command("current-context")
def current_context() -> None:
    """Print the current context's name."""
    from mcpctl.client.config import load_config
    from mcpctl.errors import NotFound

    cfg = load_config()
    if not cfg.current:
        raise NotFound("no current context: log in with `mcpctl login`")
    click.echo(cfg.current)


@click.group()
def auth() -> None:
    """Inspect your identity; change your password."""


@auth.command()
@click.pass_context
def whoami(ctx: click.Context) -> None:
    """Print the user requests act as: the token's, or with --as "USER (impersonated by YOU)"."""
    who = client_for(ctx).whoami()
    admin = " (admin)" if who.get("admin") else ""
    by = who.get("impersonatedBy")
    click.echo(f"{who['user']}{admin}{f' (impersonated by {by})' if by else ''}")


@auth.command("can-i")
@click.argument("verb", type=click.Choice(["view", "create", "edit", "delete", "run", "reveal"]))
@click.argument("kind")
@click.argument("name", required=False)
@click.pass_context
def can_i(ctx: click.Context, verb: str, kind: str, name: str | None) -> None:
    """Print yes (exit 0) or no (exit 1): may you VERB KIND (or the object NAME)?

    KIND is a kind in any spelling, tokens, threads, metrics, openapi, or with `run` an operation:
    backup, restore, audit, logs, impersonate. `reveal secrets` asks for secret values.
    """
    allowed = client_for(ctx).can_i(verb, kind, name)
    click.echo("yes" if allowed else "no")
    ctx.exit(0 if allowed else 1)


@auth.command("change-password")
@click.option(
    "--password-stdin",
    is_flag=True,
    required=True,
    help="Read two lines from stdin: the current password, then the new one.",
)
@click.pass_context
def change_password(ctx: click.Context, password_stdin: bool) -> None:
    """Change your own password (at least 8 characters); your tokens keep working."""
    current = sys.stdin.readline().rstrip("\r\n")
    new = sys.stdin.readline().rstrip("\r\n")
    if not new:
        raise click.UsageError("give two lines on stdin: the current password, then the new one")
    client_for(ctx).change_password(current, new)
    click.echo("password changed")
