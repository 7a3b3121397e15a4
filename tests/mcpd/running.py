"""Start mcpd in process with chosen settings, for tests that restart it or change its settings."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import sqlalchemy as sa
from asgi_lifespan import LifespanManager

from mcpctl.mcpd.app import create_app
from mcpctl.mcpd.db.engine import create_engine
from mcpctl.mcpd.settings import Settings

ADMIN_TOKEN = "admin.token"


def admin_token(settings: Settings) -> str:
    return (settings.data_dir / ADMIN_TOKEN).read_text().strip()


@asynccontextmanager
async def running(settings: Settings, token: str | None = None) -> AsyncIterator[httpx.AsyncClient]:
    """mcpd started (migrated, seeded) on ``settings``; a client as the admin unless told."""
    app = create_app(settings)
    async with LifespanManager(app) as manager:
        headers = {"Authorization": f"Bearer {token or admin_token(settings)}"}
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://mcpd.test", headers=headers
        ) as client:
            yield client


async def raw_rows(settings: Settings, sql: str, **params: Any) -> list[tuple[Any, ...]]:
    """Rows straight from the database, past every service."""
    engine = create_engine(settings.effective_database_url(), schema=settings.database_schema)
    try:
        async with engine.connect() as conn:
            return [tuple(row) for row in await conn.execute(sa.text(sql), params)]
    finally:
        await engine.dispose()
