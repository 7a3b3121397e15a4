"""``mcpctl``: the kubectl-style CLI. Errors end here: one message line, the documented exit code."""

from __future__ import annotations

import sys
import traceback
from typing import Any

import click

from mcpctl.cli import (
    apply,
    backup,
    chat,
    completion,
    create,
    edit,
    get,
    instances,
    login,
    logs,
    mcpconfig,
    tokens,
    up,
    users,
)
from mcpctl.cli.completion_names import complete_context_names, fetch_names
from mcpctl.cli.session import Options
from mcpctl.errors import AppError


class McpctlGroup(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except AppError as exc:
            _print_traceback_if_debug(ctx)
            click.echo(f"error: {exc}", err=True)
            ctx.exit(exc.exit_code)
        except Exception as exc:
            # The one catch-all: a bug, not a user error. One line unless --debug.
            _print_traceback_if_debug(ctx)
            click.echo(
                f"error: unexpected {exc.__class__.__name__}: {exc} "
                "(run with --debug for the traceback)",
                err=True,
            )
            ctx.exit(1)


def _print_traceback_if_debug(ctx: click.Context) -> None:
    opts = ctx.find_object(Options)
    if opts is not None and opts.debug:
        traceback.print_exc()


def _user_name(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """--as USER: a name that fits in an HTTP header; an empty MCPCTL_AS means no --as."""
    if not value:
        return None
    if not (value.isascii() and value.isprintable()) or value != value.strip():
        raise click.BadParameter(f"{value!r} is not a user name")
    return value


def _complete_user_names(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
    return [n for n in fetch_names(ctx, "users") if n.startswith(incomplete)]


@click.group(cls=McpctlGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--context",
    "context_name",
    shell_complete=complete_context_names,
    help="Use this context of the config file.",
)
@click.option("--server", help="mcpd URL (overrides the context; env MCPCTL_SERVER).")
@click.option("--token", help="Bearer token (overrides the context; env MCPCTL_TOKEN).")
@click.option(
    "--as",
    "impersonate",
    envvar="MCPCTL_AS",
    metavar="USER",
    callback=_user_name,
    shell_complete=_complete_user_names,
    help="Act as USER (needs the impersonate operation; env MCPCTL_AS).",
)
@click.option("--debug", is_flag=True, help="Show tracebacks.")
@click.pass_context
def cli(
    ctx: click.Context,
    context_name: str | None,
    server: str | None,
    token: str | None,
    impersonate: str | None,
    debug: bool,
) -> None:
    """mcpctl: kubectl for MCP servers.

    \b
    Exit codes: 0 ok, 1 unexpected (diff: differences), 2 usage, 3 invalid input,
    4 not found, 5 conflict, 6 unauthenticated or denied, 7 unavailable.
    """
    ctx.obj = Options(
        context=context_name, server=server, token=token, debug=debug, impersonate=impersonate
    )


@cli.command()
def version() -> None:
    """Print the mcpctl version."""
    from importlib.metadata import version as dist_version

    click.echo(f"mcpctl {dist_version('mcpctl')}")


for command in (
    get.get,
    get.describe,
    apply.apply,
    apply.diff,
    apply.delete,
    edit.edit,
    create.create,
    login.login,
    login.config,
    login.auth,
    tokens.logout,
    completion.completion,
    up.up,
    mcpconfig.mcp_config,
    backup.backup,
    backup.restore,
    users.disable,
    users.enable,
    instances.restart,
    logs.logs,
    chat.chat,
):
    cli.add_command(command)


def main() -> None:
    try:
        cli(prog_name="mcpctl")
    except KeyboardInterrupt:
        sys.exit(130)
