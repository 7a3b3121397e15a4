"""`mcpctl mcp-config PROJECT [-o FILE]`: the .mcp.json entry for Claude Code and Cursor."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from tests.cli.conftest import Mcpctl
from tests.cli.samples import ok

URL = "http://127.0.0.1:7461/projects/tools/mcp"
ENTRY = {"type": "http", "url": URL}


@pytest.fixture
def project(mcpctl: Mcpctl) -> str:
    ok(mcpctl("create", "secret", "creds", "--from-literal", "token=s3cret-value"))
    ok(mcpctl("create", "project", "tools"))
    return "tools"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A folder of its own for the files the tests write."""
    directory = tmp_path / "repo"
    directory.mkdir()
    return directory


def test_mcp_config_prints_an_http_entry_for_the_project(mcpctl: Mcpctl, project: str) -> None:
    result = ok(mcpctl("mcp-config", project))
    assert json.loads(result.stdout) == {"mcpServers": {"tools": ENTRY}}
    assert result.stderr == ""


def test_mcp_config_takes_a_server_name_and_another_mcplocal_url(
    mcpctl: Mcpctl, project: str
) -> None:
    result = ok(
        mcpctl(
            "mcp-config", project, "--name", "team-tools", "--mcplocal-url", "http://[::1]:9000/"
        )
    )
    entry = {"type": "http", "url": "http://[::1]:9000/projects/tools/mcp"}
    assert json.loads(result.stdout) == {"mcpServers": {"team-tools": entry}}
    from_env = ok(
        mcpctl("mcp-config", project, env={"MCPCTL_MCPLOCAL_URL": "http://localhost:7999"})
    )
    assert json.loads(from_env.stdout)["mcpServers"]["tools"]["url"] == (
        "http://localhost:7999/projects/tools/mcp"
    )


def test_mcp_config_output_never_holds_a_command_env_or_secret(
    mcpctl: Mcpctl, project: str, repo: Path
) -> None:
    out = repo / ".mcp.json"
    ok(mcpctl("mcp-config", project, "-o", str(out)))
    text = out.read_text()
    (entry,) = json.loads(text)["mcpServers"].values()
    assert set(entry) == {"type", "url"}
    assert "s3cret" not in text
    token = mcpctl.env["MCPCTL_TOKEN"]
    assert token
    assert token not in text


def test_mcp_config_creates_the_file_when_missing(mcpctl: Mcpctl, project: str, repo: Path) -> None:
    out = repo / ".mcp.json"
    result = ok(mcpctl("mcp-config", project, "-o", str(out)))
    assert json.loads(out.read_text()) == {"mcpServers": {"tools": ENTRY}}
    assert out.read_text().endswith("}\n")
    assert result.stdout == ""
    assert result.stderr == f"{out}: mcpServers.tools added ({URL})\n"


def test_mcp_config_merges_keeping_other_servers_and_unknown_keys(
    mcpctl: Mcpctl, project: str, repo: Path
) -> None:
    out = repo / ".mcp.json"
    other = {"command": "npx", "args": ["-y", "some-server"], "env": {"KEY": "${KEY}"}}
    out.write_text(
        json.dumps(
            {
                "$schema": "https://example.com/schema.json",
                "mcpServers": {"other": other, "tools": {"type": "sse", "url": "http://old"}},
                "inputs": [{"id": "token"}],
            }
        )
    )
    os.chmod(out, 0o640)

    result = ok(mcpctl("mcp-config", project, "-o", str(out)))

    assert result.stderr == f"{out}: mcpServers.tools updated ({URL})\n"
    merged = json.loads(out.read_text())
    assert merged == {
        "$schema": "https://example.com/schema.json",
        "mcpServers": {"other": other, "tools": ENTRY},
        "inputs": [{"id": "token"}],
    }
    assert list(merged["mcpServers"]) == ["other", "tools"]
    assert stat.S_IMODE(out.stat().st_mode) == 0o640
    assert [p.name for p in repo.iterdir()] == [".mcp.json"]  # no temporary file left


def test_mcp_config_adds_beside_other_servers_and_reports_unchanged_on_a_rerun(
    mcpctl: Mcpctl, project: str, repo: Path
) -> None:
    out = repo / ".mcp.json"
    out.write_text('{"mcpServers": {"other": {"type": "http", "url": "http://x/mcp"}}}')
    assert "tools added" in ok(mcpctl("mcp-config", project, "-o", str(out))).stderr
    first = out.stat()
    again = ok(mcpctl("mcp-config", project, "-o", str(out)))
    assert again.stderr == f"{out}: mcpServers.tools unchanged ({URL})\n"
    assert out.stat().st_ino == first.st_ino  # not rewritten
    assert set(json.loads(out.read_text())["mcpServers"]) == {"other", "tools"}


def test_mcp_config_writes_through_a_symlink_to_its_target(
    mcpctl: Mcpctl, project: str, repo: Path
) -> None:
    target = repo / "shared.json"
    target.write_text("{}")
    link = repo / ".mcp.json"
    link.symlink_to(target)
    ok(mcpctl("mcp-config", project, "-o", str(link)))
    assert link.is_symlink()
    assert json.loads(target.read_text()) == {"mcpServers": {"tools": ENTRY}}


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ('{"mcpServers": {', "not valid JSON (line 1, column 17"),
        ("[1, 2]", "expected a JSON object at the top level"),
        ('{"mcpServers": []}', "mcpServers must be a JSON object"),
    ],
)
def test_mcp_config_refuses_a_file_that_is_not_a_config_and_leaves_it_alone(
    mcpctl: Mcpctl, project: str, repo: Path, content: str, reason: str
) -> None:
    out = repo / ".mcp.json"
    out.write_text(content)
    result = mcpctl("mcp-config", project, "-o", str(out))
    assert result.exit_code == 3
    assert result.stderr.startswith(f"error: {out}: {reason}")
    assert len(result.stderr.splitlines()) == 1
    assert out.read_text() == content


def test_mcp_config_for_a_missing_project_exits_4_and_writes_nothing(
    mcpctl: Mcpctl, repo: Path
) -> None:
    out = repo / ".mcp.json"
    result = mcpctl("mcp-config", "ghost", "-o", str(out))
    assert result.exit_code == 4
    assert "ghost" in result.stderr
    assert not out.exists()


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (["--name", "has space"], "--name"),
        (["--name", "x" * 65], "--name"),
        (["--mcplocal-url", "ftp://127.0.0.1:7461"], "--mcplocal-url"),
        (["--mcplocal-url", "127.0.0.1:7461"], "--mcplocal-url"),
        (["--mcplocal-url", "http://user:pw@127.0.0.1:7461"], "--mcplocal-url"),
    ],
)
def test_mcp_config_bad_flags_exit_3_naming_the_flag(
    offline_mcpctl: Mcpctl, args: list[str], field: str
) -> None:
    result = offline_mcpctl("mcp-config", "tools", *args)
    assert result.exit_code == 3
    assert result.stderr.startswith(f"error: {field}: ")


def test_mcp_config_into_a_missing_directory_exits_3(
    mcpctl: Mcpctl, project: str, repo: Path
) -> None:
    out = repo / "nowhere" / ".mcp.json"
    result = mcpctl("mcp-config", project, "-o", str(out))
    assert result.exit_code == 3
    assert result.stderr == f"error: {out}: the directory {out.parent} does not exist\n"


def test_mcp_config_without_mcpd_exits_7(offline_mcpctl: Mcpctl) -> None:
    assert offline_mcpctl("mcp-config", "tools").exit_code == 7
