"""The docker runtime against the real engine of scripts/docker-engine, with the locally built
images: stdio over the attach socket, labels, no network, removal, reaping, an HTTP image on a
loopback port, and a crash and restart through the supervisor."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import docker
import httpx
import pytest

from mcpctl.mcpd.instances.connection import Connection, ConnectionLost
from mcpctl.mcpd.runtime.base import LaunchSpec
from mcpctl.mcpd.runtime.docker import DockerRuntime
from mcpctl.mcpd.settings import Settings
from tests.mcpd.instances.running import text_of
from tests.mcpd.manifests import manifest, secret, secret_env

pytestmark = [pytest.mark.anyio, pytest.mark.docker, pytest.mark.slow]

TIME_IMAGE = "mcpctl-test/python-time:2026.10.19"
BUSYBOX = "mcpctl-test/busybox:1"

# A streamable-HTTP MCP server, with the mcp package the time image already carries.
HTTP_SERVER = """
from mcp.server.mcpserver import MCPServer
server = MCPServer("http-echo")
@server.tool()
def echo(text: str) -> str:
    return text
server.run("streamable-http", host="0.0.0.0", port=8000)
"""


@pytest.fixture
def engine(docker_host: str) -> Iterator[Any]:
    client = docker.DockerClient(base_url=docker_host)
    yield client
    client.close()


def spec(owner: str, name: str = "time", **fields: Any) -> LaunchSpec:
    instance_id = f"{name}-{owner}"
    labels = {"mcpctl.owner": owner, "mcpctl.instance": instance_id}
    return LaunchSpec(instance_id=instance_id, server=name, labels=labels, **fields)


def containers(engine: Any, owner: str) -> list[Any]:
    return list(engine.containers.list(all=True, filters={"label": f"mcpctl.owner={owner}"}))


async def test_a_stdio_image_runs_with_no_network_and_is_removed_on_stop(
    docker_host: str, engine: Any, tmp_path: Path
) -> None:
    owner = tmp_path.name[-20:]
    runtime = DockerRuntime(owner, docker_host)
    stderr: list[str] = []
    handle = await runtime.start(spec(owner, image=TIME_IMAGE, env={"TZ": "UTC"}), stderr.append)
    try:
        assert handle.stdio is not None
        connection = Connection(handle.stdio, server="time")
        info = await connection.start(timeout=60)
        result = await connection.request(
            "tools/call",
            {
                "name": "convert_time",
                "arguments": {
                    "source_timezone": "UTC",
                    "time": "08:00",
                    "target_timezone": "Europe/Berlin",
                },
            },
        )
        (container,) = containers(engine, owner)
        attrs = container.attrs
    finally:
        await handle.stop(5)
        await runtime.close()

    assert info["serverInfo"]["name"] == "mcp-time"
    assert json.loads(text_of(result))["target"]["datetime"][11:16] in ("09:00", "10:00")
    assert attrs["HostConfig"]["NetworkMode"] == "none"
    assert attrs["Config"]["Labels"]["mcpctl.instance"] == f"time-{owner}"
    assert "TZ=UTC" in attrs["Config"]["Env"]
    assert handle.identity == f"container {attrs['Id'][:12]}"
    assert containers(engine, owner) == []


async def test_the_exit_code_of_a_crashed_container_is_read(
    docker_host: str, tmp_path: Path
) -> None:
    owner = tmp_path.name[-20:]
    runtime = DockerRuntime(owner, docker_host)
    lines: list[str] = []
    handle = await runtime.start(
        spec(owner, image=BUSYBOX, command="sh", args=("-c", "echo bye >&2; exit 7")),
        lines.append,
    )
    try:
        with anyio.fail_after(30):
            code = await handle.wait()
    finally:
        await handle.stop(2)
        await runtime.close()

    assert code == 7
    assert lines == ["bye"]


async def test_reaping_removes_only_this_owners_containers(
    docker_host: str, engine: Any, tmp_path: Path
) -> None:
    ours, theirs = f"a{tmp_path.name[-18:]}", f"b{tmp_path.name[-18:]}"
    sleeper: dict[str, Any] = {"image": BUSYBOX, "command": "sleep", "args": ("600",)}
    first = DockerRuntime(ours, docker_host)
    other = DockerRuntime(theirs, docker_host)
    ours_handle = await first.start(spec(ours, **sleeper), print)
    theirs_handle = await other.start(spec(theirs, **sleeper), print)
    try:
        # A new mcpd with the same owner id (its data dir) after the first was killed.
        again = DockerRuntime(ours, docker_host)
        reaped = await again.reap()
        await again.close()
        left = [len(containers(engine, ours)), len(containers(engine, theirs))]
    finally:
        await ours_handle.stop(1)  # its container is gone already: only the stream is closed
        await theirs_handle.stop(1)
        await first.close()
        await other.close()

    assert reaped == [f"container mcpctl-time-{ours}"]
    assert left == [0, 1]


async def test_an_http_image_is_published_on_a_loopback_port(
    docker_host: str, tmp_path: Path
) -> None:
    owner = tmp_path.name[-20:]
    runtime = DockerRuntime(owner, docker_host)
    handle = await runtime.start(
        spec(
            owner,
            transport="http",
            image=TIME_IMAGE,
            command="python3",
            args=("-c", HTTP_SERVER),
            url="http://localhost:8000/mcp",
        ),
        print,
    )
    try:
        assert handle.url is not None
        assert handle.url.startswith("http://127.0.0.1:")
        assert handle.url.endswith("/mcp")
        initialize = {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-11-25",
                "capabilities": {},
                "clientInfo": {"name": "t", "version": "1"},
            },
        }
        headers = {"Accept": "application/json, text/event-stream"}
        async with httpx.AsyncClient(timeout=10) as client:
            with anyio.fail_after(60):
                while True:
                    try:
                        response = await client.post(handle.url, json=initialize, headers=headers)
                        break
                    except httpx.TransportError:
                        await anyio.sleep(0.2)
    finally:
        await handle.stop(2)
        await runtime.close()

    assert response.status_code == 200
    assert "http-echo" in response.text


async def test_a_docker_instance_crashes_and_is_restarted_with_secrets_kept_out_of_sight(
    settings: Settings, docker_host: str, engine: Any
) -> None:
    from tests.mcpd.instances.test_supervisor import add, mcpd

    token = "docker-secret-value"
    quick = settings.model_copy(
        update={"docker_host": docker_host, "instance_backoff_initial_seconds": 0.01}
    )
    async with mcpd(quick) as (supervisor, api):
        await add(api, secret("k", {"v": token}))
        env = [secret_env("API_TOKEN", "k", "v")]
        await add(
            api, manifest("Server", "dtime", {"runtime": "docker", "image": TIME_IMAGE, "env": env})
        )
        first = await supervisor.acquire("dtime")
        assert first.connection is not None
        container = engine.containers.get(first.handle.container_id)
        assert f"API_TOKEN={token}" in container.attrs["Config"]["Env"]
        container.kill()
        with anyio.fail_after(5), pytest.raises(ConnectionLost):
            await first.connection.request("tools/list")
        second = await supervisor.acquire("dtime")
        assert second.connection is not None
        tools = await second.connection.request("tools/list")
        status = supervisor.status("dtime")
        listed = (await api.get("/api/v1/instances")).text
        logs = (await api.get("/api/v1/servers/dtime/logs")).text

    assert second.handle.container_id != first.handle.container_id
    assert len(tools["tools"]) == 2
    assert status["status"]["restarts"] == 1
    assert status["status"]["containerId"] == second.handle.container_id
    assert "killed by signal" in (status["status"]["lastError"] or "") or "code 137" in (
        status["status"]["lastError"] or ""
    )
    assert token not in listed + logs + json.dumps(status)
    assert containers(engine, supervisor.owner) == []
