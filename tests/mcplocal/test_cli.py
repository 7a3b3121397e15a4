"""The ``mcplocal`` command: ``serve`` and ``stdio`` as real processes, and bad input."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from mcp import Client, StdioServerParameters

from mcpctl.mcplocal.cli import main
from tests.conftest import LiveMcpd
from tests.mcplocal.conftest import (
    apply_project,
    connect,
    drain_pipe,
    free_port,
    text_of,
)

pytestmark = pytest.mark.anyio
MCPLOCAL = Path(sys.executable).with_name("mcplocal")


def env_for(mcpd: LiveMcpd, tmp_path: Path) -> dict[str, str]:
    """mcpd from the CLI environment (as after `mcpctl login`); servers are reached through
    its relay, the default."""
    env = {
        **os.environ,
        "MCPCTL_CONFIG": str(tmp_path / "config.yaml"),
        "MCPCTL_SERVER": mcpd.url,
        "MCPCTL_TOKEN": mcpd.token,
    }
    env.pop("MCPLOCAL_UPSTREAM_URL_TEMPLATE", None)
    return env


@pytest.fixture
def served(live_mcpd: LiveMcpd, time_server: str, tmp_path: Path) -> Iterator[str]:
    """`mcplocal serve` as a process; the base URL once uvicorn says it runs."""
    port = free_port()
    proc = subprocess.Popen(
        [str(MCPLOCAL), "serve", "--port", str(port)],
        env=env_for(live_mcpd, tmp_path),
        stderr=subprocess.PIPE,
    )
    assert proc.stderr is not None
    for line in proc.stderr:
        if b"Uvicorn running on" in line:
            break
    drain = drain_pipe(proc.stderr)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        drain.join(timeout=10)
        proc.stderr.close()
    # uvicorn stops gracefully, then re-raises the signal it caught.
    assert proc.returncode in (0, -signal.SIGTERM)


async def test_serve_answers_health_and_serves_a_project(live_mcpd: LiveMcpd, served: str) -> None:
    apply_project(live_mcpd, "work", ["time"])
    async with httpx.AsyncClient(base_url=served) as http:
        health = (await http.get("/healthz")).json()
    assert health == {"status": "ok", "mcpd": live_mcpd.url, "projects": []}
    async with connect(f"{served}/projects/work/mcp") as (client, _):
        result = await client.call_tool("time__get_current_time", {"timezone": "UTC"})
    assert "UTC" in text_of(result)


async def test_stdio_serves_a_project_to_a_stdio_client(
    live_mcpd: LiveMcpd, time_server: str, tmp_path: Path
) -> None:
    apply_project(live_mcpd, "work", ["time"])
    params = StdioServerParameters(
        command=str(MCPLOCAL),
        args=["stdio", "--project", "work"],
        env=env_for(live_mcpd, tmp_path),
    )
    async with Client(params, mode="legacy", cache=None) as client:
        names = {tool.name for tool in (await client.list_tools()).tools}
        assert names == {"time__get_current_time", "time__convert_time"}
        result = await client.call_tool("time__get_current_time", {"timezone": "Asia/Tokyo"})
    assert "Asia/Tokyo" in text_of(result)


def test_serve_refuses_an_address_that_is_not_loopback() -> None:
    result = CliRunner().invoke(main, ["serve", "--host", "0.0.0.0"])
    assert result.exit_code == 3
    assert "--host: '0.0.0.0' is not a loopback address" in result.output


def test_stdio_names_a_project_mcpd_does_not_have(live_mcpd: LiveMcpd, tmp_path: Path) -> None:
    env = env_for(live_mcpd, tmp_path)
    result = subprocess.run(
        [str(MCPLOCAL), "stdio", "--project", "nowhere"],
        env=env,
        capture_output=True,
        stdin=subprocess.DEVNULL,
        timeout=60,
        check=False,
    )
    assert result.returncode == 4
    assert result.stderr.decode().strip().endswith("mcplocal: project/nowhere not found")
    assert result.stdout == b""


def test_stdio_says_when_mcpd_cannot_be_reached(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "MCPCTL_CONFIG": str(tmp_path / "config.yaml"),
        "MCPCTL_SERVER": f"http://127.0.0.1:{free_port()}",
    }
    result = subprocess.run(
        [str(MCPLOCAL), "stdio", "--project", "work"],
        env=env,
        capture_output=True,
        stdin=subprocess.DEVNULL,
        timeout=60,
        check=False,
    )
    assert result.returncode == 7
    assert "cannot reach mcpd" in result.stderr.decode()
