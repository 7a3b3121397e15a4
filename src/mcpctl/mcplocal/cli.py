"""``mcplocal``: the entry point (the only place that reads its settings and the CLI config)."""

from __future__ import annotations

import logging
import sys
from typing import Any, NoReturn

import click
from pydantic import ValidationError

from mcpctl.errors import AppError
from mcpctl.mcplocal.settings import LOOPBACK_HOSTS, Settings


def _logging(level: str) -> None:
    """Logs on stderr (with ``stdio``, stdout carries the protocol)."""
    logging.basicConfig(
        stream=sys.stderr,
        level=level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if level != "debug":
        # One line per HTTP request (mcpd is polled twice a second) is noise below debug.
        for name in ("httpx", "httpx2"):
            logging.getLogger(name).setLevel(logging.WARNING)


def _fail(message: str, code: int) -> NoReturn:
    click.echo(f"mcplocal: {message}", err=True)
    sys.exit(code)


def _settings(context: str | None, **overrides: Any) -> Settings:
    """Settings from flags, MCPLOCAL_* env, and mcpd's address and token from the CLI config
    (MCPCTL_CONFIG, MCPCTL_SERVER, MCPCTL_TOKEN, the current or named context)."""
    from mcpctl.client.config import resolve_target

    try:
        target = resolve_target(context)
    except AppError as exc:
        _fail(str(exc), exc.exit_code)
    given = {k: v for k, v in overrides.items() if v is not None}
    try:
        settings = Settings.model_validate(
            {"mcpd_url": target.server, "token": target.token, **given}
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        _fail(f"{'.'.join(map(str, first['loc']))}: {first['msg']}", 3)
    if settings.host not in LOOPBACK_HOSTS:
        _fail(
            f"--host: {settings.host!r} is not a loopback address; mcplocal has no "
            f"authentication of its own and serves only {', '.join(LOOPBACK_HOSTS)}",
            3,
        )
    return settings


@click.group()
def main() -> None:
    """mcplocal: one MCP endpoint per mcpctl project, on this machine."""


@main.command()
@click.option("--host", help="Loopback address to bind (env MCPLOCAL_HOST, default 127.0.0.1).")
@click.option("--port", type=int, help="Port (env MCPLOCAL_PORT, default 7461).")
@click.option("--context", help="CLI context that says which mcpd to use (default: current).")
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]))
def serve(host: str | None, port: int | None, context: str | None, log_level: str | None) -> None:
    """Serve http://127.0.0.1:7461/projects/PROJECT/mcp for every project in mcpd."""
    import uvicorn

    from mcpctl.mcplocal.app import create_app

    settings = _settings(context, host=host, port=port, log_level=log_level)
    _logging(settings.log_level)
    click.echo(
        f"mcplocal: serving http://{settings.host}:{settings.port}/projects/PROJECT/mcp "
        f"(mcpd at {settings.mcpd_url})",
        err=True,
    )
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        access_log=settings.log_level == "debug",
        # Loopback only, never behind a proxy: no X-Forwarded-* to believe (and no layer
        # in front of every request to look for them).
        proxy_headers=False,
        # Event streams stay open; give them a moment on Ctrl-C, then stop.
        timeout_graceful_shutdown=2,
    )


@main.command()
@click.option("--project", required=True, help="The project to serve.")
@click.option("--context", help="CLI context that says which mcpd to use (default: current).")
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]))
def stdio(project: str, context: str | None, log_level: str | None) -> None:
    """Serve one project over stdin/stdout, for MCP clients that only speak stdio."""
    import anyio

    from mcpctl.mcplocal.stdio import serve_stdio

    settings = _settings(context, log_level=log_level)
    _logging(settings.log_level)
    try:
        anyio.run(serve_stdio, settings, project)
    except AppError as exc:
        _fail(str(exc), exc.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)
