"""`get threads [--agent A]`, `describe thread ID` and `delete thread ID...`: chat threads are
not objects of the kinds registry (the chat endpoint writes them), so `get`, `describe` and
`delete` hand them to this module, as they do tokens."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import click

if TYPE_CHECKING:
    from mcpctl.client.http import McpdClient

NAMES = ("thread", "threads")
COLUMNS = ("ID", "AGENT", "OWNER", "TITLE", "MESSAGES", "LAST TURN", "AGE")
TITLE_WIDTH = 40


def is_threads(word: str) -> bool:
    return word.partition("/")[0].lower() in NAMES


def thread_ids(args: tuple[str, ...]) -> list[str]:
    """The ids of `thread ID...` or `thread/ID...`."""
    if all("/" in a for a in args):
        return [a.partition("/")[2] for a in args if a.partition("/")[2]]
    if any("/" in a for a in args):
        raise click.UsageError("use either `thread ID...` or `thread/ID...`, not both")
    return list(args[1:])


def _path(thread_id: str) -> str:
    return f"/api/v1/threads/{quote(thread_id, safe='')}"


def _short(text: str, width: int, wide: bool) -> str:
    text = " ".join(text.split())
    if wide or len(text) <= width:
        return text or "<none>"
    return text[: width - 3] + "..."


def _table(items: list[dict[str, Any]], *, wide: bool, headers: bool) -> str:
    from mcpctl.cli.printers import age, aligned

    rows = [list(COLUMNS)] if headers else []
    rows += [
        [
            t["id"],
            t["agent"],
            t["owner"],
            _short(t["title"], TITLE_WIDTH, wide),
            str(t["messageCount"]),
            age(t["lastTurnAt"]),
            age(t["createdAt"]),
        ]
        for t in items
    ]
    return aligned(rows)


def render_threads(
    items: list[dict[str, Any]], fmt: str, *, single: bool, headers: bool = True
) -> str:
    """Threads as a table (wide: whole titles), json, yaml or names."""
    from mcpctl.cli.printers import render_records

    return render_records(
        items,
        fmt,
        single=single,
        name=lambda t: f"thread/{t['id']}",
        table=lambda rows, wide: _table(rows, wide=wide, headers=headers),
    )


def get_threads(
    client: McpdClient, args: tuple[str, ...], fmt: str, headers: bool, agent: str | None
) -> None:
    """`get threads [ID...] [--agent A]`: yours, or everyone's with view on threads."""
    ids = thread_ids(args)
    if ids:
        if agent:
            raise click.UsageError("--agent filters the list; give it without thread ids")
        items = [client.request("GET", _path(i)) for i in ids]
    else:
        params = {"agent": agent} if agent else None
        items = client.request("GET", "/api/v1/threads", params=params)["items"]
    if not items:
        click.echo("No threads found.", err=True)
        return
    click.echo(render_threads(items, fmt, single=len(ids) == 1, headers=headers), nl=False)


def _when(stamp: str) -> str:
    """``2026-11-27T12:00:01.123456Z`` → ``2026-11-27 12:00:01``."""
    return stamp.replace("T", " ")[:19]


def _indent(text: str) -> str:
    return "".join(f"    {line}\n" for line in text.splitlines() or [""])


def conversation(messages: list[dict[str, Any]]) -> str:
    """The messages as a readable conversation: role and time, then the text; tool calls as
    ``name(arguments)``; tool results attributed to the call they answer."""
    calls: dict[str, str] = {}
    out = []
    for m in messages:
        head = f"[{m['turnIndex']}] {m['role']} · {_when(m['createdAt'])}"
        if m["role"] == "tool":
            call_id = m.get("toolCallId") or "?"
            head += f" · result of {calls.get(call_id, 'call')} ({call_id})"
        body = m.get("content") or ""
        for call in m.get("toolCalls") or []:
            calls[call["id"]] = call["name"]
            line = f"calls {call['name']}({call['arguments']}) ({call['id']})"
            body = f"{body}\n{line}" if body else line
        out.append(head + "\n" + _indent(body))
    return "".join(out)


def describe_thread(client: McpdClient, thread_id: str) -> str:
    """`describe thread ID` as text: the thread, then its conversation."""
    from mcpctl.cli.printers import age

    thread = client.request("GET", _path(thread_id))
    fields = [
        ("Thread", thread["id"]),
        ("Agent", thread["agent"]),
        ("Owner", thread["owner"]),
        ("Title", thread["title"] or "<none>"),
        ("Created", f"{thread['createdAt']} ({age(thread['createdAt'])} ago)"),
        ("Last turn", f"{thread['lastTurnAt']} ({age(thread['lastTurnAt'])} ago)"),
        ("Messages", str(len(thread["messages"]))),
    ]
    width = max(len(k) for k, _ in fields) + 2
    head = "".join(f"{(k + ':').ljust(width)}{v}\n" for k, v in fields)
    messages = thread["messages"]
    return head + ("\n" + conversation(messages) if messages else "")


def delete_threads(client: McpdClient, args: tuple[str, ...], dry_run: bool) -> None:
    ids = thread_ids(args)
    if dry_run:
        raise click.UsageError("`delete thread` has no --dry-run")
    if not ids:
        raise click.UsageError("say which thread: delete thread ID (see `mcpctl get threads`)")
    for thread_id in ids:
        client.request("DELETE", _path(thread_id))
        click.echo(f"thread/{thread_id} deleted")
