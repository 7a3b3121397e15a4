"""The process runtime: environment, process groups, pid files and reaping; `$(NAME)` args."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import anyio
import pytest

from mcpctl.errors import Unavailable
from mcpctl.mcpd.runtime.base import LaunchSpec, expand_args
from mcpctl.mcpd.runtime.process import ProcessRuntime, basic_env, process_start_time
from tests.mcpd.instances.running import fixture_args, running, text_of

pytestmark = pytest.mark.anyio


def test_args_expand_env_references_like_kubernetes() -> None:
    env = {"DIR": "/data", "TZ": "UTC"}

    out = expand_args(["$(DIR)", "--tz=$(TZ)", "$(MISSING)", "$$(DIR)", "a$b"], env)

    assert out == ("/data", "--tz=UTC", "$(MISSING)", "$(DIR)", "a$b")


def test_the_basic_env_takes_only_path_home_locale_and_friends() -> None:
    environ = {
        "PATH": "/bin",
        "HOME": "/root",
        "LANG": "C.UTF-8",
        "MCPD_SECRET_KEY": "k",
        "MCPD_DATABASE_URL": "postgresql://u:p@h/db",
        "AWS_SECRET_ACCESS_KEY": "x",
    }

    assert basic_env(environ) == {"PATH": "/bin", "HOME": "/root", "LANG": "C.UTF-8"}
    assert basic_env({}) == {"PATH": "/usr/local/bin:/usr/bin:/bin"}


async def test_a_child_sees_its_resolved_env_and_the_basics_only(tmp_path: Path) -> None:
    runtime = ProcessRuntime(tmp_path, {"PATH": "/usr/bin:/bin", "HOME": "/home/x"})
    spec = LaunchSpec(
        instance_id="env-1", server="env", command="env", env={"TOKEN": "t", "PATH": "/bin"}
    )
    handle = await runtime.start(spec, print)
    assert handle.stdio is not None
    lines = []
    while (line := await handle.stdio.read_message()) is not None:
        lines.append(line.decode())
    await handle.stop(2)

    assert sorted(lines) == ["HOME=/home/x", "PATH=/bin", "TOKEN=t"]


async def test_a_missing_command_is_unavailable_naming_it(tmp_path: Path) -> None:
    runtime = ProcessRuntime(tmp_path, {})
    spec = LaunchSpec(instance_id="x-1", server="x", command="/no/such/server")

    with pytest.raises(Unavailable) as caught:
        await runtime.start(spec, print)

    assert (
        str(caught.value) == "server 'x': cannot start '/no/such/server': No such file or directory"
    )


async def test_stop_kills_the_whole_process_group_and_removes_the_pid_file(
    tmp_path: Path,
) -> None:
    async with running(tmp_path, fixture_args()) as srv:
        pid_file = srv.handle.pid_file
        record = json.loads(pid_file.read_text())
        grandchild = int(text_of(await srv.connection.request("tools/call", {"name": "spawn"})))
        assert process_start_time(grandchild) is not None

    assert record["pid"] == srv.handle.pid
    assert record["startTime"] is not None
    assert process_start_time(srv.handle.pid) is None
    assert process_start_time(grandchild) is None
    assert not pid_file.exists()


async def test_reap_kills_what_a_pid_file_names_if_it_is_still_the_same_process(
    tmp_path: Path,
) -> None:
    runtime = ProcessRuntime(tmp_path, basic_env({"PATH": "/usr/bin:/bin"}))
    spec = LaunchSpec(instance_id="fx-1", server="fx", command="sleep", args=("600",))
    handle = await runtime.start(spec, print)
    # A stranger: its pid recorded with another start time must survive.
    stranger = subprocess.Popen(["sleep", "600"], start_new_session=True)  # noqa: ASYNC220
    try:
        fake = {"pid": stranger.pid, "pgid": stranger.pid, "startTime": 1, "server": "old"}
        (runtime.pid_dir / "old-1.json").write_text(json.dumps(fake))

        # What a new mcpd on the same data dir does at start.
        with anyio.fail_after(10):
            reaped = await ProcessRuntime(tmp_path, {}).reap()

        stranger_alive = process_start_time(stranger.pid) is not None
    finally:
        stranger.kill()
        stranger.wait()
        await handle.stop(1)

    assert reaped == [f"fx (pid {handle.pid})"]
    assert process_start_time(handle.pid) is None
    assert stranger_alive
    assert list(runtime.pid_dir.iterdir()) == []
