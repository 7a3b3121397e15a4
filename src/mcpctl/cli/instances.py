"""`get instances`, `describe instance NAME` and `restart server NAME`.

Instances are read-only and live outside the kinds registry (they are not stored objects), so
`get` and `describe` hand them to this module.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from mcpctl.cli.session import client_for

if TYPE_CHECKING:
    from mcpctl.client.http import McpdClient

NAMES = ("instances", "instance", "inst")
COLUMNS = ("SERVER", "RUNTIME", "STATE", "PID/CONTAINER", "RESTARTS", "AGE", "LAST ERROR")
LAST_ERROR_WIDTH = 60


def is_instances(word: str) -> bool:
    return word.lower() in NAMES


def _process(status: dict[str, Any]) -> str:
    if status.get("pid"):
        return str(status["pid"])
    if status.get("containerId"):
        return str(status["containerId"])[:12]
    return "-"


def _short(text: str | None, wide: bool) -> str:
    if not text:
        return "-"
    text = " ".join(text.split())
    if wide or len(text) <= LAST_ERROR_WIDTH:
        return text
    return text[: LAST_ERROR_WIDTH - 3] + "..."


def _table(items: list[dict[str, Any]], *, wide: bool, headers: bool) -> str:
    from mcpctl.cli.printers import age, aligned

    rows = [list(COLUMNS)] if headers else []
    for item in items:
        status = item["status"]
        running = status.get("startedAt")
        rows.append(
            [
                item["metadata"]["name"],
                item["spec"]["runtime"],
                status["state"],
                _process(status),
                str(status.get("restarts", 0)),
                age(running) if running else "-",
                _short(status.get("lastError"), wide),
            ]
        )
    return aligned(rows)


def render_instances(
    items: list[dict[str, Any]], fmt: str, *, single: bool, headers: bool = True
) -> str:
    """Instances as a table (wide: whole last errors), json, yaml or names."""
    from mcpctl.cli.printers import render_records

    return render_records(
        items,
        fmt,
        single=single,
        name=lambda i: f"instance/{i['metadata']['name']}",
        table=lambda rows, wide: _table(rows, wide=wide, headers=headers),
    )


def get_instances(client: McpdClient, names: tuple[str, ...], fmt: str, headers: bool) -> None:
    """`get instances [NAME...]`."""
    items = [client.get_instance(n) for n in names] if names else client.list_instances()
    if not items:
        click.echo("No instances running.", err=True)
        return
    click.echo(render_instances(items, fmt, single=len(names) == 1, headers=headers), nl=False)


def describe_instance(client: McpdClient, name: str) -> str:
    """`describe instance NAME` as text."""
    item = client.get_instance(name)
    spec, status = item["spec"], item["status"]
    info = status.get("serverInfo") or {}
    server_info = (
        f"{info.get('name', '?')} {info.get('version', '')}".strip()
        + f" (protocol {status.get('protocolVersion')})"
        if info
        else "-"
    )
    fields = [
        ("Name", item["metadata"]["name"]),
        ("Server", spec["server"]),
        ("Runtime", spec["runtime"]),
        ("Transport", spec["transport"]),
        ("Keep alive", str(spec.get("keepAlive", False)).lower()),
        ("State", status["state"]),
        ("PID", status.get("pid") or "-"),
        ("Container", status.get("containerId") or "-"),
        ("Started", status.get("startedAt") or "-"),
        ("Restarts", status.get("restarts", 0)),
        ("In flight", status.get("inFlight", 0)),
        ("Server info", server_info),
        ("Last exit code", "-" if status.get("lastExitCode") is None else status["lastExitCode"]),
        ("Last error", status.get("lastError") or "-"),
    ]
    width = max(len(k) for k, _ in fields) + 2
    return "".join(f"{(k + ':').ljust(width)}{v}\n" for k, v in fields)


@click.group()
def restart() -> None:
    """Restart something: `restart server NAME`."""


@restart.command("server")
@click.argument("name")
@click.pass_context
def restart_server(ctx: click.Context, name: str) -> None:
    """Stop the server's instance and start a new one from its current spec (needs `run` on
    the server). Exits 7 with the reason if the new instance does not start."""
    item = client_for(ctx).restart_server(name)
    click.echo(f"server/{name} restarted ({_identity(item['status'])})")


def _identity(status: dict[str, Any]) -> str:
    if status.get("pid"):
        return f"pid {status['pid']}"
    if status.get("containerId"):
        return f"container {str(status['containerId'])[:12]}"
    return str(status["state"])
