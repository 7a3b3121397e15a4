"""`mcpctl login`, `config get-contexts|use-context|current-context`, `auth whoami`, and how
flags, MCPCTL_SERVER / MCPCTL_TOKEN and contexts decide where the CLI goes."""

from __future__ import annotations

import stat
from pathlib import Path

import yaml

from tests.cli.conftest import ADMIN_PASSWORD, Mcpctl, base_env, unused_url
from tests.cli.samples import lines, ok, write
from tests.conftest import LiveMcpd

NO_ENV_TARGET = {"MCPCTL_SERVER": None, "MCPCTL_TOKEN": None}


def fresh_cli(tmp_path: Path) -> Mcpctl:
    """The CLI with only its config file: no MCPCTL_SERVER or MCPCTL_TOKEN."""
    config = tmp_path / "home" / ".config" / "mcpctl" / "config.yaml"
    return Mcpctl(config, base_env(config))


def token_file(live: LiveMcpd) -> Path:
    return live.settings.data_dir / "admin.token"


def test_login_with_a_token_file_writes_a_private_config_with_a_context(
    live_mcpd: LiveMcpd, tmp_path: Path
) -> None:
    mcpctl = fresh_cli(tmp_path)

    result = ok(
        mcpctl("login", "--server", live_mcpd.url, "--token-file", str(token_file(live_mcpd)))
    )

    assert result.stdout == (
        f"logged in to {live_mcpd.url} as admin (context 'default' in {mcpctl.config})\n"
    )
    assert stat.S_IMODE(mcpctl.config.stat().st_mode) == 0o600
    assert yaml.safe_load(mcpctl.config.read_text()) == {
        "current-context": "default",
        "contexts": [{"name": "default", "server": live_mcpd.url, "token": live_mcpd.token}],
    }
    assert ok(mcpctl("auth", "whoami")).stdout == "admin (admin)\n"
    assert ok(mcpctl("get", "servers")).stderr == "No resources found.\n"


def test_login_names_the_context_it_writes_and_makes_it_current(
    live_mcpd: LiveMcpd, tmp_path: Path
) -> None:
    mcpctl = fresh_cli(tmp_path)
    tokens = str(token_file(live_mcpd))
    ok(mcpctl("login", "--server", live_mcpd.url, "--token-file", tokens, "--context", "lab"))
    ok(
        mcpctl(
            "login", "--server", live_mcpd.url + "/", "--token-file", tokens, "--context", "prod"
        )
    )

    assert lines(ok(mcpctl("config", "get-contexts"))) == [
        "CURRENT   NAME   SERVER",
        f"          lab    {live_mcpd.url}",
        f"*         prod   {live_mcpd.url}",
    ]
    assert ok(mcpctl("config", "current-context")).stdout == "prod\n"
    assert ok(mcpctl("config", "use-context", "lab")).stdout == "switched to context 'lab'\n"
    assert ok(mcpctl("config", "current-context")).stdout == "lab\n"
    assert stat.S_IMODE(mcpctl.config.stat().st_mode) == 0o600


def test_login_defaults_to_mcpctl_server(live_mcpd: LiveMcpd, tmp_path: Path) -> None:
    mcpctl = fresh_cli(tmp_path)
    env = {"MCPCTL_SERVER": live_mcpd.url}
    ok(mcpctl("login", "--token-file", str(token_file(live_mcpd)), env=env))
    assert yaml.safe_load(mcpctl.config.read_text())["contexts"][0]["server"] == live_mcpd.url


