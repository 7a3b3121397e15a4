"""CLI fixtures: `mcpctl` runs the real click app (CliRunner) against a live mcpd.

Every invocation gets a private config file (MCPCTL_CONFIG under tmp_path) and a clean
environment: MCPCTL_SERVER / MCPCTL_TOKEN point at the test's mcpd unless a test says otherwise
(``env={"MCPCTL_SERVER": None}`` removes a variable for one call).
"""

from __future__ import annotations

import socket
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from pydantic import SecretStr

from mcpctl.cli.main import cli
from mcpctl.mcpd.settings import Settings
from tests.conftest import LiveMcpd, serve_mcpd

ADMIN_PASSWORD = "correct horse battery staple"

# Variables of the developer's shell that would leak into the CLI under test.
_SCRUBBED = (
    "MCPCTL_SERVER",
    "MCPCTL_TOKEN",
    "MCPCTL_EDITOR",
    "VISUAL",
    "EDITOR",
    "_MCPCTL_COMPLETE",
    "COMP_WORDS",
    "COMP_CWORD",
)


@dataclass
class Mcpctl:
    """Invoke ``mcpctl ARGS...`` in process; ``stdin`` feeds `-f -` and `--password-stdin`."""

    config: Path
    env: dict[str, str | None] = field(default_factory=dict)

    def __call__(
        self,
        *args: str,
        stdin: str | None = None,
        env: Mapping[str, str | None] | None = None,
    ) -> Result:
        runner = CliRunner()
        return runner.invoke(
            cli,
            list(args),
            input=stdin,
            env={**self.env, **(env or {})},
            prog_name="mcpctl",
        )


def base_env(config: Path) -> dict[str, str | None]:
    env: dict[str, str | None] = dict.fromkeys(_SCRUBBED)
    env["MCPCTL_CONFIG"] = str(config)
    return env


@pytest.fixture
def mcpctl(live_mcpd: LiveMcpd, tmp_path: Path) -> Mcpctl:
    """The CLI, pointed at the live mcpd through MCPCTL_SERVER and MCPCTL_TOKEN."""
    config = tmp_path / "config.yaml"
    env = base_env(config)
    env["MCPCTL_SERVER"] = live_mcpd.url
    env["MCPCTL_TOKEN"] = live_mcpd.token
    return Mcpctl(config, env)


def unused_url() -> str:
    """A loopback URL that nothing listens on (the port is bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture
def offline_mcpctl(tmp_path: Path) -> Mcpctl:
    """The CLI with no mcpd behind it: for usage errors, config commands, completion."""
    config = tmp_path / "config.yaml"
    env = base_env(config)
    env["MCPCTL_SERVER"] = unused_url()
    return Mcpctl(config, env)


@pytest.fixture
def edit_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where `mcpctl edit` puts its temporary files during the test."""
    directory = tmp_path / "edits"
    directory.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(directory))
    return directory


@pytest.fixture
def password_mcpd(settings: Settings) -> Iterator[LiveMcpd]:
    """A live mcpd whose bootstrap admin has the password ADMIN_PASSWORD."""
    with_password = settings.model_copy(update={"admin_password": SecretStr(ADMIN_PASSWORD)})
    with serve_mcpd(with_password) as live:
        yield live
