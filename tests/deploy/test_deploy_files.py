"""deploy/: the systemd units and the compose stack are valid and say what docs/deploy.md says."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import IN_CI

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
BIN = Path(sys.executable).parent


def tool(name: str) -> str:
    """A program the check needs: missing, the test skips loudly (in CI it fails)."""
    path = shutil.which(name) or shutil.which(name, path=str(BIN))
    if path is None:
        message = f"{name} is not installed"
        if IN_CI:
            pytest.fail("CI must check the deploy files: " + message)
        pytest.skip("!!! SKIPPING DEPLOY CHECK: " + message)
    return path


def unit_with_exec(unit: str, exec_path: str, tmp_path: Path) -> Path:
    """The unit with its program replaced by this checkout's installed one: `verify` insists
    on an executable ExecStart, and this proves the command line is one the program takes."""
    text = (DEPLOY / "systemd" / unit).read_text()
    program = Path(exec_path).name
    real = BIN / program
    assert real.is_file(), real
    replaced, count = re.subn(
        rf"^ExecStart={re.escape(exec_path)} ", f"ExecStart={real} ", text, flags=re.M
    )
    assert count == 1, f"{unit}: ExecStart is not {exec_path}"
    path = tmp_path / unit
    path.write_text(replaced)
    return path


def verify(unit: Path) -> None:
    result = subprocess.run(
        [tool("systemd-analyze"), "verify", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    # Unknown keys and bad values are only warnings: any line about our file is a failure.
    assert result.returncode == 0, result.stderr
    assert str(unit) not in result.stderr + result.stdout, result.stderr


@pytest.mark.parametrize(
    ("unit", "exec_path"),
    [("mcpd.service", "/opt/mcpctl/bin/mcpd"), ("mcplocal.service", "%h/.local/bin/mcplocal")],
)
def test_systemd_units_pass_systemd_analyze_verify(
    unit: str, exec_path: str, tmp_path: Path
) -> None:
    verify(unit_with_exec(unit, exec_path, tmp_path))


def test_the_verify_check_catches_a_misspelt_key(tmp_path: Path) -> None:
    unit = unit_with_exec("mcpd.service", "/opt/mcpctl/bin/mcpd", tmp_path)
    unit.write_text(unit.read_text().replace("Restart=on-failure", "Restrat=on-failure"))
    with pytest.raises(AssertionError, match="Restrat"):
        verify(unit)


def systemd_settings(unit: str) -> dict[str, list[str]]:
    settings: dict[str, list[str]] = {}
    for line in (DEPLOY / "systemd" / unit).read_text().splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, value = line.split("=", 1)
            settings.setdefault(key, []).append(value)
    return settings


def test_mcpd_unit_runs_as_its_own_user_with_a_state_dir_and_an_env_file() -> None:
    unit = systemd_settings("mcpd.service")
    assert unit["User"] == ["mcpd"]
    assert unit["StateDirectory"] == ["mcpd"]
    assert "MCPD_DATA_DIR=/var/lib/mcpd" in unit["Environment"][0].split()
    assert unit["EnvironmentFile"] == ["-/etc/mcpd/mcpd.env"]
    assert unit["ExecStart"] == ["/opt/mcpctl/bin/mcpd serve"]
    assert unit["KillMode"] == ["mixed"]  # leftovers in the cgroup die with the service
    mcplocal = systemd_settings("mcplocal.service")
    assert mcplocal["WantedBy"] == ["default.target"]  # a user service
    assert "User" not in mcplocal


def test_the_env_file_sets_nothing_and_names_only_real_settings() -> None:
    from mcpctl.mcpd.settings import Settings

    names = set()
    for line in (DEPLOY / "systemd" / "mcpd.env").read_text().splitlines():
        assert not line or line.startswith("#"), f"mcpd.env sets a value: {line}"
        if match := re.match(r"#(MCPD_[A-Z_]+)=", line):
            names.add(match.group(1))
    known = {f"MCPD_{field.upper()}" for field in Settings.model_fields}
    assert names
    assert names <= known, names - known


def test_sysusers_file_creates_the_mcpd_user(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    result = subprocess.run(
        [tool("systemd-sysusers"), f"--root={root}", str(DEPLOY / "systemd" / "mcpd.sysusers")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    (entry,) = [line for line in (root / "etc" / "passwd").read_text().splitlines() if line]
    name, _, _, _, _, home, shell = entry.split(":")
    assert (name, home, shell) == ("mcpd", "/var/lib/mcpd", "/usr/sbin/nologin")


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((DEPLOY / "compose" / "compose.yaml").read_text())
    return data


def test_compose_file_is_valid_against_the_compose_spec_schema() -> None:
    result = subprocess.run(
        [
            tool("check-jsonschema"),
            "--builtin-schema",
            "vendor.compose-spec",
            str(DEPLOY / "compose" / "compose.yaml"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_runs_mcpd_on_postgresql_once_it_is_healthy() -> None:
    services = compose()["services"]
    assert set(services) == {"mcpd", "postgres"}
    mcpd, postgres = services["mcpd"], services["postgres"]
    assert mcpd["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])
    env = mcpd["environment"]
    assert env["MCPD_DATABASE_URL"].startswith("postgresql://mcpd:")
    assert env["MCPD_DATABASE_URL"].endswith("@postgres:5432/mcpd")
    assert "mcpd-data:/var/lib/mcpd" in mcpd["volumes"]
    assert mcpd["ports"] == ["${MCPD_PUBLISH:-127.0.0.1:7460}:7460"]


def test_compose_holds_no_secret_and_requires_the_ones_it_needs() -> None:
    text = (DEPLOY / "compose" / "compose.yaml").read_text()
    services = compose()["services"]
    password = services["postgres"]["environment"]["POSTGRES_PASSWORD"]
    assert password.startswith("${POSTGRES_PASSWORD:?")
    assert services["mcpd"]["environment"]["MCPD_SECRET_KEY"].startswith("${MCPD_SECRET_KEY:?")
    assert "MCPD_ADMIN_PASSWORD" not in text
    # Every variable the stack uses is documented in its header (Portainer shows no docs).
    used = set(re.findall(r"\$\{([A-Z_]+)", text))
    header = "\n".join(line for line in text.splitlines() if line.startswith("#"))
    assert used <= set(re.findall(r"#\s+([A-Z_]+)\s", header)), used
