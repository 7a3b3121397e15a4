"""The process runtime's http transport: the port (picked, or the URL's), how the child learns
it (``PORT`` and ``$(PORT)``), readiness when ``start()`` returns, and failed starts."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from urllib.parse import urlsplit

import anyio
import httpx
import pytest

from mcpctl.errors import Unavailable
from mcpctl.mcpd.runtime.base import LaunchSpec
from mcpctl.mcpd.runtime.process import ProcessHandle, ProcessRuntime, basic_env, free_port
from mcpctl.mcpd.runtime.process import process_start_time as start_time_of
from tests.mcpd.instances.running import HTTP_FIXTURE, Lines

pytestmark = pytest.mark.anyio

INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-11-25",
        "capabilities": {},
        "clientInfo": {"name": "t", "version": "1"},
    },
}


def runtime_in(tmp_path: Path) -> ProcessRuntime:
    return ProcessRuntime(tmp_path, basic_env({"PATH": "/usr/bin:/bin"}))


def http_spec(
    *args: str, url: str, env: dict[str, str] | None = None, instance_id: str = "web-1"
) -> LaunchSpec:
    """The http fixture as a process runtime http server."""
    return LaunchSpec(
        instance_id=instance_id,
        server="web",
        transport="http",
        command=sys.executable,
        args=(HTTP_FIXTURE, *args),
        env=env or {},
        url=url,
    )


async def initialize(url: str) -> httpx.Response:
    accept = {"Accept": "application/json, text/event-stream"}
    async with httpx.AsyncClient(trust_env=False, timeout=10) as http:
        return await http.post(url, json=INITIALIZE, headers=accept)


async def stopped(handle: ProcessHandle) -> bool:
    await handle.stop(2)
    return start_time_of(handle.pid) is None and not handle.pid_file.exists()


async def test_a_picked_port_reaches_the_child_as_port_and_in_args_and_it_listens_on_return(
    tmp_path: Path,
) -> None:
    lines = Lines()
    spec = http_spec("--port", "$(PORT)", url="http://localhost/mcp")

    handle = await runtime_in(tmp_path).start(spec, lines.append)
    try:
        answer = await initialize(str(handle.url))  # no wait: start() returned once listening
    finally:
        gone = await stopped(handle)

    assert handle.url is not None
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/mcp", handle.url)
    port = urlsplit(handle.url).port
    assert f"port {port} (PORT={port})" in lines.items
    assert handle.stdio is None
    assert answer.status_code == 200
    assert "http-fixture" in answer.text
    assert gone


async def test_each_start_gets_its_own_port(tmp_path: Path) -> None:
    runtime = runtime_in(tmp_path)
    first = await runtime.start(http_spec(url="http://localhost/mcp"), print)
    second = await runtime.start(http_spec(url="http://localhost/mcp", instance_id="web-2"), print)
    await first.stop(2)
    await second.stop(2)

    assert first.url != second.url


async def test_a_port_in_the_url_is_used_and_wins_over_the_specs_port_env(
    tmp_path: Path,
) -> None:
    lines = Lines()
    port = free_port()
    spec = http_spec("--path", "/custom", url=f"http://localhost:{port}/custom", env={"PORT": "1"})

    handle = await runtime_in(tmp_path).start(spec, lines.append)
    try:
        answer = await initialize(str(handle.url))
    finally:
        gone = await stopped(handle)

    assert handle.url == f"http://127.0.0.1:{port}/custom"
    assert f"port {port} (PORT={port})" in lines.items
    assert answer.status_code == 200
    assert gone


async def test_a_server_that_exits_before_listening_fails_the_start_with_its_last_output(
    tmp_path: Path,
) -> None:
    runtime = runtime_in(tmp_path)
    script = "echo 'reading config' >&2; echo 'no token given' >&2; exit 3"
    spec = LaunchSpec(
        instance_id="web-1", server="web", transport="http", command="sh", args=("-c", script)
    )

    with anyio.fail_after(10), pytest.raises(Unavailable) as caught:
        await runtime.start(spec, print)

    assert re.fullmatch(
        r"server 'web': exited with code 3 before listening on 127\.0\.0\.1:\d+; "
        r"its last output: reading config \| no token given",
        str(caught.value),
    )
    assert list(runtime.pid_dir.iterdir()) == []


def processes_with(token: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if token.encode() in cmdline and start_time_of(int(entry.name)) is not None:
                found.append(int(entry.name))
    return found


async def test_a_server_that_never_listens_is_stopped_at_the_start_timeout(
    tmp_path: Path,
) -> None:
    runtime = runtime_in(tmp_path)
    token = f"never-listens-{tmp_path.name}"
    code = "import sys, time; print('warming up', file=sys.stderr, flush=True); time.sleep(60)"
    spec = LaunchSpec(
        instance_id="web-1",
        server="web",
        transport="http",
        command=sys.executable,
        args=("-c", code, token),
        start_timeout=0.5,
    )

    with anyio.fail_after(10), pytest.raises(Unavailable) as caught:
        await runtime.start(spec, print)

    assert re.fullmatch(
        r"server 'web': did not listen on 127\.0\.0\.1:\d+ within 0\.5 s; "
        r"its last output: warming up",
        str(caught.value),
    )
    assert processes_with(token) == []
    assert list(runtime.pid_dir.iterdir()) == []


async def test_an_http_server_is_reaped_like_a_stdio_one(tmp_path: Path) -> None:
    handle = await runtime_in(tmp_path).start(http_spec(url="http://localhost/mcp"), print)
    record = json.loads(handle.pid_file.read_text())
    try:
        with anyio.fail_after(10):
            reaped = await runtime_in(tmp_path).reap()  # what a new mcpd does at start
    finally:
        await handle.stop(1)

    assert record["pid"] == handle.pid
    assert reaped == [f"web (pid {handle.pid})"]
