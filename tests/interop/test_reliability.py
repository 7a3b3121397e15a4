"""Reliability through the whole path (SDK client → mcplocal → mcpd relay → real servers run
by the process runtime): ``kill -9`` of a real ``mcpd serve`` mid-call leaves no orphan
processes once it is started again and clients carry on; 100 concurrent client sessions on
one project all get their own answers.

Not repeated here: 1,000 start/stop cycles (tests/mcpd/instances/test_supervisor.py) and an
upstream killed mid-call (tests/mcplocal/test_resilience.py).
"""

from __future__ import annotations

import signal
import sys
import uuid
from pathlib import Path

import anyio
import httpx
import pytest
from mcp.shared.exceptions import MCPError

from mcpctl.mcpd.runtime.process import process_start_time
from mcpctl.mcpd.settings import Settings as McpdSettings
from tests.conftest import LiveMcpd
from tests.e2e.test_mcpd_subprocess import clean_env, free_port, healthy, started, wait_until
from tests.interop.tools import everything_spec, filesystem_spec
from tests.mcplocal.conftest import (
    Mcplocal,
    apply_project,
    connect,
    define_servers,
    git_repo,
    git_spec,
    serve_mcplocal,
    text_of,
    time_spec,
)

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

RECOVERY_BOUND = 30.0  # bound for a process to start and report progress
MARKER = "MCPCTL_INTEROP_RUN"


def marked(spec: dict[str, object], run: str) -> dict[str, object]:
    """``spec`` with an environment variable that tags its processes as this test's."""
    return spec | {"env": [{"name": MARKER, "value": run}]}


def processes_of(run: str) -> set[int]:
    """Live processes (servers and anything they started) carrying this test's tag."""
    tag = f"{MARKER}={run}".encode()
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if tag in environ and process_start_time(int(entry.name)) is not None:
            found.add(int(entry.name))
    return found


async def test_a_killed_mcpd_leaves_no_orphans_and_clients_carry_on_after_its_restart(
    tmp_path: Path,
) -> None:
    run = uuid.uuid4().hex
    data_dir = tmp_path / "data"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = clean_env(tmp_path)
    serve = [sys.executable, "-m", "mcpctl.mcpd", "serve", "--port", str(port)]
    serve += ["--data-dir", str(data_dir)]
    shared = tmp_path / "shared"
    shared.mkdir()
    specs = {
        "time": time_spec(),
        "git": git_spec(git_repo(tmp_path / "repo")),
        "everything": everything_spec(),
        "files": filesystem_spec(shared),
    }

    with started(serve, env, tmp_path / "mcpd1.log") as first:
        wait_until(lambda: healthy(url), "mcpd /healthz", first, tmp_path / "mcpd1.log")
        mcpd = LiveMcpd(
            url, (data_dir / "admin.token").read_text().strip(), McpdSettings(data_dir=data_dir)
        )
        define_servers(mcpd, **{name: marked(spec, run) for name, spec in specs.items()})
        apply_project(mcpd, "steady", list(specs))
        async with serve_mcplocal(mcpd) as served, connect(served.url("steady")) as (client, _):
            assert len((await client.list_tools()).tools) > 28  # every server is running
            before = processes_of(run)
            assert len(before) >= len(specs)

            # kill -9 while a call is in flight: the caller gets an error, not a hang.
            in_flight = anyio.Event()
            outcome: list[str] = []

            async def on_progress(
                progress: float, total: float | None, message: str | None
            ) -> None:
                in_flight.set()

            async def long_call() -> None:
                try:
                    result = await client.call_tool(
                        "everything__trigger-long-running-operation",
                        {"duration": 60, "steps": 60},
                        progress_callback=on_progress,
                    )
                    outcome.append("error" if result.is_error else "answered")
                except MCPError:
                    outcome.append("error")

            async with anyio.create_task_group() as tg:
                tg.start_soon(long_call)
                with anyio.fail_after(RECOVERY_BOUND):
                    await in_flight.wait()
                first.send_signal(signal.SIGKILL)
                first.wait(timeout=30)
            assert outcome == ["error"]

            with started(serve, env, tmp_path / "mcpd2.log") as second:
                log = tmp_path / "mcpd2.log"
                wait_until(lambda: healthy(url), "mcpd /healthz", second, log)
                # Reaped at start (or gone with their stdin): nothing of the first mcpd lives.
                assert processes_of(run) & before == set()

                # The session opened before the kill carries on: mcplocal opens a new relay
                # session for a call the restarted mcpd answers 404 and sends it again, so
                # not even the first call after the restart fails.
                for server, tool, arguments in [
                    ("time", "time__get_current_time", {"timezone": "UTC"}),
                    ("git", "git__git_status", {"repo_path": str(tmp_path / "repo")}),
                    ("everything", "everything__echo", {"message": "back"}),
                    ("files", "files__list_allowed_directories", {}),
                ]:
                    result = await client.call_tool(tool, arguments)
                    assert not result.is_error, (server, text_of(result))
                # And a new session sees every server again.
                async with connect(served.url("steady")) as (fresh, _):
                    names = {t.name for t in (await fresh.list_tools()).tools}
                    assert {"time__convert_time", "git__git_status", "files__list_directory"} <= (
                        names
                    )
                    echo = await fresh.call_tool("everything__echo", {"message": "again"})
                    assert "again" in text_of(echo)
                assert len(processes_of(run)) >= len(specs)
                second.send_signal(signal.SIGTERM)
                second.wait(timeout=30)

    assert processes_of(run) == set()


async def test_a_hundred_concurrent_sessions_on_one_project_each_get_their_own_answers(
    live_mcpd: LiveMcpd, mcplocal: Mcplocal
) -> None:
    define_servers(live_mcpd, time=time_spec(), everything=everything_spec())
    apply_project(live_mcpd, "busy", ["time", "everything"])
    answers: dict[int, tuple[str, str]] = {}

    async def session(i: int) -> None:
        async with connect(mcplocal.url("busy")) as (client, _):
            total = await client.call_tool("everything__get-sum", {"a": i, "b": 1000})
            now = await client.call_tool("time__get_current_time", {"timezone": "Asia/Tokyo"})
            answers[i] = (text_of(total), text_of(now))

    # Cold: the first of these sessions also start both servers in mcpd.
    with anyio.fail_after(120):
        async with anyio.create_task_group() as tg:
            for i in range(100):
                tg.start_soon(session, i)

    assert sorted(answers) == list(range(100))
    for i, (total, now) in answers.items():
        assert total == f"The sum of {i} and 1000 is {i + 1000}.", total
        assert '"timezone": "Asia/Tokyo"' in now
    async with httpx.AsyncClient(
        base_url=live_mcpd.url, headers={"Authorization": f"Bearer {live_mcpd.token}"}
    ) as http:
        instances = (await http.get("/api/v1/instances")).json()["items"]
    assert sorted(i["metadata"]["name"] for i in instances) == ["everything", "time"]
