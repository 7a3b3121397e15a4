"""Schema migrations, run by mcpd at start (and by tests) on SQLite and PostgreSQL alike."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from mcpctl.mcpd.db.tables import Base

_MIGRATIONS = Path(__file__).parent / "migrations"
# Any constant works; it only has to be the same for every replica sharing one database.
_ADVISORY_LOCK_ID = 746_000_001


def _config(connection: Connection) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    cfg.attributes["connection"] = connection
    return cfg


def _upgrade(connection: Connection) -> None:
    command.upgrade(_config(connection), "head")


async def upgrade_to_head(engine: AsyncEngine) -> None:
    """Bring the database to the newest schema; replicas starting together take turns."""
    async with engine.connect() as conn:
        postgres = conn.dialect.name == "postgresql"
        if postgres:
            await conn.execute(text("SELECT pg_advisory_lock(:id)"), {"id": _ADVISORY_LOCK_ID})
            await conn.commit()
        try:
            await conn.run_sync(_upgrade)
            await conn.commit()
        finally:
            if postgres:
                await conn.execute(
                    text("SELECT pg_advisory_unlock(:id)"), {"id": _ADVISORY_LOCK_ID}
                )
                await conn.commit()


def _diff(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, Base.metadata))


async def schema_drift(engine: AsyncEngine) -> list[Any]:
    """What autogenerate would change: empty when models and migrations agree."""
    async with engine.connect() as conn:
        return await conn.run_sync(_diff)
