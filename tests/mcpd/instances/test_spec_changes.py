"""Running instances follow their Server: deleting it stops the instance at once, a change of
what it runs (here env, through a template too) replaces it at the next use without `restart
server`, writes that change nothing of the launch leave it alone, and another mcpd replica
notices by polling."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import anyio
import pytest

from mcpctl.errors import Unavailable
from mcpctl.mcpd.instances.connection import ConnectionLost
from mcpctl.mcpd.instances.logs import LogBook
from mcpctl.mcpd.instances.supervisor import State, Supervisor
from mcpctl.mcpd.runtime.process import ProcessRuntime, basic_env
from mcpctl.mcpd.settings import Settings
from tests.conftest import LiveMcpd
from tests.mcpd.instances.running import fixture_args
from tests.mcpd.instances.test_supervisor import (
    add,
    alive,
    call,
    fixture_processes,
    fixture_server,
    mcpd,
)
from tests.mcpd.manifests import manifest, template
from tests.mcpd.relay.conftest import add_server, admin_client, connect, text_of

pytestmark = pytest.mark.anyio


def greeting(value: str) -> list[dict[str, str]]:
    return [{"name": "GREETING", "value": value}]


async def exited(pid: int) -> float:
    """Wait until process ``pid`` has exited (its pidfd turns readable); the seconds it took."""
    started = time.monotonic()
    fd = os.pidfd_open(pid)
    try:
        await anyio.wait_readable(fd)
    finally:
        os.close(fd)
    return time.monotonic() - started


async def stopped_for(supervisor: Supervisor, server: str, reason: str) -> None:
    """Wait for the supervisor's event that it stopped ``server`` for ``reason``."""
    async for line in supervisor.log_of(server).follow(tail=None):
        if line.stream == "event" and line.text == f"stopped: {reason}":
            return


async def test_deleting_a_running_server_stops_its_process_at_once(settings: Settings) -> None:
    async with mcpd(settings) as (supervisor, api):
        await add(api, fixture_server("fx"))
        grandchild = int(await call(supervisor, "fx", "spawn"))
        pid = int(await call(supervisor, "fx", "pid"))
        deleted = await api.delete("/api/v1/servers/fx")
        with anyio.fail_after(2):
            took = await exited(pid)
            await stopped_for(supervisor, "fx", "the server was deleted")  # the group is gone
        listed = supervisor.statuses()

    assert deleted.status_code == 200
    assert took < 2
    assert not alive(pid)
    assert not alive(grandchild)
    assert listed == []
    assert fixture_processes() == []


async def test_changing_the_env_of_a_running_server_reaches_the_next_call_without_a_restart(
    live_mcpd: LiveMcpd,
) -> None:
    argv = fixture_args()
    spec = {"command": argv[0], "args": argv[1:]}
    await add_server(live_mcpd, "fx", {**spec, "env": greeting("one")})

    async with connect(live_mcpd, "fx") as client:  # one MCP session throughout
        before = text_of(await client.call_tool("getenv", {"name": "GREETING"}))
        old_pid = int(text_of(await client.call_tool("pid", {})))
        await add_server(live_mcpd, "fx", {**spec, "env": greeting("two")})
        after = text_of(await client.call_tool("getenv", {"name": "GREETING"}))
        new_pid = int(text_of(await client.call_tool("pid", {})))
    async with admin_client(live_mcpd) as api:
        logs = (await api.get("/api/v1/servers/fx/logs")).text

    assert (before, after) == ("one", "two")
    assert new_pid != old_pid
    assert not alive(old_pid)
    assert "stopped: the spec changed; the next use starts the new one" in logs
    assert "restart requested" not in logs


async def test_a_call_in_flight_when_the_spec_changes_gets_connection_lost(
    settings: Settings,
) -> None:
    async with mcpd(settings) as (supervisor, api):
        await add(api, fixture_server("fx"))
        instance = await supervisor.acquire("fx")
        connection = instance.connection
        assert connection is not None
        hanging = asyncio.ensure_future(connection.request("tools/call", {"name": "hang"}))
        with anyio.fail_after(5):
            while not connection.in_flight:  # noqa: ASYNC110 (yields until the request is out)
                await asyncio.sleep(0)
        await add(api, fixture_server("fx", env=greeting("new")))
        with anyio.fail_after(5), pytest.raises(ConnectionLost):
            await hanging
        value = await call(supervisor, "fx", "getenv", name="GREETING")

    assert value == "new"


