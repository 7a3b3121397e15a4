"""The supervisor with real processes: first use, crash and restart, crash loop, idle stop, the
cap, shutdown, start/stop cycles and secret scrubbing."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from asgi_lifespan import LifespanManager

from mcpctl.errors import NotFound, Unavailable
from mcpctl.mcpd.app import create_app
from mcpctl.mcpd.instances.connection import ConnectionLost
from mcpctl.mcpd.instances.supervisor import State, Supervisor
from mcpctl.mcpd.runtime.process import process_start_time
from mcpctl.mcpd.settings import Settings
from tests.conftest import admin_token_of, state_of
from tests.mcpd.instances.running import FIXTURE, TIME_SERVER, fixture_args, text_of
from tests.mcpd.manifests import JSON, manifest, put, secret, secret_env

pytestmark = pytest.mark.anyio


@asynccontextmanager
async def mcpd(settings: Settings) -> AsyncIterator[tuple[Supervisor, httpx.AsyncClient]]:
    app = create_app(settings)
    async with LifespanManager(app):
        transport = httpx.ASGITransport(app=app)
        headers = {"Authorization": f"Bearer {admin_token_of(settings)}"}
        async with httpx.AsyncClient(
            transport=transport, base_url="http://mcpd.test", headers=headers
        ) as api:
            yield state_of(app).instances.supervisor, api


def fixture_server(name: str, *args: str, **spec: Any) -> JSON:
    argv = fixture_args(*args)
    return manifest("Server", name, {"command": argv[0], "args": argv[1:], **spec})


async def add(api: httpx.AsyncClient, body: JSON) -> None:
    response = await put(api, body)
    assert response.is_success, response.text


def alive(pid: int | None) -> bool:
    return pid is not None and process_start_time(pid) is not None


def fixture_processes() -> list[int]:
    """Live processes running the stdio fixture (ours: the path is under this checkout)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if FIXTURE.encode() in cmdline and alive(int(entry.name)):
                found.append(int(entry.name))
    return found


async def call(supervisor: Supervisor, server: str, tool: str, **arguments: Any) -> str:
    instance = await supervisor.acquire(server)
    assert instance.connection is not None
    result = await instance.connection.request("tools/call", {"name": tool, "arguments": arguments})
    return text_of(result)


async def test_an_instance_starts_on_first_use_and_is_shared(settings: Settings) -> None:
    async with mcpd(settings) as (supervisor, api):
        await add(api, manifest("Server", "time", {"command": TIME_SERVER}))
        assert supervisor.statuses() == []
        first = await supervisor.acquire("time")
        again = await supervisor.acquire("time")
        status = supervisor.status("time")["status"]

    assert first is again
    assert status["state"] == "Running"
    assert status["pid"] == first.handle.pid
    assert status["serverInfo"]["name"] == "mcp-time"
    assert not alive(first.handle.pid)


async def test_acquiring_an_unknown_server_is_not_found(settings: Settings) -> None:
    async with mcpd(settings) as (supervisor, _):
        with pytest.raises(NotFound):
            await supervisor.acquire("nope")


async def test_a_crash_mid_call_fails_fast_and_the_next_call_succeeds_after_restart(
    settings: Settings,
) -> None:
    async with mcpd(settings) as (supervisor, api):
        await add(api, fixture_server("fx"))
        before = await call(supervisor, "fx", "pid")
        with anyio.fail_after(1), pytest.raises(ConnectionLost) as caught:
            await call(supervisor, "fx", "crash", code=3)
        after = await call(supervisor, "fx", "pid")
        status = supervisor.status("fx")["status"]
        events = [line.text for line in supervisor.log_of("fx").lines]

    assert "exited" in str(caught.value) or "output ended" in str(caught.value)
    assert after != before
    assert status["restarts"] == 1
    assert status["lastError"] == "exited with code 3: crashing on purpose"
    assert "exited with code 3: crashing on purpose" in events


async def test_repeated_crashes_at_start_end_in_crash_loop_until_restarted(
    settings: Settings,
) -> None:
    async with mcpd(settings) as (supervisor, api):
        await add(api, fixture_server("bad", "--say", "no config", "--crash-at-start", "2"))
        with anyio.fail_after(30), pytest.raises(Unavailable) as caught:
            await supervisor.acquire("bad")
        status = supervisor.status("bad")["status"]
        with pytest.raises(Unavailable):  # at once, no new attempt
            await supervisor.acquire("bad")
        attempts = sum(
            line.text.startswith("starting (") for line in supervisor.log_of("bad").lines
        )

        await add(api, fixture_server("bad"))
        with anyio.fail_after(30):
            restarted = await supervisor.restart("bad")

    assert "CrashLoop" in str(caught.value)
    assert "restart server bad" in str(caught.value)
    assert status["state"] == "CrashLoop"
    assert "no config" in status["lastError"]
    assert attempts == 3
    assert restarted["status"]["state"] == "Running"


async def test_an_idle_instance_is_stopped_and_starts_again_on_use(settings: Settings) -> None:
    async with mcpd(settings.model_copy(update={"instance_idle_seconds": 0.2})) as (sup, api):
        await add(api, fixture_server("fx"))
        pid = int(await call(sup, "fx", "pid"))
        with anyio.fail_after(10):
            stopped = await sup.wait_for("fx", State.STOPPED)
        gone = not alive(pid)
        again = int(await call(sup, "fx", "pid"))

    assert stopped["status"]["pid"] is None
    assert gone
    assert again != pid


