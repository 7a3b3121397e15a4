"""Progress, cancellation, notifications and crashes through the relay."""

from __future__ import annotations

import json
from pathlib import Path

import anyio
import httpx
import mcp_types as types
import pytest
from mcp.shared.exceptions import MCPError

from tests.conftest import Database, LiveMcpd
from tests.mcpd.relay.conftest import (
    WAIT,
    Notifications,
    add_server,
    connect,
    spec,
    text_of,
)

pytestmark = pytest.mark.anyio


@pytest.fixture
def database(tmp_path: Path) -> Database:
    return Database("sqlite", f"sqlite:///{tmp_path / 'mcpd.db'}")


async def wait_for_log(live: LiveMcpd, server: str, prefix: str) -> str:
    """The first line of ``server``'s log starting with ``prefix`` (following it, bounded)."""
    url = f"{live.url}/api/v1/servers/{server}/logs"
    headers = {"Authorization": f"Bearer {live.token}"}
    with anyio.fail_after(WAIT):
        async with (
            httpx.AsyncClient(trust_env=False, timeout=None) as http,
            http.stream("GET", url, params={"follow": "true"}, headers=headers) as response,
        ):
            async for line in response.aiter_lines():
                text = str(json.loads(line)["text"])
                if text.startswith(prefix):
                    return text
    raise AssertionError(f"the log of {server} ended without {prefix!r}")


async def wait_in_flight(live: LiveMcpd, server: str) -> None:
    """Wait (bounded) until ``server``'s instance has a request in flight: mcpd offers no
    event for that, so its status is read again every few milliseconds."""
    url = f"{live.url}/api/v1/instances/{server}"
    headers = {"Authorization": f"Bearer {live.token}"}
    with anyio.fail_after(WAIT):
        async with httpx.AsyncClient(trust_env=False, headers=headers) as http:
            while True:
                response = await http.get(url)
                if response.status_code == 200 and response.json()["status"]["inFlight"]:
                    return
                await anyio.sleep(0.01)


async def test_progress_reaches_the_caller_before_the_answer(servers: LiveMcpd) -> None:
    seen: list[tuple[float, float | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append((progress, total))

    async with connect(servers, "fixture") as client:
        result = await client.call_tool("progress", {"steps": 3}, progress_callback=on_progress)
        plain = await client.call_tool("progress", {"steps": 2})

    assert seen == [(1, 3), (2, 3), (3, 3)]
    assert text_of(result) == "3 steps"
    assert text_of(plain) == "2 steps"


async def test_progress_of_server_everythings_long_running_operation(
    live_mcpd: LiveMcpd, tmp_path: Path
) -> None:
    await add_server(live_mcpd, "everything", spec("everything", tmp_path))
    seen: list[float] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append(progress)

    async with connect(live_mcpd, "everything") as client:
        result = await client.call_tool(
            "trigger-long-running-operation",
            {"duration": 0.3, "steps": 3},
            progress_callback=on_progress,
        )

    assert seen == [1, 2, 3]
    assert "Long running operation completed" in text_of(result)


async def test_a_call_the_client_cancels_is_cancelled_upstream(servers: LiveMcpd) -> None:
    async with connect(servers, "fixture") as client:
        with pytest.raises(MCPError) as raised:
            # The SDK cancels (notifications/cancelled) a request that timed out.
            await client.call_tool("hang", {}, read_timeout_seconds=0.5)
        line = await wait_for_log(servers, "fixture", "cancelled ")
        after = await client.call_tool("echo", {"text": "still here"})

    assert raised.value.error.code == types.REQUEST_TIMEOUT
    assert line.startswith("cancelled ")
    assert text_of(after) == "still here"


async def test_a_client_going_away_cancels_its_call_upstream(servers: LiveMcpd) -> None:
    with anyio.move_on_after(WAIT) as scope:
        try:
            async with connect(servers, "fixture") as client, anyio.create_task_group() as tg:
                tg.start_soon(client.call_tool, "hang", {})
                await wait_in_flight(servers, "fixture")
                # Leaving the client closes its HTTP connections mid-call.
                tg.cancel_scope.cancel()
        except* (anyio.BrokenResourceError, anyio.ClosedResourceError):
            # The SDK client's own teardown race: an answer arriving while it closes is
            # delivered into its already closed stream. Not what this test is about.
            pass
    line = await wait_for_log(servers, "fixture", "cancelled ")

    assert not scope.cancelled_caught
    assert line.startswith("cancelled ")


async def test_a_crash_mid_call_is_a_clear_error_and_the_next_call_works(
    servers: LiveMcpd,
) -> None:
    async with connect(servers, "fixture") as client:
        first = text_of(await client.call_tool("pid", {}))
        with anyio.fail_after(1):
            crashed = await client.call_tool("crash", {"code": 3})
        second = text_of(await client.call_tool("pid", {}))

    assert crashed.is_error is True
    assert "server 'fixture'" in text_of(crashed)
    assert "crashing on purpose" in text_of(crashed) or "exit" in text_of(crashed)
    assert first != second


async def test_list_changed_reaches_the_sessions_get_stream(servers: LiveMcpd) -> None:
    notes = Notifications()
    async with connect(servers, "fixture", message_handler=notes) as client:
        with anyio.fail_after(WAIT):
            # The GET stream opens after the handshake, in the background: ask until it is.
            while not notes.count(types.ToolListChangedNotification):
                asked = await client.call_tool("ask", {})
                with anyio.move_on_after(0.5):
                    await notes.wait_for(types.ToolListChangedNotification)

    answers = json.loads(text_of(asked))
    assert answers["ping"]["result"] == {}
    # Sampling and roots cannot be tied to one client over the shared connection.
    assert answers["sampling/createMessage"]["error"]["code"] == -32601
    assert answers["roots/list"]["error"]["code"] == -32601


# resources/subscribe is the handshake era's way; the SDK warns that 2026-07-28 drops it.
@pytest.mark.filterwarnings("ignore::mcp.shared.exceptions.MCPDeprecationWarning")
async def test_resource_updates_reach_the_sessions_that_subscribed(
    live_mcpd: LiveMcpd, tmp_path: Path
) -> None:
    await add_server(live_mcpd, "everything", spec("everything", tmp_path))
    notes = Notifications()
    async with connect(live_mcpd, "everything", message_handler=notes) as client:
        uri = (await client.list_resources()).resources[0].uri
        await client.session.subscribe_resource(uri)
        await client.call_tool("toggle-subscriber-updates", {})
        await notes.wait_for(types.ResourceUpdatedNotification)
        await client.call_tool("toggle-subscriber-updates", {})
        await client.session.unsubscribe_resource(uri)

    updated = [m for m in notes.messages if isinstance(m, types.ResourceUpdatedNotification)]
    assert updated[0].params.uri == uri