async def test_writes_that_change_nothing_it_runs_keep_the_instance(settings: Settings) -> None:
    async with mcpd(settings) as (supervisor, api):
        await add(api, fixture_server("fx"))
        pid = await call(supervisor, "fx", "pid")
        argv = fixture_args()
        same = {"command": argv[0], "args": argv[1:], "description": "now described"}
        await add(api, manifest("Server", "fx", same, labels={"team": "a"}))
        await add(api, fixture_server("other"))
        again = await call(supervisor, "fx", "pid")

    assert again == pid


async def test_a_template_change_rolls_the_servers_built_from_it(settings: Settings) -> None:
    argv = fixture_args()
    body = {"command": argv[0], "args": argv[1:]}
    async with mcpd(settings) as (supervisor, api):
        await add(api, template("fx-template", **body, env=greeting("one")))
        await add(api, manifest("Server", "fx", {"fromTemplate": "fx-template"}))
        before = await call(supervisor, "fx", "getenv", name="GREETING")
        await add(api, template("fx-template", **body, env=greeting("two")))
        after = await call(supervisor, "fx", "getenv", name="GREETING")

    assert (before, after) == ("one", "two")


async def test_fixing_a_crash_looping_server_lets_the_next_use_start_it(
    settings: Settings,
) -> None:
    async with mcpd(settings) as (supervisor, api):
        await add(api, fixture_server("bad", "--crash-at-start", "2"))
        with anyio.fail_after(30), pytest.raises(Unavailable) as caught:
            await supervisor.acquire("bad")
        await add(api, fixture_server("bad"))
        with anyio.fail_after(30):
            answer = await call(supervisor, "bad", "echo", text="fixed")

    assert "CrashLoop" in str(caught.value)
    assert answer == "fixed"


async def test_a_keep_alive_server_starts_again_at_once_with_its_new_spec(
    settings: Settings,
) -> None:
    async with mcpd(settings) as (supervisor, api):
        await add(api, fixture_server("keeper", keepAlive=True, env=greeting("one")))
        with anyio.fail_after(10):
            first = await supervisor.wait_for("keeper", State.RUNNING)  # nobody called it
        await add(api, fixture_server("keeper", keepAlive=True, env=greeting("two")))
        with anyio.fail_after(10):
            while True:
                now = await supervisor.wait_for("keeper", State.RUNNING)
                if now["status"]["pid"] != first["status"]["pid"]:
                    break
                await supervisor.wait_for("keeper", State.STOPPING, State.STOPPED)
        value = await call(supervisor, "keeper", "getenv", name="GREETING")

    assert value == "two"


@contextlib.asynccontextmanager
async def replica(main: Supervisor, data_dir: Path) -> AsyncIterator[Supervisor]:
    """A second supervisor on the same database, as another mcpd replica has: nothing tells it
    of writes made through the first one."""
    other = Supervisor(
        main.uows,
        main.secrets,
        {"process": ProcessRuntime(data_dir, basic_env(os.environ))},
        LogBook(data_dir / "logs", max_lines=100, max_bytes=1 << 20, backups=1),
        owner="replica-b",
        limits=replace(main.limits, spec_check_seconds=0.05),
    )
    await other.start()
    try:
        yield other
    finally:
        await other.close()


async def test_another_replica_notices_a_change_by_polling(
    settings: Settings, tmp_path: Path
) -> None:
    async with mcpd(settings) as (supervisor, api):
        await add(api, fixture_server("fx", env=greeting("one")))
        async with replica(supervisor, tmp_path / "replica-b") as other:
            pid = int(await call(other, "fx", "pid"))
            await add(api, fixture_server("fx", env=greeting("two")))
            with anyio.fail_after(5):
                await other.wait_for("fx", State.STOPPED)
            gone = not alive(pid)
            value = await call(other, "fx", "getenv", name="GREETING")
            second = int(await call(other, "fx", "pid"))
            await api.delete("/api/v1/servers/fx")
            with anyio.fail_after(5):
                await exited(second)
            listed: list[Any] = other.statuses()

    assert gone
    assert value == "two"
    assert listed == []
