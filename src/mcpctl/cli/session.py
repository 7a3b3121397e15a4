"""What every command needs: the global options and a client built from them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from mcpctl.client.http import McpdClient


@dataclass
class Options:
    context: str | None = None
    server: str | None = None
    token: str | None = None
    debug: bool = False
    # --as / MCPCTL_AS: the user mcpd acts as (sent as the Impersonate-User header).
    impersonate: str | None = None


def client_for(ctx: click.Context) -> McpdClient:
    from mcpctl.client.config import resolve_target
    from mcpctl.client.http import McpdClient

    opts = ctx.find_object(Options) or Options()
    target = resolve_target(opts.context, opts.server, opts.token)
    client = McpdClient(target.server, target.token, impersonate=opts.impersonate)
    ctx.call_on_close(client.close)
    return client


def kind_names() -> list[str]:
    from mcpctl.resources.kinds import KINDS

    return [k.plural for k in KINDS]


def complete_kind(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
    return [n for n in kind_names() if n.startswith(incomplete)]
