"""`create user`, `disable user`, `enable user`, and users in `get`."""

from __future__ import annotations

from pathlib import Path

from tests.cli.conftest import Mcpctl, base_env
from tests.cli.samples import lines, ok
from tests.conftest import LiveMcpd

PASSWORD = "alice's long password"


def login_as(live_mcpd: LiveMcpd, tmp_path: Path, user: str, password: str) -> Mcpctl:
    """A second CLI with its own config, logged in as ``user`` with ``password``."""
    config = tmp_path / user / "config.yaml"
    cli = Mcpctl(config, base_env(config))
    ok(
        cli(
            "login",
            "--server",
            live_mcpd.url,
            "--user",
            user,
            "--password-stdin",
            stdin=password + "\n",
        )
    )
    return cli


def test_a_user_created_with_password_stdin_logs_in(
    mcpctl: Mcpctl, live_mcpd: LiveMcpd, tmp_path: Path
) -> None:
    created = ok(
        mcpctl(
            *("create", "user", "alice", "--display-name", "Alice A", "--password-stdin"),
            stdin=PASSWORD + "\n",
        )
    )

    alice = login_as(live_mcpd, tmp_path, "alice", PASSWORD)

    assert created.stdout == "user/alice created\n"
    assert ok(alice("auth", "whoami")).stdout.startswith("alice")
    listed = lines(ok(mcpctl("get", "users")))
    assert listed[0].split() == ["NAME", "DISPLAY", "NAME", "DISABLED", "AGE"]
    assert [row.rsplit(maxsplit=1)[0].split() for row in listed[1:]] == [
        ["admin", "Administrator", "false"],
        ["alice", "Alice", "A", "false"],
    ]
    assert PASSWORD not in ok(mcpctl("get", "user", "alice", "-o", "yaml")).stdout


def test_a_user_created_without_a_password_cannot_log_in(
    mcpctl: Mcpctl, live_mcpd: LiveMcpd, tmp_path: Path
) -> None:
    ok(mcpctl("create", "user", "bob"))
    config = tmp_path / "bob" / "config.yaml"
    bob = Mcpctl(config, base_env(config))

    result = bob(
        "login", "--server", live_mcpd.url, "--user", "bob", "--password-stdin", stdin="\n"
    )

    assert result.exit_code == 6


def test_a_short_password_exits_3_naming_the_field(mcpctl: Mcpctl) -> None:
    result = mcpctl("create", "user", "alice", "--password-stdin", stdin="short\n")

    assert result.exit_code == 3
    assert result.stderr.startswith("error: spec.password: ")
    assert "short" not in result.stderr.removeprefix("error: spec.password: ")
    assert mcpctl("get", "user", "alice").exit_code == 4


def test_disable_stops_a_user_at_once_and_enable_lets_them_back(
    mcpctl: Mcpctl, live_mcpd: LiveMcpd, tmp_path: Path
) -> None:
    ok(mcpctl("create", "user", "alice", "--password-stdin", stdin=PASSWORD + "\n"))
    alice = login_as(live_mcpd, tmp_path, "alice", PASSWORD)

    disabled = ok(mcpctl("disable", "user", "alice"))
    refused = alice("auth", "whoami")
    again = ok(mcpctl("disable", "usr", "alice"))
    shown = ok(mcpctl("get", "users", "alice")).stdout
    enabled = ok(mcpctl("enable", "user", "alice"))

    assert disabled.stdout == "user/alice disabled\n"
    assert refused.exit_code == 6
    assert again.stdout == "user/alice was already disabled\n"
    assert "true" in shown
    assert enabled.stdout == "user/alice enabled\n"
    assert ok(alice("auth", "whoami")).stdout.startswith("alice")


def test_disabling_the_last_user_with_full_access_exits_5(mcpctl: Mcpctl) -> None:
    result = mcpctl("disable", "user", "admin")

    assert result.exit_code == 5
    assert "full access" in result.stderr
    assert "false" in ok(mcpctl("get", "user", "admin")).stdout


def test_disable_of_another_kind_or_a_missing_user_is_refused(mcpctl: Mcpctl) -> None:
    other_kind = mcpctl("disable", "server", "time")
    missing = mcpctl("enable", "user", "nobody")

    assert other_kind.exit_code == 2
    assert "only users" in other_kind.stderr
    assert missing.exit_code == 4
