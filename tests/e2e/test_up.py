"""End to end: `mcpctl up` as a user runs it: the installed console script starts mcpd and
mcplocal, logs in, serves the starter project with the real `mcp-server-time`, and leaves
nothing running when it is stopped."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import stat
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import anyio
import pytest
import yaml
from click.testing import CliRunner
from mcp import Client, types
from mcp.client.session import IncomingMessage

from mcpctl.cli.main import cli
from tests.e2e.test_mcpd_subprocess import (
    MCPCTL,
    READY_TIMEOUT,
    STOP_TIMEOUT,
    Cli,
    clean_env,
    free_port,
    healthy,
    port_is_closed,
    started,
    wait_until,
)

pytestmark = pytest.mark.slow

Process = tuple[int, str]  # pid and command line: a pid alone may be reused


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    except (FileNotFoundError, ProcessLookupError):
        return ""


def descendants(pid: int) -> list[Process]:
    """Every process below ``pid``, whatever session or group it moved to."""
    found: list[Process] = []
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except FileNotFoundError:
        return found
    for child in map(int, children):
        found.append((child, cmdline(child)))
        found.extend(descendants(child))
    return found


def still_running(process: Process) -> bool:
    pid, command = process
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z" and cmdline(pid) == command


def ctrl_c(up: subprocess.Popen[bytes]) -> None:
    """What a terminal does on Ctrl-C: SIGINT to the whole foreground process group."""
    os.killpg(up.pid, signal.SIGINT)


def terminate(up: subprocess.Popen[bytes]) -> None:
    up.send_signal(signal.SIGTERM)


def hang_up(up: subprocess.Popen[bytes]) -> None:
    """What closing the terminal does to the foreground process group."""
    os.killpg(up.pid, signal.SIGHUP)


@contextmanager
def mcpctl_up(
    tmp_path: Path, data_dir: Path, env: dict[str, str], log: Path
) -> Iterator[tuple[subprocess.Popen[bytes], str, str]]:
    """`mcpctl up` on free ports, ready; yields the process and the mcpd and mcplocal URLs."""
    assert MCPCTL, "the mcpctl console script is not installed"
    port, local_port = free_port(), free_port()
    cmd = [MCPCTL, "up", "--port", str(port), "--mcplocal-port", str(local_port)]
    with started([*cmd, "--data-dir", str(data_dir)], env, log) as up:
        wait_until(lambda: "Press Ctrl-C" in log.read_text(), "mcpctl up ready", up, log)
        yield up, f"http://127.0.0.1:{port}", f"http://127.0.0.1:{local_port}"


def stopped(up: subprocess.Popen[bytes], stop: Callable[[subprocess.Popen[bytes]], None]) -> int:
    stop(up)
    try:
        return up.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        pytest.fail("mcpctl up did not stop")


def printed_endpoint(text: str) -> str:
    match = re.search(r"Project 'starter' is served at (\S+)", text)
    assert match, text
    return match.group(1)


def printed_snippet(text: str) -> object:
    start = text.index('{\n  "mcpServers"')
    return json.loads(text[start : text.index("\n}\n", start) + 2])


@pytest.mark.parametrize("stop", [ctrl_c, terminate, hang_up])
def test_mcpctl_up_runs_mcpd_and_mcplocal_with_the_starter_and_stops_both(
    tmp_path: Path, stop: Callable[[subprocess.Popen[bytes]], None]
) -> None:
    env = clean_env(tmp_path)
    config = Path(env["MCPCTL_CONFIG"])
    log, data_dir = tmp_path / "up.log", tmp_path / "data"
    with mcpctl_up(tmp_path, data_dir, env, log) as (up, mcpd_url, local_url):
        ours = descendants(up.pid)
        assert sorted("mcplocal" in c for _, c in ours) == [False, True], ours
        assert any("mcpctl.mcpd serve" in c for _, c in ours), ours
        assert healthy(mcpd_url)
        assert healthy(local_url)

        cli = Cli(env)
        assert cli("config", "current-context").stdout == "local\n"
        assert stat.S_IMODE(config.stat().st_mode) == 0o600
        project = yaml.safe_load(cli("get", "project", "starter", "-o", "yaml").stdout)
        assert project["spec"]["servers"] == ["clock"]
        server = yaml.safe_load(cli("get", "server", "clock", "-o", "yaml").stdout)
        assert Path(server["spec"]["command"]).name == "mcp-server-time"
        assert Path(server["spec"]["command"]).is_file()

        text = log.read_text()
        endpoint = f"{local_url}/projects/starter/mcp"
        assert printed_endpoint(text) == endpoint
        entry = {"type": "http", "url": endpoint}
        assert printed_snippet(text) == {"mcpServers": {"starter": entry}}
        assert "server/clock created\n" in text
        assert "project/starter created\n" in text

        assert stopped(up, stop) == 0, log.read_text()
        left = [p for p in ours if still_running(p)]
    assert not left, f"still running after mcpctl up stopped: {left}"
    assert port_is_closed(int(mcpd_url.rsplit(":", 1)[1]))
    assert port_is_closed(int(local_url.rsplit(":", 1)[1]))
    text = log.read_text()
    assert f"mcpd is running at {mcpd_url} (data in {data_dir})" in text
    assert text.count("Application shutdown complete.") == 2  # mcpd and mcplocal
    assert "Traceback" not in text


async def call_time_tool(endpoint: str) -> str:
    """List the project's tools (waiting for list_changed while the server connects) and call
    the time tool, as Claude Code would."""
    changed = anyio.Event()

    async def on_message(message: IncomingMessage) -> None:
        if isinstance(message, types.ToolListChangedNotification):
            changed.set()

    async with Client(endpoint, mode="legacy", cache=None, message_handler=on_message) as client:
        with anyio.fail_after(READY_TIMEOUT):
            names = [t.name for t in (await client.list_tools()).tools]
            if "clock__get_current_time" not in names:
                await changed.wait()
                names = [t.name for t in (await client.list_tools()).tools]
        assert {"clock__get_current_time", "clock__convert_time"} <= set(names), names
        result = await client.call_tool("clock__get_current_time", {"timezone": "Asia/Tokyo"})
    assert not result.is_error, result
    return "".join(c.text for c in result.content if isinstance(c, types.TextContent))


def test_a_real_mcp_client_calls_the_starter_time_tool_and_nothing_is_left_after_ctrl_c(
    tmp_path: Path,
) -> None:
    env = clean_env(tmp_path)
    log, data_dir = tmp_path / "up.log", tmp_path / "data"
    with mcpctl_up(tmp_path, data_dir, env, log) as (up, _, _):
        endpoint = printed_endpoint(log.read_text())
        answer = json.loads(anyio.run(call_time_tool, endpoint))
        assert answer["timezone"] == "Asia/Tokyo"

        ours = descendants(up.pid)
        assert any(c.endswith("/mcp-server-time") for _, c in ours), ours
        assert stopped(up, ctrl_c) == 0, log.read_text()
        left = [p for p in ours if still_running(p)]
    assert not left, f"still running after Ctrl-C: {left}"
    assert "Traceback" not in log.read_text()


def test_mcpctl_up_twice_on_the_same_data_dir_keeps_the_starter_project(tmp_path: Path) -> None:
    env = clean_env(tmp_path)
    data_dir = tmp_path / "data"
    with mcpctl_up(tmp_path, data_dir, env, tmp_path / "first.log") as (up, _, _):
        described = Cli(env)("get", "project", "starter", "-o", "yaml").stdout
        changed = yaml.safe_load(described)
        changed["spec"]["description"] = "mine now"
        (tmp_path / "starter.yaml").write_text(yaml.safe_dump(changed))
        Cli(env)("apply", "-f", str(tmp_path / "starter.yaml"))
        assert stopped(up, ctrl_c) == 0

    second = tmp_path / "second.log"
    with mcpctl_up(tmp_path, data_dir, env, second) as (up, _, local_url):
        text = second.read_text()
        assert "server/clock exists (left as it is)" in text
        assert "project/starter exists (left as it is)" in text
        project = yaml.safe_load(Cli(env)("get", "project", "starter", "-o", "yaml").stdout)
        assert project["spec"]["description"] == "mine now"
        assert printed_endpoint(text) == f"{local_url}/projects/starter/mcp"
        assert stopped(up, ctrl_c) == 0


def test_mcpctl_up_refuses_a_port_in_use_and_starts_nothing(tmp_path: Path) -> None:
    env = clean_env(tmp_path)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = Cli(env)(
            "up", "--port", str(free_port()), "--mcplocal-port", str(port), check=False
        )
    assert result.returncode == 5
    assert result.stderr.startswith(f"error: --mcplocal-port: port {port} for mcplocal is in use")
    assert not (tmp_path / "xdg-data" / "mcpctl").exists()


def test_mcpctl_up_without_mcp_server_time_says_how_to_install_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.executable", str(tmp_path / "bin" / "python"))
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    result = CliRunner().invoke(cli, ["up", "--data-dir", str(tmp_path / "data")])
    assert result.exit_code == 7
    assert "mcp-server-time is not installed" in result.stderr
    assert "mcpctl[up]" in result.stderr
    assert not (tmp_path / "data").exists()


def test_when_mcpd_dies_mcpctl_up_stops_mcplocal_and_exits_1_naming_it(tmp_path: Path) -> None:
    env = clean_env(tmp_path)
    log = tmp_path / "up.log"
    with mcpctl_up(tmp_path, tmp_path / "data", env, log) as (up, _, _):
        ours = descendants(up.pid)
        (mcpd_pid,) = [pid for pid, c in ours if "mcpctl.mcpd serve" in c]
        os.kill(mcpd_pid, signal.SIGKILL)
        try:
            assert up.wait(timeout=STOP_TIMEOUT) == 1
        except subprocess.TimeoutExpired:
            pytest.fail(f"mcpctl up did not notice\n{log.read_text()}")
        left = [p for p in ours if still_running(p)]
    assert not left, f"still running: {left}"
    assert "error: mcpd exited with code -9" in log.read_text()