def test_login_with_a_password_from_stdin_gets_a_new_token(
    password_mcpd: LiveMcpd, tmp_path: Path
) -> None:
    mcpctl = fresh_cli(tmp_path)

    result = ok(
        mcpctl(
            "login",
            "--server",
            password_mcpd.url,
            "--user",
            "admin",
            "--password-stdin",
            stdin=ADMIN_PASSWORD + "\n",
        )
    )

    assert result.stdout.startswith(f"logged in to {password_mcpd.url} as admin ")
    (context,) = yaml.safe_load(mcpctl.config.read_text())["contexts"]
    assert context["token"].startswith("mcpctl_")
    assert context["token"] != password_mcpd.token
    assert stat.S_IMODE(mcpctl.config.stat().st_mode) == 0o600
    assert ok(mcpctl("auth", "whoami")).stdout == "admin (admin)\n"


def test_login_with_a_wrong_password_exits_6_and_writes_nothing(
    password_mcpd: LiveMcpd, tmp_path: Path
) -> None:
    mcpctl = fresh_cli(tmp_path)
    result = mcpctl(
        "login",
        "--server",
        password_mcpd.url,
        "--user",
        "admin",
        "--password-stdin",
        stdin="guess\n",
    )
    assert result.exit_code == 6
    assert result.stderr == "error: wrong user name or password\n"
    assert not mcpctl.config.exists()


def test_login_with_a_token_mcpd_does_not_know_exits_6_and_writes_nothing(
    live_mcpd: LiveMcpd, tmp_path: Path
) -> None:
    mcpctl = fresh_cli(tmp_path)
    bogus = write(tmp_path, "bogus.token", "mcpctl_not-a-real-token\n")
    result = mcpctl("login", "--server", live_mcpd.url, "--token-file", str(bogus))
    assert result.exit_code == 6
    assert "invalid or expired token" in result.stderr
    assert not mcpctl.config.exists()


def test_login_with_an_unusable_token_file_exits_3(tmp_path: Path) -> None:
    mcpctl = fresh_cli(tmp_path)
    url = unused_url()
    missing = mcpctl("login", "--server", url, "--token-file", str(tmp_path / "nope"))
    assert (missing.exit_code, missing.stderr) == (
        3,
        f"error: --token-file {tmp_path / 'nope'}: No such file or directory\n",
    )
    empty = write(tmp_path, "empty.token", "\n")
    result = mcpctl("login", "--server", url, "--token-file", str(empty))
    assert (result.exit_code, result.stderr) == (
        3,
        f"error: --token-file {empty}: the file is empty\n",
    )


def test_login_needs_exactly_one_way_to_authenticate(tmp_path: Path) -> None:
    mcpctl = fresh_cli(tmp_path)
    neither = mcpctl("login", "--server", unused_url())
    assert neither.exit_code == 2
    assert "use either --token-file FILE or --user U --password-stdin" in neither.stderr
    no_stdin = mcpctl("login", "--user", "admin")
    assert no_stdin.exit_code == 2
    assert "--user needs --password-stdin" in no_stdin.stderr


def test_login_to_a_server_that_is_down_exits_7(tmp_path: Path) -> None:
    mcpctl = fresh_cli(tmp_path)
    url = unused_url()
    tokens = write(tmp_path, "t", "mcpctl_x\n")
    result = mcpctl("login", "--server", url, "--token-file", str(tokens))
    assert result.exit_code == 7
    assert f"cannot reach mcpd at {url}" in result.stderr
    assert not mcpctl.config.exists()


def test_use_context_of_an_unknown_name_exits_4_listing_the_contexts(
    live_mcpd: LiveMcpd, tmp_path: Path
) -> None:
    mcpctl = fresh_cli(tmp_path)
    ok(mcpctl("login", "--server", live_mcpd.url, "--token-file", str(token_file(live_mcpd))))
    result = mcpctl("config", "use-context", "staging")
    assert result.exit_code == 4
    assert result.stderr == "error: context 'staging' not found (contexts: default)\n"
    assert ok(mcpctl("config", "current-context")).stdout == "default\n"


def test_current_context_without_a_config_exits_4(tmp_path: Path) -> None:
    mcpctl = fresh_cli(tmp_path)
    result = mcpctl("config", "current-context")
    assert result.exit_code == 4
    assert "log in with `mcpctl login`" in result.stderr
    assert lines(ok(mcpctl("config", "get-contexts"))) == ["CURRENT   NAME   SERVER"]


