"""One failing upstream never breaks the others; changes reach clients as list_changed."""

from __future__ import annotations

import logging
import os
import signal
from pathlib import Path

import anyio
import pytest
from mcp import Client
from mcp.shared.subscriptions import ToolsListChanged

from tests.conftest import LiveMcpd
from tests.mcplocal.conftest import (
    Mcplocal,
    apply_project,
    connect,
    define_servers,
    instance_pid,
    probe_spec,
    restart_server,
    text_of,
    wait_listening,
)

pytestmark = pytest.mark.anyio

# DESIGN.md: project changes in mcpd reach connected clients within 2 s.
PROJECT_CHANGE_BOUND = 2.0
# Bound for a server that starts: process start plus one reconnection backoff (0.5 s here).
RECOVERY_BOUND = 30.0
TOOLS_CHANGED = "notifications/tools/list_changed"


async def test_a_server_that_cannot_start_leaves_out_its_tools_and_appears_once_it_can(
    live_mcpd: LiveMcpd,
    mcplocal: Mcplocal,
    time_server: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, "mcpctl.mcplocal")
    define_servers(live_mcpd, probe={"command": str(tmp_path / "not-installed-yet")})
    apply_project(live_mcpd, "mixed", ["time", "probe"])
    async with connect(mcplocal.url("mixed")) as (client, notes):
        names = {tool.name for tool in (await client.list_tools()).tools}
        assert names == {"time__get_current_time", "time__convert_time"}
        warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert any("server probe: unavailable" in m and "left out" in m for m in warnings)
        status = mcplocal.state.endpoints.opened("mixed")
        assert status is not None
        states = {s["name"]: s["state"] for s in status.runtime.status()["servers"]}
        assert states == {"time": "ready", "probe": "down"}

        called = await client.call_tool("probe__sleep", {"seconds": 0})
        assert called.is_error
        assert "server 'probe' is unavailable" in text_of(called)

        await wait_listening(mcplocal, "mixed")
        before = notes.counts.get(TOOLS_CHANGED, 0)
        # The fix: a spec that runs, and `mcpctl restart server probe` (out of CrashLoop).
        define_servers(live_mcpd, probe=probe_spec())
        await restart_server(live_mcpd, "probe")
        await notes.wait_for(TOOLS_CHANGED, before, RECOVERY_BOUND)
        names = {tool.name for tool in (await client.list_tools()).tools}
        assert {"probe__sleep", "time__get_current_time"} <= names
        assert (await client.call_tool("probe__sleep", {"seconds": 0})).structured_content == {
            "result": "slept"
        }


async def test_servers_added_to_the_project_reach_clients_as_list_changed_within_2s(
    live_mcpd: LiveMcpd,
    mcplocal: Mcplocal,
    time_server: str,
    probe: str,
) -> None:
    apply_project(live_mcpd, "growing", ["time"])
    async with connect(mcplocal.url("growing")) as (client, notes):
        assert "probe__sleep" not in {t.name for t in (await client.list_tools()).tools}
        await wait_listening(mcplocal, "growing")

        before = notes.counts.get(TOOLS_CHANGED, 0)
        apply_project(live_mcpd, "growing", ["time", "probe"])
        await notes.wait_for(TOOLS_CHANGED, before, PROJECT_CHANGE_BOUND)
        assert "probe__sleep" in {t.name for t in (await client.list_tools()).tools}

        before = notes.counts.get(TOOLS_CHANGED, 0)
        apply_project(live_mcpd, "growing", ["probe"])
        await notes.wait_for(TOOLS_CHANGED, before, PROJECT_CHANGE_BOUND)
        names = {t.name for t in (await client.list_tools()).tools}
        assert names == {"probe__sleep", "probe__was_cancelled", "probe__fail"}


async def test_a_server_killed_mid_call_fails_that_call_and_serves_the_next_after_restart(
    live_mcpd: LiveMcpd, mcplocal: Mcplocal, probe: str
) -> None:
    apply_project(live_mcpd, "fragile", ["probe"])
    killed: list[int] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        pid = await instance_pid(live_mcpd, "probe")
        os.kill(pid, signal.SIGKILL)
        killed.append(pid)

    async with connect(mcplocal.url("fragile")) as (client, _):
        with anyio.fail_after(RECOVERY_BOUND):
            failed = await client.call_tool(
                "probe__sleep", {"seconds": 60}, progress_callback=on_progress
            )
        assert killed
        assert failed.is_error
        assert "probe" in text_of(failed)

        # mcpd restarts the instance; the next call waits for it.
        with anyio.fail_after(RECOVERY_BOUND):
            again = await client.call_tool("probe__sleep", {"seconds": 0})
        assert not again.is_error
    assert await instance_pid(live_mcpd, "probe") != killed[0]


async def test_a_sessionless_client_gets_list_changed_on_its_listen_stream(
    live_mcpd: LiveMcpd,
    mcplocal: Mcplocal,
    time_server: str,
    probe: str,
) -> None:
    apply_project(live_mcpd, "growing", ["time"])
    async with Client(mcplocal.url("growing"), cache=None) as client:
        assert client.protocol_version == "2026-07-28"
        await client.list_tools()
        async with client.listen(tools_list_changed=True) as subscription:
            apply_project(live_mcpd, "growing", ["time", "probe"])
            with anyio.fail_after(PROJECT_CHANGE_BOUND):
                event = await subscription.__anext__()
        assert isinstance(event, ToolsListChanged)
        assert "probe__sleep" in {t.name for t in (await client.list_tools()).tools}
