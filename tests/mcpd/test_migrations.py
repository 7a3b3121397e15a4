"""Migrations bring an empty database to head on both engines, and agree with the models."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import sqlalchemy as sa
from alembic import command
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from mcpctl.mcpd.db.engine import create_engine
from mcpctl.mcpd.db.migrate import _config, schema_drift, upgrade_to_head
from mcpctl.mcpd.db.tables import Base
from mcpctl.mcpd.settings import Settings
from tests.conftest import Database
from tests.mcpd.manifests import must_put, server
from tests.mcpd.running import raw_rows, running

pytestmark = pytest.mark.anyio

HEAD = "0003"


@pytest.fixture
async def engine(database: Database) -> AsyncIterator[AsyncEngine]:
    created = create_engine(database.url, schema=database.schema)
    try:
        yield created
    finally:
        await created.dispose()


async def table_names(engine: AsyncEngine) -> set[str]:
    async with engine.connect() as conn:
        return set(await conn.run_sync(lambda c: sa.inspect(c).get_table_names()))


async def head_revision(engine: AsyncEngine) -> list[str]:
    async with engine.connect() as conn:
        return [
            r[0] for r in await conn.execute(sa.text("SELECT version_num FROM alembic_version"))
        ]


async def test_upgrading_an_empty_database_creates_every_table(engine: AsyncEngine) -> None:
    assert await table_names(engine) == set()

    await upgrade_to_head(engine)

    assert await table_names(engine) == {*Base.metadata.tables, "alembic_version"}
    assert await head_revision(engine) == [HEAD]


async def test_models_and_migrations_agree_after_upgrade(engine: AsyncEngine) -> None:
    await upgrade_to_head(engine)

    assert await schema_drift(engine) == []


async def test_schema_drift_notices_a_missing_table(engine: AsyncEngine) -> None:
    await upgrade_to_head(engine)
    async with engine.begin() as conn:
        await conn.execute(sa.text("DROP TABLE tokens"))

    drift = await schema_drift(engine)

    assert any(op[0] == "add_table" and op[1].name == "tokens" for op in drift)


async def test_upgrading_twice_is_a_no_op_that_keeps_the_data(
    engine: AsyncEngine, settings: Settings
) -> None:
    async with running(settings) as api:
        await must_put(api, server("time"))
    tables_before = await table_names(engine)

    await upgrade_to_head(engine)
    await upgrade_to_head(engine)

    assert await table_names(engine) == tables_before
    assert await head_revision(engine) == [HEAD]
    assert await schema_drift(engine) == []
    rows = await raw_rows(settings, "SELECT name FROM objects WHERE kind = 'Server'")
    assert [r[0] for r in rows] == ["time"]


async def test_mcpd_restarts_on_a_migrated_database(settings: Settings) -> None:
    async with running(settings) as api:
        await must_put(api, server("time"))

    async with running(settings) as api:
        response = await api.get("/api/v1/servers/time")

    assert response.status_code == 200


async def upgrade_to(engine: AsyncEngine, revision: str) -> None:
    def run(connection: Connection) -> None:
        command.upgrade(_config(connection), revision)

    async with engine.connect() as conn:
        await conn.run_sync(run)
        await conn.commit()


async def test_upgrading_from_the_previous_head_adds_chat_tables_and_keeps_objects(
    engine: AsyncEngine,
) -> None:
    await upgrade_to(engine, "0002")
    async with engine.begin() as conn:
        await conn.execute(
            sa.text(
                "INSERT INTO objects (uid, kind, name, spec, status, resource_version, "
                "created_at, updated_at) VALUES ('u-1', 'Agent', 'helper', '{\"llm\": \"gpt\"}', "
                "'{}', 1, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
            )
        )
    assert "chat_threads" not in await table_names(engine)

    await upgrade_to_head(engine)

    assert await head_revision(engine) == [HEAD]
    assert {"chat_threads", "chat_messages"} <= await table_names(engine)
    assert await schema_drift(engine) == []
    async with engine.connect() as conn:
        rows = (await conn.execute(sa.text("SELECT kind, name FROM objects"))).all()
    assert [tuple(r) for r in rows] == [("Agent", "helper")]
