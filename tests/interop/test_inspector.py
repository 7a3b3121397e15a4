"""The MCP Inspector CLI (a real third-party client, on Node 22) lists and calls namespaced
tools through mcplocal, on one project holding the four servers of issue 4, each run by mcpd's
process runtime: mcp-server-time and mcp-server-git (PyPI), server-everything and
server-filesystem (npm)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio
import pytest

from tests.conftest import LiveMcpd
from tests.interop.tools import INSPECTOR, NODE22, everything_spec, filesystem_spec, node22_env
from tests.interop.tools import require as require_tools
from tests.mcplocal.conftest import (
    Mcplocal,
    apply_project,
    define_servers,
    git_repo,
    git_spec,
    time_spec,
)

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


async def inspector(url: str, home: Path, *args: str) -> Any:
    """Run ``inspector --cli URL ARGS``; its JSON answer."""
    env = node22_env() | {"HOME": str(home), "MCP_CATALOG_PATH": str(home / "catalog.json")}
    done = await anyio.run_process(
        [str(NODE22), str(INSPECTOR), "--cli", url, *args], check=False, env=env
    )
    assert done.returncode == 0, done.stderr.decode() + done.stdout.decode()
    return json.loads(done.stdout)


async def test_the_inspector_lists_and_calls_tools_of_four_real_servers_through_mcplocal(
    live_mcpd: LiveMcpd, mcplocal: Mcplocal, tmp_path: Path
) -> None:
    require_tools(NODE22, INSPECTOR)
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "note.txt").write_text("hello from the filesystem server\n")
    repo = git_repo(tmp_path / "repo")
    define_servers(
        live_mcpd,
        time=time_spec(),
        git=git_spec(repo),
        everything=everything_spec(),
        files=filesystem_spec(shared),
    )
    apply_project(live_mcpd, "four", ["time", "git", "everything", "files"])
    url = mcplocal.url("four")
    home = tmp_path / "home"
    home.mkdir()

    listed = await inspector(url, home, "--method", "tools/list")
    names = {tool["name"] for tool in listed["tools"]}
    by_server = {s: {n for n in names if n.startswith(f"{s}__")} for s in ("time", "git")}
    assert by_server["time"] == {"time__get_current_time", "time__convert_time"}
    assert len(by_server["git"]) == 12
    assert {"everything__echo", "everything__get-sum", "files__read_text_file"} <= names
    assert len([n for n in names if n.startswith("files__")]) == 14
    assert all(n.split("__")[0] in ("time", "git", "everything", "files") for n in names)

    async def call(tool: str, *args: str) -> str:
        result = await inspector(
            url, home, "--method", "tools/call", "--tool-name", tool, "--tool-arg", *args
        )
        assert not result.get("isError"), result
        return "".join(c.get("text", "") for c in result["content"])

    assert '"timezone": "UTC"' in await call("time__get_current_time", "timezone=UTC")
    assert "first commit" in await call("git__git_log", f"repo_path={repo}", "max_count=1")
    assert "The sum of 2 and 3 is 5" in await call("everything__get-sum", "a=2", "b=3")
    assert "hello from the filesystem server" in await call(
        "files__read_text_file", f"path={shared / 'note.txt'}"
    )
