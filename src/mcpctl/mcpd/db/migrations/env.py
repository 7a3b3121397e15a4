"""Alembic environment: always driven by mcpd (see mcpctl.mcpd.db.migrate), never by alembic.ini."""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from mcpctl.mcpd.db.tables import Base


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=True,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through mcpd: `mcpd serve` upgrades the database at start")
_run(connection)
