"""Shell completion of object names (from mcpd) and context names (from the config file).

Completion runs on every <TAB>, so it asks mcpd once, briefly: one list request for the names of
one kind (the first ``LIMIT``; no follow-up chunks) with a ``TIMEOUT`` and no retries. Anything
going wrong (mcpd down or slow, a bad token, a broken config, an unknown kind) completes nothing,
silently: no traceback, no error text on the terminal.

Where to ask comes from the global ``--context/--server/--token`` flags on the line being
completed (click has parsed them into the root context's params, without running the group's
callback), else ``MCPCTL_SERVER`` / ``MCPCTL_TOKEN``, else the current context; like any command.

Imports stay lazy: every command module imports this one, and ``mcpctl --help`` must stay fast.
"""

from __future__ import annotations

from collections.abc import Iterable

import click

from mcpctl.cli.session import Options, complete_kind

TIMEOUT = 2.0  # seconds, to connect and for each read
LIMIT = 500  # names per kind offered; the most mcpd returns in one list request


def _flags(ctx: click.Context) -> tuple[str | None, str | None, str | None]:
    """The global --context, --server and --token of the command line being completed."""
    opts = ctx.find_object(Options)  # set when a command runs, not while completing
    if opts is not None:
        return opts.context, opts.server, opts.token
    params = ctx.find_root().params
    return params.get("context_name"), params.get("server"), params.get("token")


def fetch_names(ctx: click.Context, kind: str) -> list[str]:
    """Names of the objects of ``kind`` (any of its names), or [] if mcpd cannot tell us;
    for ``thread`` the ids of the threads the user may see."""
    try:
        from mcpctl.cli.threads import is_threads
        from mcpctl.client.config import resolve_target
        from mcpctl.client.http import HttpTransport, McpdClient
        from mcpctl.resources.kinds import lookup

        threads = is_threads(kind)
        plural = "threads" if threads else lookup(kind).plural
        target = resolve_target(*_flags(ctx))
        transport = HttpTransport(target.server, timeout=TIMEOUT)
        with McpdClient(target.server, target.token, transport=transport, max_attempts=1) as client:
            page = client.request("GET", f"/api/v1/{plural}", params={"limit": LIMIT})
        if threads:
            return [str(item["id"]) for item in page["items"][:LIMIT]]
        return [str(item["metadata"]["name"]) for item in page["items"]]
    except Exception:  # completion must never fail or print
        return []


def _matching(names: Iterable[str], incomplete: str, exclude: Iterable[str] = ()) -> list[str]:
    skip = set(exclude)
    return [n for n in names if n.startswith(incomplete) and n not in skip]


def complete_kind_or_ref(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
    """A kind; once a slash is typed, KIND/NAME (``server/<TAB>``)."""
    if "/" in incomplete:
        kind, _, prefix = incomplete.partition("/")
        return [f"{kind}/{name}" for name in _matching(fetch_names(ctx, kind), prefix)]
    return complete_kind(ctx, param, incomplete)


def complete_targets(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
    """`get`/`delete` ARGS: a kind, then names of that kind (KIND NAME...), or KIND/NAME..."""
    given: tuple[str, ...] = tuple(ctx.params.get(param.name or "") or ())
    if not given or "/" in incomplete or any("/" in arg for arg in given):
        return complete_kind_or_ref(ctx, param, incomplete)
    kind = given[0]
    if "," in kind or kind == "all":
        return []  # names go with one kind
    return _matching(fetch_names(ctx, kind), incomplete, exclude=given[1:])


def complete_name_of_kind(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
    """NAME after a KIND argument (`describe`, `edit`)."""
    kind = ctx.params.get("kind")
    if not isinstance(kind, str) or "/" in kind:
        return []
    return _matching(fetch_names(ctx, kind), incomplete)


def complete_agent_names(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
    return _matching(fetch_names(ctx, "agents"), incomplete)


def complete_llm_names(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
    return _matching(fetch_names(ctx, "llms"), incomplete)


def complete_project_names(
    ctx: click.Context, param: click.Parameter, incomplete: str
) -> list[str]:
    return _matching(fetch_names(ctx, "projects"), incomplete)


def complete_template_names(
    ctx: click.Context, param: click.Parameter, incomplete: str
) -> list[str]:
    return _matching(fetch_names(ctx, "templates"), incomplete)


def complete_server_names(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
    """Server names, leaving out those already given to this (repeatable) option."""
    given = ctx.params.get(param.name or "") or ()
    return _matching(fetch_names(ctx, "servers"), incomplete, exclude=given)


def complete_context_names(
    ctx: click.Context, param: click.Parameter, incomplete: str
) -> list[str]:
    """Context names from the config file (no request to mcpd)."""
    try:
        from mcpctl.client.config import load_config

        names = [c.name for c in load_config().contexts]
    except Exception:  # completion must never fail or print
        return []
    return _matching(names, incomplete)
