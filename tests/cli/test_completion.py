"""`mcpctl completion SHELL` and the completions the shells get back."""

from __future__ import annotations

import pytest
from click.shell_completion import BashComplete

from mcpctl.cli.main import cli
from tests.cli.conftest import Mcpctl


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
    return result.stdout.splitlines()


def test_bash_completes_kind_names_after_get(offline_mcpctl: Mcpctl) -> None:
    assert complete(offline_mcpctl, "bash", "mcpctl get se") == ["plain,secrets", "plain,servers"]
    assert complete(offline_mcpctl, "bash", "mcpctl get ") == [
        "plain,secrets",
        "plain,templates",
        "plain,servers",
        "plain,projects",
        "plain,prompts",
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
    assert values == ["projects", "prompts"]
