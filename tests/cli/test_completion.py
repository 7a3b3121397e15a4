"""`mcpctl completion SHELL` and the completions the shells get back."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml
from click.shell_completion import BashComplete

from mcpctl.cli import completion_names
from mcpctl.cli.main import cli
from tests.cli.conftest import Mcpctl
from tests.cli.samples import STACK, ok, write
from tests.conftest import LiveMcpd


@pytest.mark.parametrize(
    ("shell", "marker"),
    [
        ("bash", "complete -o nosort -F _mcpctl_completion mcpctl"),
        ("zsh", "#compdef mcpctl"),
        ("fish", "complete --no-files --command mcpctl"),
    ],
)
def test_completion_prints_a_script_for_the_shell(
    offline_mcpctl: Mcpctl, shell: str, marker: str
) -> None:
    result = offline_mcpctl("completion", shell)
    assert result.exit_code == 0
    assert marker in result.stdout
    assert f"_MCPCTL_COMPLETE={shell}_complete" in result.stdout


def complete(mcpctl: Mcpctl, shell: str, words: str) -> list[str]:
    """What the shell script would get back for the command line ``words``."""
    index = len(words.split()) - (0 if words.endswith(" ") else 1)
    # bash and zsh pass the index of the word under the cursor; fish passes the word itself.
    current = words.split()[index] if shell == "fish" and index < len(words.split()) else ""
    env = {
        "_MCPCTL_COMPLETE": f"{shell}_complete",
        "COMP_WORDS": words,
        "COMP_CWORD": current if shell == "fish" else str(index),
    }
    result = mcpctl(env=env)
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    # Nothing to offer comes back as one empty line.
    return [line for line in result.stdout.splitlines() if line]


def test_bash_completes_kind_names_after_get(offline_mcpctl: Mcpctl) -> None:
    assert complete(offline_mcpctl, "bash", "mcpctl get se") == ["plain,secrets", "plain,servers"]
    assert complete(offline_mcpctl, "bash", "mcpctl get ") == [
        "plain,secrets",
        "plain,templates",
        "plain,servers",
        "plain,llms",
        "plain,projects",
        "plain,agents",
        "plain,prompts",
        "plain,personalities",
        "plain,users",
        "plain,groups",
        "plain,rbacdefinitions",
    ]


@pytest.mark.parametrize("command", ["describe", "delete", "edit"])
def test_bash_completes_kind_names_for_other_commands(offline_mcpctl: Mcpctl, command: str) -> None:
    assert complete(offline_mcpctl, "bash", f"mcpctl {command} pro") == [
        "plain,projects",
        "plain,prompts",
    ]


def test_bash_completes_command_names(offline_mcpctl: Mcpctl) -> None:
    assert complete(offline_mcpctl, "bash", "mcpctl de") == ["plain,delete", "plain,describe"]
    assert complete(offline_mcpctl, "bash", "mcpctl config use") == ["plain,use-context"]


def test_zsh_and_fish_complete_kind_names(offline_mcpctl: Mcpctl) -> None:
    assert complete(offline_mcpctl, "zsh", "mcpctl get tem") == ["plain", "templates", "_"]
    assert complete(offline_mcpctl, "fish", "mcpctl get tem") == ["plain,templates"]


def test_completion_machinery_offers_kinds_for_the_get_argument() -> None:
    completer = BashComplete(cli, {}, "mcpctl", "_MCPCTL_COMPLETE")
    values = [c.value for c in completer.get_completions(["get"], "p")]
    assert values == ["projects", "prompts", "personalities"]


# -- object names from mcpd --------------------------------------------------------------------


def plain(*values: str) -> list[str]:
    return [f"plain,{v}" for v in values]


@pytest.fixture
def stack(mcpctl: Mcpctl, tmp_path: Path) -> None:
    """servers clock and time, template timekeeper, project tools, secret creds, prompt greeting"""
    ok(mcpctl("apply", "-f", str(write(tmp_path, "stack.yaml", STACK))))


@pytest.mark.parametrize("command", ["describe", "get", "delete", "edit"])
def test_names_of_the_kind_are_offered_after_it(mcpctl: Mcpctl, stack: None, command: str) -> None:
    assert complete(mcpctl, "bash", f"mcpctl {command} server ") == plain("clock", "time")
    assert complete(mcpctl, "bash", f"mcpctl {command} servers t") == plain("time")
    assert complete(mcpctl, "bash", f"mcpctl {command} tpl ") == plain("timekeeper")
    assert complete(mcpctl, "bash", f"mcpctl {command} server x") == []


@pytest.mark.parametrize("command", ["describe", "get", "delete", "edit"])
def test_kind_slash_completes_to_kind_slash_name(mcpctl: Mcpctl, stack: None, command: str) -> None:
    assert complete(mcpctl, "bash", f"mcpctl {command} server/") == plain(
        "server/clock", "server/time"
    )
    assert complete(mcpctl, "bash", f"mcpctl {command} projects/t") == plain("projects/tools")
    assert complete(mcpctl, "bash", f"mcpctl {command} nokind/") == []


def test_get_and_delete_leave_out_names_already_given(mcpctl: Mcpctl, stack: None) -> None:
    assert complete(mcpctl, "bash", "mcpctl get servers clock ") == plain("time")
    assert complete(mcpctl, "bash", "mcpctl delete server time ") == plain("clock")
    assert complete(mcpctl, "bash", "mcpctl get server/clock server/t") == plain("server/time")
    # several kinds take no names; `get audit` has none to offer
    assert complete(mcpctl, "bash", "mcpctl get servers,projects ") == []
    assert complete(mcpctl, "bash", "mcpctl get audit ") == []


def test_describe_takes_one_name_only(mcpctl: Mcpctl, stack: None) -> None:
    assert complete(mcpctl, "bash", "mcpctl describe server clock ") == []


def test_create_completes_templates_and_servers(mcpctl: Mcpctl, stack: None) -> None:
    assert complete(mcpctl, "bash", "mcpctl create server x --from-template ") == plain(
        "timekeeper"
    )
    assert complete(mcpctl, "bash", "mcpctl create server x --from-template=ti") == plain(
        "timekeeper"
    )
    assert complete(mcpctl, "bash", "mcpctl create project x --server ") == plain("clock", "time")
    assert complete(mcpctl, "bash", "mcpctl create project x --server c") == plain("clock")
    assert complete(mcpctl, "bash", "mcpctl create project x --server clock --server ") == plain(
        "time"
    )


def test_zsh_and_fish_complete_names(mcpctl: Mcpctl, stack: None) -> None:
    assert complete(mcpctl, "zsh", "mcpctl describe server c") == ["plain", "clock", "_"]
    assert complete(mcpctl, "fish", "mcpctl get servers t") == plain("time")


def test_names_come_from_the_server_and_token_flags_on_the_line(
    mcpctl: Mcpctl, live_mcpd: LiveMcpd, stack: None
) -> None:
    bare = Mcpctl(mcpctl.config, {**mcpctl.env, "MCPCTL_SERVER": None, "MCPCTL_TOKEN": None})
    flags = f"mcpctl --server {live_mcpd.url} --token {live_mcpd.token}"
    assert complete(bare, "bash", f"{flags} get servers ") == plain("clock", "time")
    assert complete(bare, "bash", f"{flags} describe server c") == plain("clock")
    # without the token flag the request is refused: nothing offered, nothing printed
    assert complete(bare, "bash", f"mcpctl --server {live_mcpd.url} describe server ") == []


def write_config(path: Path, current: str | None, **contexts: tuple[str, str]) -> None:
    path.write_text(
        yaml.safe_dump(
            {
                "current-context": current,
                "contexts": [
                    {"name": name, "server": server, "token": token}
                    for name, (server, token) in contexts.items()
                ],
            }
        )
    )


def test_names_come_from_the_context_flag_or_the_current_context(
    mcpctl: Mcpctl, live_mcpd: LiveMcpd, stack: None, tmp_path: Path
) -> None:
    config = tmp_path / "contexts.yaml"
    offline = f"http://127.0.0.1:{_unused_port()}"
    write_config(
        config, "down", live=(live_mcpd.url, live_mcpd.token), down=(offline, live_mcpd.token)
    )
    env = {**mcpctl.env, "MCPCTL_CONFIG": str(config), "MCPCTL_SERVER": None, "MCPCTL_TOKEN": None}
    cli_ = Mcpctl(config, env)
    assert complete(cli_, "bash", "mcpctl get servers ") == []  # the current context is down
    assert complete(cli_, "bash", "mcpctl --context live get servers ") == plain("clock", "time")
    assert complete(cli_, "bash", "mcpctl --context nosuch get servers ") == []


def test_a_bad_token_completes_nothing_quietly(mcpctl: Mcpctl, stack: None) -> None:
    wrong = Mcpctl(mcpctl.config, {**mcpctl.env, "MCPCTL_TOKEN": "not-a-token"})
    assert complete(wrong, "bash", "mcpctl describe server ") == []
    assert complete(wrong, "bash", "mcpctl get server/") == []


@pytest.mark.parametrize(
    "words",
    [
        "mcpctl describe server ",
        "mcpctl get servers c",
        "mcpctl get server/",
        "mcpctl delete server ",
        "mcpctl edit server ",
        "mcpctl create server x --from-template ",
        "mcpctl create project x --server ",
    ],
)
def test_offline_completes_no_names_and_prints_nothing(offline_mcpctl: Mcpctl, words: str) -> None:
    assert complete(offline_mcpctl, "bash", words) == []


def test_offline_still_completes_kinds(offline_mcpctl: Mcpctl) -> None:
    assert complete(offline_mcpctl, "bash", "mcpctl describe tem") == plain("templates")


def test_use_context_and_the_context_flag_complete_context_names(
    offline_mcpctl: Mcpctl,
) -> None:
    assert complete(offline_mcpctl, "bash", "mcpctl config use-context ") == []  # no config yet
    write_config(offline_mcpctl.config, "dev", dev=("http://dev", "t"), prod=("http://prod", "t"))
    assert complete(offline_mcpctl, "bash", "mcpctl config use-context ") == plain("dev", "prod")
    assert complete(offline_mcpctl, "bash", "mcpctl config use-context p") == plain("prod")
    assert complete(offline_mcpctl, "bash", "mcpctl --context d") == plain("dev")


def test_a_broken_config_completes_nothing_quietly(offline_mcpctl: Mcpctl) -> None:
    offline_mcpctl.config.write_text("contexts: [oops\n")
    assert complete(offline_mcpctl, "bash", "mcpctl config use-context ") == []
    assert complete(offline_mcpctl, "bash", "mcpctl get servers ") == []


# -- one short request -------------------------------------------------------------------------


def _unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.fixture
def recording_server() -> Iterator[tuple[str, list[tuple[str, str | None]]]]:
    """A fake mcpd that records each request (path, Authorization) and always answers one name
    with a continue token: completion must not follow it."""
    seen: list[tuple[str, str | None]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append((self.path, self.headers.get("Authorization")))
            body = json.dumps(
                {"items": [{"metadata": {"name": "first"}}], "metadata": {"continue": "more"}}
            ).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_completion_sends_one_list_request_of_up_to_500_names(
    offline_mcpctl: Mcpctl, recording_server: tuple[str, list[tuple[str, str | None]]]
) -> None:
    url, seen = recording_server
    words = f"mcpctl --server {url} --token tok get servers "
    assert complete(offline_mcpctl, "bash", words) == plain("first")
    assert seen == [("/api/v1/servers?limit=500", "Bearer tok")]


def test_a_server_that_does_not_answer_times_out_quickly(
    offline_mcpctl: Mcpctl, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(completion_names, "TIMEOUT", 0.2)
    with socket.socket() as silent:  # accepts connections (the backlog), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        started = time.monotonic()
        assert complete(offline_mcpctl, "bash", f"mcpctl --server {url} describe server ") == []
        assert 0.15 <= time.monotonic() - started < 2  # waited for the timeout, once
