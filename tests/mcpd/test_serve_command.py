"""`mcpd serve` start-up problems are one clear line and a documented exit code."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def serve(
    tmp_path: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "mcpctl.mcpd",
            "serve",
            "--port",
            "1",
            "--data-dir",
            str(tmp_path / "data"),
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, **(env or {})},
    )


def test_an_unreachable_database_is_one_line_naming_it_and_exit_7(tmp_path: Path) -> None:
    result = serve(tmp_path, "--database-url", "postgresql://nobody:hunter2@127.0.0.1:1/x")

    assert result.returncode == 7
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(
        "mcpd: cannot open the database postgresql://nobody:***@127.0.0.1:1/x"
    )
    assert "hunter2" not in result.stderr


def test_a_malformed_secret_key_is_one_line_and_exit_3(tmp_path: Path) -> None:
    result = serve(tmp_path, env={"MCPD_SECRET_KEY": "short"})

    assert result.returncode == 3
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("mcpd: MCPD_SECRET_KEY: ")


def test_a_bad_log_level_is_a_usage_error(tmp_path: Path) -> None:
    result = serve(tmp_path, "--log-level", "loud")

    assert result.returncode == 2
    assert "--log-level" in result.stderr