def two_contexts(live: LiveMcpd, tmp_path: Path) -> tuple[Mcpctl, str]:
    """Contexts 'up' (the live mcpd) and 'down' (nothing listening, current)."""
    mcpctl = fresh_cli(tmp_path)
    down = unused_url()
    mcpctl.config.parent.mkdir(parents=True)
    mcpctl.config.write_text(
        yaml.safe_dump(
            {
                "current-context": "down",
                "contexts": [
                    {"name": "up", "server": live.url, "token": live.token},
                    {"name": "down", "server": down, "token": "mcpctl_stale"},
                ],
            }
        )
    )
    return mcpctl, down


def test_the_context_flag_picks_a_context_other_than_the_current_one(
    live_mcpd: LiveMcpd, tmp_path: Path
) -> None:
    mcpctl, down = two_contexts(live_mcpd, tmp_path)
    current = mcpctl("get", "servers")
    assert current.exit_code == 7
    assert f"cannot reach mcpd at {down}" in current.stderr
    assert ok(mcpctl("--context", "up", "auth", "whoami")).stdout == "admin (admin)\n"
    unknown = mcpctl("--context", "nope", "get", "servers")
    assert (unknown.exit_code, unknown.stderr) == (
        4,
        "error: context 'nope' not found (contexts: up, down)\n",
    )


def test_mcpctl_server_and_token_override_the_context(live_mcpd: LiveMcpd, tmp_path: Path) -> None:
    mcpctl, _ = two_contexts(live_mcpd, tmp_path)
    env = {"MCPCTL_SERVER": live_mcpd.url, "MCPCTL_TOKEN": live_mcpd.token}
    assert ok(mcpctl("auth", "whoami", env=env)).stdout == "admin (admin)\n"
    # The server alone comes from the env; the token still comes from the context.
    stale = mcpctl("auth", "whoami", env={"MCPCTL_SERVER": live_mcpd.url})
    assert stale.exit_code == 6
    # And a bad MCPCTL_TOKEN beats the good token of the context named on the command line.
    bad = mcpctl("--context", "up", "auth", "whoami", env={"MCPCTL_TOKEN": "mcpctl_bad"})
    assert bad.exit_code == 6


def test_server_and_token_flags_override_the_environment(
    mcpctl: Mcpctl, live_mcpd: LiveMcpd
) -> None:
    env = {"MCPCTL_SERVER": unused_url(), "MCPCTL_TOKEN": "mcpctl_bad"}
    flags = ["--server", live_mcpd.url, "--token", live_mcpd.token]
    assert ok(mcpctl(*flags, "auth", "whoami", env=env)).stdout == "admin (admin)\n"


def test_whoami_without_any_token_exits_6(live_mcpd: LiveMcpd, tmp_path: Path) -> None:
    result = fresh_cli(tmp_path)("auth", "whoami", env={"MCPCTL_SERVER": live_mcpd.url})
    assert result.exit_code == 6
    assert result.stderr == "error: missing bearer token: log in with `mcpctl login`\n"


def test_the_config_path_defaults_to_xdg_config_home(live_mcpd: LiveMcpd, tmp_path: Path) -> None:
    mcpctl = fresh_cli(tmp_path)
    env = {**NO_ENV_TARGET, "MCPCTL_CONFIG": None, "XDG_CONFIG_HOME": str(tmp_path / "xdg")}
    ok(
        mcpctl(
            "login", "--server", live_mcpd.url, "--token-file", str(token_file(live_mcpd)), env=env
        )
    )
    written = tmp_path / "xdg" / "mcpctl" / "config.yaml"
    assert stat.S_IMODE(written.stat().st_mode) == 0o600
    assert ok(mcpctl("auth", "whoami", env=env)).stdout == "admin (admin)\n"
