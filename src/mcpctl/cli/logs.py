"""`logs server NAME [-f] [--tail N] [--timestamps]`: a server's stderr and lifecycle events."""

from __future__ import annotations

from typing import Any

import click

from mcpctl.cli.session import client_for


def format_line(line: dict[str, Any], timestamps: bool) -> str:
    """stderr lines as the server wrote them; mcpd's lifecycle events marked ``[mcpd]``."""
    text = line["text"] if line["stream"] == "stderr" else f"[mcpd] {line['text']}"
    return f"{line['time']} {text}" if timestamps else text


@click.group()
def logs() -> None:
    """Show logs: `logs server NAME`."""


@logs.command("server")
@click.argument("name")
@click.option("-f", "--follow", is_flag=True, help="Keep printing new lines (Ctrl-C stops).")
@click.option("--tail", type=click.IntRange(min=0), help="Only the last N lines.")
@click.option("--timestamps", is_flag=True, help="Start each line with its time (UTC).")
@click.pass_context
def logs_server(
    ctx: click.Context, name: str, follow: bool, tail: int | None, timestamps: bool
) -> None:
    """A server's stderr and its lifecycle events (started, exited, restarting, stopped),
    kept by mcpd across restarts of the instance. Needs the `logs` operation."""
    client = client_for(ctx)
    for line in client.iter_server_logs(name, tail=tail, follow=follow):
        click.echo(format_line(line, timestamps))
