"""The LISTEN connection that wakes this replica's object followers (mcpd/db/notify.py),
against the real PostgreSQL: it hears NOTIFY, and comes back after its connection is killed."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import anyio
import asyncpg
import pytest

from mcpctl.mcpd.changes import ObjectChanges
from mcpctl.mcpd.db import notify
from mcpctl.mcpd.db.notify import PgListener

pytestmark = [pytest.mark.anyio, pytest.mark.postgres]

BOUND = 10.0


@pytest.fixture
async def heard(postgres_url: str) -> AsyncIterator[tuple[PgListener, asyncpg.Connection]]:
    """A started listener on a channel of its own, and a connection to send NOTIFY with."""
    channel = notify.channel_for(f"t_{uuid.uuid4().hex[:12]}")
    listener = PgListener(postgres_url, channel, ObjectChanges(), retry_max=0.2)
    listener.start()
    sender = await asyncpg.connect(postgres_url)
    try:
        with anyio.fail_after(BOUND):
            await listener.listening.wait()
        yield listener, sender
    finally:
        await sender.close()
        await listener.aclose()


async def woken_by_notify(listener: PgListener, sender: asyncpg.Connection) -> None:
    payload = notify.payload_of({("Project", "dev")})
    with listener.changes.subscribe("Project", "dev") as subscription:
        await sender.execute("SELECT pg_notify($1, $2)", listener.channel, payload)
        with anyio.fail_after(BOUND):
            await subscription.wait()


async def test_a_notify_wakes_the_waiters_of_that_object(
    heard: tuple[PgListener, asyncpg.Connection],
) -> None:
    listener, sender = heard
    with listener.changes.subscribe("Project", "other") as other:
        await woken_by_notify(listener, sender)
        await asyncio.sleep(0.05)
        assert not other._changed.is_set()  # another object's waiter sleeps on


async def test_the_listener_listens_again_after_its_connection_is_killed(
    heard: tuple[PgListener, asyncpg.Connection],
) -> None:
    listener, sender = heard
    killed = await sender.fetchval(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE query LIKE $1",
        f"%LISTEN%{listener.channel}%",
    )
    assert killed == 1
    with anyio.fail_after(BOUND):
        while listener.listens < 2:  # noqa: ASYNC110 (no event for a reconnection)
            await asyncio.sleep(0.01)

    await woken_by_notify(listener, sender)
