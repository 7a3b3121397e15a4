"""`get tokens`, `delete token`, `auth change-password` and `logout`."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from click.testing import Result

from tests.cli.conftest import ADMIN_PASSWORD, Mcpctl, base_env
from tests.cli.samples import lines, ok
from tests.conftest import LiveMcpd

NEW_PASSWORD = "an even better password"


def logged_in(live: LiveMcpd, tmp_path: Path) -> Mcpctl:
    """The CLI with only a config file, logged in with the admin password (a 30-day token)."""
    config = tmp_path / "home" / "config.yaml"
    mcpctl = Mcpctl(config, base_env(config))
    ok(
        mcpctl(
            "login",
            "--server",
            live.url,
            "--user",
            "admin",
            "--password-stdin",
            stdin=ADMIN_PASSWORD + "\n",
        )
    )
    return mcpctl


def test_get_tokens_lists_them_and_marks_the_current_one(
    password_mcpd: LiveMcpd, tmp_path: Path
) -> None:
    mcpctl = logged_in(password_mcpd, tmp_path)

    table = lines(ok(mcpctl("get", "tokens")))
    listed = json.loads(ok(mcpctl("get", "tokens", "-o", "json")).stdout)
    everyone = yaml.safe_load(ok(mcpctl("get", "tokens", "--all", "-o", "yaml")).stdout)

    assert table[0].split() == ["ID", "USER", "DESCRIPTION", "CREATED", "EXPIRES", "CURRENT"]
    assert len(table) == 3
    assert table[2].endswith("*")
    assert not table[1].endswith("*")
    assert "never" in table[1]
    assert listed["kind"] == "TokenList"
    assert [t["current"] for t in listed["items"]] == [False, True]
    assert len(everyone["items"]) == 2
    assert "token" not in listed["items"][0]


def test_delete_token_revokes_it_at_once(password_mcpd: LiveMcpd, tmp_path: Path) -> None:
    mcpctl = logged_in(password_mcpd, tmp_path)
    items = json.loads(ok(mcpctl("get", "tokens", "-o", "json")).stdout)["items"]
    (current,) = [t["id"] for t in items if t["current"]]

    result = ok(mcpctl("delete", "token", current))
    after = mcpctl("auth", "whoami")

    assert result.stdout == f"token/{current} deleted\n"
    assert after.exit_code == 6
    assert "invalid or expired token" in after.stderr


def test_delete_an_unknown_token_exits_4(password_mcpd: LiveMcpd, tmp_path: Path) -> None:
    mcpctl = logged_in(password_mcpd, tmp_path)
    assert mcpctl("delete", "token/nope").exit_code == 4


def test_change_password_reads_the_current_and_the_new_one_from_stdin(
    password_mcpd: LiveMcpd, tmp_path: Path
) -> None:
    mcpctl = logged_in(password_mcpd, tmp_path)

    wrong = mcpctl("auth", "change-password", "--password-stdin", stdin=f"nope\n{NEW_PASSWORD}\n")
    short = mcpctl("auth", "change-password", "--password-stdin", stdin=f"{ADMIN_PASSWORD}\nx\n")
    changed = mcpctl(
        "auth", "change-password", "--password-stdin", stdin=f"{ADMIN_PASSWORD}\n{NEW_PASSWORD}\n"
    )

    assert wrong.exit_code == 6
    assert short.exit_code == 3
    assert "new" in short.stderr
    assert ok(changed).stdout == "password changed\n"
    assert logged_in_again(password_mcpd, tmp_path, NEW_PASSWORD).exit_code == 0


def logged_in_again(live: LiveMcpd, tmp_path: Path, password: str) -> Result:
    config = tmp_path / "other" / "config.yaml"
    mcpctl = Mcpctl(config, base_env(config))
    return mcpctl(
        "login", "--server", live.url, "--user", "admin", "--password-stdin", stdin=password + "\n"
    )


def test_logout_revokes_the_token_and_forgets_it(password_mcpd: LiveMcpd, tmp_path: Path) -> None:
    mcpctl = logged_in(password_mcpd, tmp_path)
    token = yaml.safe_load(mcpctl.config.read_text())["contexts"][0]["token"]

    result = ok(mcpctl("logout"))
    with_old_token = mcpctl("auth", "whoami", env={"MCPCTL_TOKEN": token})

    assert "revoked the token" in result.stdout
    assert yaml.safe_load(mcpctl.config.read_text())["contexts"] == [
        {"name": "default", "server": password_mcpd.url}
    ]
    assert with_old_token.exit_code == 6
    assert mcpctl("logout").exit_code == 4
