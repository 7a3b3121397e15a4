"""A session's GET stream across instance restarts: it follows the new instance by itself,
with a real server (``ticker.py``) that sends notifications on its own."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import mcp_types as types
import pytest

from tests.conftest import Database, LiveMcpd
from tests.mcpd.relay.conftest import Notifications, add_server, admin_client, connect

pytestmark = pytest.mark.anyio

TICKER = Path(__file__).with_name("ticker.py")
CLOCK = "ticker://clock"


@pytest.fixture
def database(tmp_path: Path) -> Database:
    return Database("sqlite", f"sqlite:///{tmp_path / 'mcpd.db'}")


@pytest.fixture
async def ticker(live_mcpd: LiveMcpd) -> LiveMcpd:
    await add_server(live_mcpd, "ticker", {"command": sys.executable, "args": [str(TICKER)]})
    return live_mcpd


def pids(notes: Notifications) -> list[int]:
    """The pids named by the ticker's logging messages, in the order they came."""
    return [
        m.params.data["pid"]
        for m in notes.messages
        if isinstance(m, types.LoggingMessageNotification)
    ]


async def crash(live: LiveMcpd, client: Any) -> None:
    crashed = await client.call_tool("crash", {})
    assert crashed.is_error is True


async def restart(live: LiveMcpd, client: Any) -> None:
    async with admin_client(live) as api:
        response = await api.post("/api/v1/servers/ticker/restart")
        assert response.status_code == 200, response.text


# resources/subscribe is the handshake era's way; the SDK warns that 2026-07-28 drops it.
@pytest.mark.filterwarnings("ignore::mcp.shared.exceptions.MCPDeprecationWarning")
@pytest.mark.parametrize("replace", [crash, restart], ids=["crash", "restart"])
async def test_the_get_stream_follows_a_new_instance_without_a_request(
    ticker: LiveMcpd, replace: Any
) -> None:
    notes = Notifications()
    async with connect(ticker, "ticker", message_handler=notes) as client:
        await client.session.subscribe_resource(CLOCK)
        # The GET stream opens after the handshake, in the background.
        await notes.wait_until(lambda: bool(pids(notes)))
        first = pids(notes)[0]

        await replace(ticker, client)
        # From here on the client sends nothing: what arrives comes by the stream alone.
        await notes.wait_until(lambda: pids(notes)[-1] != first)
        after = len(notes.messages)
        await notes.wait_until(
            lambda: (
                {type(m) for m in notes.messages[after:]}
                >= {types.ToolListChangedNotification, types.ResourceUpdatedNotification}
            )
        )

    updates = [
        m for m in notes.messages[after:] if isinstance(m, types.ResourceUpdatedNotification)
    ]
    assert updates[0].params.uri == CLOCK  # the subscription was renewed on the new instance
    assert len(set(pids(notes))) == 2
