"""``mcpd``: the daemon's entry point (the only place that reads its settings)."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from pathlib import Path

import click
import uvicorn
from pydantic import ValidationError
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from mcpctl.errors import AppError
from mcpctl.mcpd.settings import Settings


def _preflight(settings: Settings) -> None:
    """Open and migrate the store before serving, so start-up problems are one clear line."""
    from mcpctl.mcpd.store import open_store

    async def check() -> None:
        engine, _ = await open_store(settings)
        await engine.dispose()

    try:
        asyncio.run(check())
    except AppError as exc:
        click.echo(f"mcpd: {exc}", err=True)
        sys.exit(exc.exit_code)
    except (SQLAlchemyError, OSError) as exc:
        url = make_url(settings.effective_database_url()).render_as_string(hide_password=True)
        reason = (str(exc).strip().splitlines() or [exc.__class__.__name__])[0]
        click.echo(f"mcpd: cannot open the database {url}: {reason}", err=True)
        sys.exit(7)


@click.group()
def main() -> None:
    """mcpd: the mcpctl control plane."""


@main.command()
@click.option("--host", help="Address to bind (env MCPD_HOST, default 127.0.0.1).")
@click.option("--port", type=int, help="Port (env MCPD_PORT, default 7460).")
@click.option("--database-url", help="postgresql://... or sqlite:///... (env MCPD_DATABASE_URL).")
@click.option(
    "--data-dir",
    type=click.Path(path_type=Path),
    help="Data directory (env MCPD_DATA_DIR, default ~/.local/share/mcpctl).",
)
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]))
def serve(
    host: str | None,
    port: int | None,
    database_url: str | None,
    data_dir: Path | None,
    log_level: str | None,
) -> None:
    """Run mcpd: migrate the database, seed templates, serve the API."""
    from mcpctl.mcpd.app import create_app

    overrides = {
        k: v
        for k, v in {
            "host": host,
            "port": port,
            "database_url": database_url,
            "data_dir": data_dir,
            "log_level": log_level,
        }.items()
        if v is not None
    }
    try:
        settings = Settings.model_validate(overrides)
    except ValidationError as exc:
        first = exc.errors()[0]
        click.echo(f"mcpd: {'.'.join(map(str, first['loc']))}: {first['msg']}", err=True)
        sys.exit(3)
    # Everything mcpd writes (database, key, token) is for its own user only.
    os.umask(0o077)
    _preflight(settings)
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        access_log=settings.log_level == "debug",
        # Open streams (`mcpctl logs -f`) never end by themselves: cut them after a bound, so
        # shutdown goes on to stop every instance.
        timeout_graceful_shutdown=5,
    )
