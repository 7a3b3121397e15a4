"""A local command that serves streamable HTTP itself (``runtime: process``, ``transport:
http``): run by mcpd on a loopback port it picks, listed, and called through the relay with the
MCP SDK client."""

from __future__ import annotations

import sys
from typing import Any

import anyio
import pytest

from mcpctl.errors import Unavailable
from mcpctl.mcpd.settings import Settings
from tests.conftest import LiveMcpd
from tests.mcpd.instances.running import HTTP_FIXTURE
from tests.mcpd.instances.test_supervisor import add, alive, mcpd
from tests.mcpd.manifests import manifest
from tests.mcpd.relay.conftest import add_server, admin_client, connect, text_of

pytestmark = pytest.mark.anyio


def web_spec(**spec: Any) -> dict[str, Any]:
    return {
        "transport": "http",
        "command": sys.executable,
        "args": [HTTP_FIXTURE, "--port", "$(PORT)"],
        "url": "http://localhost/mcp",
        **spec,
    }


async def test_a_process_http_server_is_listed_and_called_through_the_relay(
    live_mcpd: LiveMcpd,
) -> None:
    await add_server(live_mcpd, "web", web_spec(env=[{"name": "GREETING", "value": "hello"}]))

    async with connect(live_mcpd, "web") as client:
        info = client.server_info
        tools = await client.list_tools()
        echoed = await client.call_tool("echo", {"text": "through the relay"})
        greeting = await client.call_tool("getenv", {"name": "GREETING"})
        pid = int(text_of(await client.call_tool("pid", {})))
    async with admin_client(live_mcpd) as api:
        listed = (await api.get("/api/v1/instances")).json()["items"]
        logs = (await api.get("/api/v1/servers/web/logs")).text

    assert info is not None
    assert info.name == "http-fixture"
    assert {t.name for t in tools.tools} == {"echo", "getenv", "pid"}
    assert text_of(echoed) == "through the relay"
    assert text_of(greeting) == "hello"
    [instance] = listed
    assert instance["spec"] == {
        "server": "web",
        "runtime": "process",
        "transport": "http",
        "keepAlive": False,
    }
    assert instance["status"]["state"] == "Running"
    assert instance["status"]["pid"] == pid
    assert f"running (pid {pid}; http://127.0.0.1:" in logs
    assert "/mcp)" in logs


async def test_the_instance_url_is_the_picked_loopback_port_and_it_goes_with_the_instance(
    settings: Settings,
) -> None:
    async with mcpd(settings) as (supervisor, api):
        await add(api, manifest("Server", "web", web_spec(url="http://localhost/custom")))
        await add(api, manifest("Server", "other", web_spec()))
        instance = await supervisor.acquire("web")
        other = await supervisor.acquire("other")
        pid = instance.handle.pid

    assert instance.url is not None
    assert instance.url.startswith("http://127.0.0.1:")
    assert instance.url.endswith("/custom")
    assert instance.url.rsplit("/", 1)[0] != str(other.url).rsplit("/", 1)[0]
    assert instance.connection is None
    assert not alive(pid)


async def test_an_http_server_that_exits_at_start_reports_why(settings: Settings) -> None:
    script = "echo 'listen: permission denied' >&2; exit 4"
    spec = {"transport": "http", "command": "sh", "args": ["-c", script], "url": "http://x/mcp"}
    async with mcpd(settings) as (supervisor, api):
        await add(api, manifest("Server", "broken", spec))
        with anyio.fail_after(30), pytest.raises(Unavailable) as caught:
            await supervisor.acquire("broken")
        status = supervisor.status("broken")["status"]

    assert "exited with code 4 before listening on 127.0.0.1:" in str(caught.value)
    assert status["lastError"].endswith("its last output: listen: permission denied")
    assert status["lastError"].count("permission denied") == 1
