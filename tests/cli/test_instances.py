"""`mcpctl get instances`, `describe instance`, `restart server` and `logs server` against a live
mcpd running real servers (mcp-server-time and the stdio fixture), on both engines."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import yaml

from tests.cli.conftest import Mcpctl
from tests.cli.samples import lines, ok, write
from tests.mcpd.instances.running import TIME_SERVER, fixture_args

MCPCTL = str(Path(sys.executable).parent / "mcpctl")


@pytest.fixture
def servers(mcpctl: Mcpctl, tmp_path: Path) -> None:
    argv = fixture_args("--say", "fixture ready")
    docs = [
        {"kind": "Server", "metadata": {"name": "time"}, "spec": {"command": TIME_SERVER}},
        {
            "kind": "Server",
            "metadata": {"name": "fx"},
            "spec": {"command": argv[0], "args": argv[1:]},
        },
    ]
    text = yaml.safe_dump_all([{"apiVersion": "mcpctl/v1", **d} for d in docs])
    ok(mcpctl("apply", "-f", str(write(tmp_path, "servers.yaml", text))))


def test_get_instances_says_when_none_runs(mcpctl: Mcpctl, servers: None) -> None:
    result = ok(mcpctl("get", "instances"))

    assert result.stdout == ""
    assert result.stderr == "No instances running.\n"


def test_restart_then_get_instances_shows_a_table(mcpctl: Mcpctl, servers: None) -> None:
    restarted = ok(mcpctl("restart", "server", "time"))
    table = ok(mcpctl("get", "instances"))

    assert re.fullmatch(r"server/time restarted \(pid \d+\)\n", restarted.stdout)
    header, row = (line.split() for line in lines(table))
    assert header == [
        "SERVER",
        "RUNTIME",
        "STATE",
        "PID/CONTAINER",
        "RESTARTS",
        "AGE",
        "LAST",
        "ERROR",
    ]
    assert row[:3] == ["time", "process", "Running"]
    assert restarted.stdout.endswith(f"(pid {row[3]})\n")
    assert row[4:] == ["0", row[5], "-"]
    assert re.fullmatch(r"\d+[smhdy]", row[5])


def test_get_one_instance_as_json_and_by_type_slash_name(mcpctl: Mcpctl, servers: None) -> None:
    ok(mcpctl("restart", "server", "fx"))

    as_json = json.loads(ok(mcpctl("get", "instances", "fx", "-o", "json")).stdout)
    as_name = ok(mcpctl("get", "instance/fx", "-o", "name"))

    assert as_json["kind"] == "Instance"
    assert as_json["status"]["serverInfo"] == {"name": "stdio-fixture", "version": "1.0"}
    assert as_name.stdout == "instance/fx\n"


def test_describe_instance_shows_state_process_and_server_info(
    mcpctl: Mcpctl, servers: None
) -> None:
    ok(mcpctl("restart", "server", "time"))

    result = ok(mcpctl("describe", "instance", "time"))

    fields = dict(line.split(":", 1) for line in lines(result))
    assert fields["Name"].strip() == "time"
    assert fields["State"].strip() == "Running"
    assert fields["PID"].strip().isdigit()
    assert fields["Server info"].strip().startswith("mcp-time ")
    assert fields["Last error"].strip() == "-"


def test_unknown_server_and_instance_exit_4(mcpctl: Mcpctl, servers: None) -> None:
    restart = mcpctl("restart", "server", "nope")
    describe = mcpctl("describe", "instance", "time")
    logs = mcpctl("logs", "server", "nope")

    assert [restart.exit_code, describe.exit_code, logs.exit_code] == [4, 4, 4]
    assert restart.stderr == "error: server 'nope' not found\n"


def test_a_server_that_cannot_start_exits_7_with_the_reason(mcpctl: Mcpctl, tmp_path: Path) -> None:
    doc = "apiVersion: mcpctl/v1\nkind: Server\nmetadata: {name: bad}\nspec: {command: /nope}\n"
    ok(mcpctl("apply", "-f", str(write(tmp_path, "bad.yaml", doc))))

    result = mcpctl("restart", "server", "bad")

    assert result.exit_code == 7
    assert "cannot start '/nope'" in result.stderr


def test_logs_print_stderr_as_written_and_events_marked(mcpctl: Mcpctl, servers: None) -> None:
    ok(mcpctl("restart", "server", "fx"))

    full = ok(mcpctl("logs", "server", "fx"))
    tail = ok(mcpctl("logs", "server", "fx", "--tail", "2", "--timestamps"))

    assert lines(full)[0] == "[mcpd] restart requested by admin"
    assert "fixture ready" in lines(full)
    assert lines(full)[-1].startswith("[mcpd] running (pid ")
    assert len(lines(tail)) == 2
    assert all(re.match(r"\d{4}-\d\d-\d\dT\S+Z ", line) for line in lines(tail))


def test_logs_follow_prints_new_lines_until_stopped(
    mcpctl: Mcpctl, servers: None, tmp_path: Path
) -> None:
    """The real console script, as a process: it prints as lines arrive and stops on SIGINT."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MCPCTL_")}
    env.update({k: v for k, v in mcpctl.env.items() if v is not None})
    follow = subprocess.Popen(
        [MCPCTL, "logs", "server", "fx", "-f", "--tail", "0"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    seen: list[str] = []
    done = threading.Event()

    def read() -> None:
        assert follow.stdout is not None
        for line in follow.stdout:
            seen.append(line.rstrip("\n"))
            if line.startswith("[mcpd] running"):
                done.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        # Once the stream is open every new line reaches it; restart until one has.
        for _ in range(20):
            ok(mcpctl("restart", "server", "fx"))
            if done.wait(1.0):
                break
    finally:
        follow.terminate()
        follow.wait(timeout=30)
        reader.join(timeout=30)
        assert follow.stdout is not None
        follow.stdout.close()

    assert done.is_set()
    assert "fixture ready" in seen