async def test_keep_alive_servers_start_with_mcpd_and_never_idle_out(settings: Settings) -> None:
    async with mcpd(settings) as (_, api):
        await add(api, fixture_server("keeper", keepAlive=True))
    quick = settings.model_copy(update={"instance_idle_seconds": 0.05})
    async with mcpd(quick) as (supervisor, api):
        with anyio.fail_after(10):
            await supervisor.wait_for("keeper", State.RUNNING)
        await add(api, fixture_server("other"))
        await call(supervisor, "other", "pid")
        with anyio.fail_after(10):
            await supervisor.wait_for("other", State.STOPPED)
        keeper = supervisor.status("keeper")["status"]

    assert keeper["state"] == "Running"


async def test_the_cap_refuses_another_instance_with_a_clear_error(settings: Settings) -> None:
    async with mcpd(settings.model_copy(update={"max_instances": 1})) as (supervisor, api):
        await add(api, fixture_server("one"))
        await add(api, fixture_server("two"))
        await supervisor.acquire("one")
        with pytest.raises(Unavailable) as caught:
            await supervisor.acquire("two")

    assert "MCPD_MAX_INSTANCES=1" in str(caught.value)


async def test_shutdown_stops_every_process_and_its_children(settings: Settings) -> None:
    async with mcpd(settings) as (supervisor, api):
        await add(api, fixture_server("a"))
        await add(api, fixture_server("b"))
        grandchild = int(await call(supervisor, "a", "spawn"))
        pids = [int(await call(supervisor, name, "pid")) for name in ("a", "b")]
        assert all(alive(p) for p in [*pids, grandchild])

    assert not any(alive(p) for p in [*pids, grandchild])
    assert fixture_processes() == []
    assert list((settings.data_dir / "instances" / "pids").glob("*.json")) == []


async def test_many_restarts_leave_the_process_and_descriptor_counts_flat(
    settings: Settings,
) -> None:
    async with mcpd(settings) as (supervisor, api):
        await add(api, fixture_server("fx"))
        await call(supervisor, "fx", "pid")
        fds_before = len(os.listdir("/proc/self/fd"))
        for _ in range(30):
            await supervisor.restart("fx")
        assert await call(supervisor, "fx", "echo", text="ok") == "ok"
        running = fixture_processes()
        fds_after = len(os.listdir("/proc/self/fd"))

    assert len(running) == 1
    assert fds_after <= fds_before
    assert fixture_processes() == []


async def test_secret_values_never_reach_logs_status_or_errors(settings: Settings) -> None:
    token = "s3cr3t-token-value"
    async with mcpd(settings) as (supervisor, api):
        await add(api, secret("gh", {"token": token}))
        await add(
            api,
            fixture_server(
                "fx", "--say", f"starting with {token}", env=[secret_env("TOKEN", "gh", "token")]
            ),
        )
        await call(supervisor, "fx", "env", name="TOKEN")
        with pytest.raises(ConnectionLost) as caught:
            await call(supervisor, "fx", "crash")
        await supervisor.acquire("fx")
        texts = [line.text for line in supervisor.log_of("fx").lines]
        listed = await api.get("/api/v1/instances")
        logs = await api.get("/api/v1/servers/fx/logs")
        log_file = (settings.data_dir / "logs" / "servers" / "fx.log").read_text()

    assert "TOKEN=<hidden>" in texts
    assert "starting with <hidden>" in texts
    for text in (json.dumps(texts), listed.text, logs.text, log_file, str(caught.value)):
        assert token not in text


async def test_two_concurrent_first_uses_start_one_instance(settings: Settings) -> None:
    async with mcpd(settings) as (supervisor, api):
        await add(api, fixture_server("fx"))
        first, second = await asyncio.gather(supervisor.acquire("fx"), supervisor.acquire("fx"))
        running = fixture_processes()

    assert first is second
    assert len(running) == 1


async def test_an_external_server_gets_its_url_and_a_header_from_a_secret(
    settings: Settings,
) -> None:
    header = {"name": "Authorization", "valueFrom": {"secretRef": {"name": "rm", "key": "t"}}}
    spec = {
        "runtime": "external",
        "transport": "http",
        "url": "https://mcp.example.test/mcp",
        "headers": [header],
    }
    async with mcpd(settings.model_copy(update={"max_instances": 1})) as (supervisor, api):
        await add(api, secret("rm", {"t": "Bearer abc123xyz"}))
        await add(api, manifest("Server", "remote", spec))
        await add(api, fixture_server("fx"))
        instance = await supervisor.acquire("remote")
        await supervisor.acquire("fx")  # external instances do not count against the cap
        status = supervisor.status("remote")
        in_use = await api.delete("/api/v1/secrets/rm")

    assert instance.url == "https://mcp.example.test/mcp"
    assert instance.headers == {"Authorization": "Bearer abc123xyz"}
    assert instance.connection is None
    assert status["status"]["state"] == "Running"
    assert "abc123xyz" not in json.dumps(status)
    assert in_use.status_code == 409


@pytest.mark.slow
async def test_a_thousand_start_stop_cycles_leave_nothing_behind(settings: Settings) -> None:
    async with mcpd(settings) as (supervisor, api):
        await add(api, fixture_server("fx"))
        await supervisor.restart("fx")
        fds_before = len(os.listdir("/proc/self/fd"))
        for _ in range(1000):
            await supervisor.restart("fx")
        running = fixture_processes()
        fds_after = len(os.listdir("/proc/self/fd"))
        restarts = supervisor.log_of("fx").lines

    assert len(running) == 1
    assert fds_after <= fds_before
    assert len(restarts) == settings.instance_log_lines  # the ring buffer stays bounded
    assert fixture_processes() == []
