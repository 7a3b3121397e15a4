"""`mcpctl edit KIND NAME` with a real editor process (a small Python script as MCPCTL_EDITOR)."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.cli.conftest import Mcpctl
from tests.cli.samples import load_yaml, ok, server, write

Editor = Callable[[str], dict[str, str]]

# The editor scripts run as separate processes; they get the file to edit as argv[1].
_PRELUDE = """\
import json, os, sys, urllib.request
path = sys.argv[1]
text = open(path).read()

def save(new_text):
    with open(path, "w") as fh:
        fh.write(new_text)

def call_mcpd(method, url_path, body=None):
    request = urllib.request.Request(
        os.environ["MCPCTL_SERVER"] + url_path,
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={
            "Authorization": "Bearer " + os.environ["MCPCTL_TOKEN"],
            "Content-Type": "application/json",
        },
    )
    urllib.request.urlopen(request, timeout=10).read()
"""


@pytest.fixture
def editor(tmp_path: Path) -> Editor:
    """Write an editor script with ``body`` and return the env that makes `edit` run it."""
    count = 0

    def make(body: str) -> dict[str, str]:
        nonlocal count
        count += 1
        script = tmp_path / f"editor_{count}.py"
        script.write_text(_PRELUDE + textwrap.dedent(body))
        return {"MCPCTL_EDITOR": f"{sys.executable} {script}"}

    return make


@pytest.fixture
def web(mcpctl: Mcpctl, tmp_path: Path) -> None:
    ok(mcpctl("apply", "-f", str(write(tmp_path, "web.yaml", server("web", "python3")))))


def kept_files(edit_dir: Path) -> list[Path]:
    return sorted(edit_dir.iterdir())


def test_edit_applies_the_saved_change_and_removes_the_temp_file(
    mcpctl: Mcpctl, editor: Editor, edit_dir: Path, web: None
) -> None:
    env = editor('save(text.replace("command: python3", "command: node"))')

    result = ok(mcpctl("edit", "server", "web", env=env))

    assert result.stdout == "server/web edited\n"
    stored = load_yaml(mcpctl("get", "server", "web", "-o", "yaml"))
    assert (stored["spec"]["command"], stored["metadata"]["resourceVersion"]) == ("node", "2")
    assert kept_files(edit_dir) == []


def test_edit_shows_the_object_as_yaml_with_its_resource_version(
    mcpctl: Mcpctl, editor: Editor, edit_dir: Path, web: None, tmp_path: Path
) -> None:
    seen = tmp_path / "seen.yaml"
    env = editor(f"open({str(seen)!r}, 'w').write(text)")
    ok(mcpctl("edit", "server/web", env=env))
    text = seen.read_text()
    assert text.startswith("# Edit the object below and save to apply it;")
    assert "kind: Server\n" in text
    assert "  resourceVersion: '1'\n" in text
    assert "  command: python3\n" in text


def test_edit_with_an_unchanged_file_is_cancelled(
    mcpctl: Mcpctl, editor: Editor, edit_dir: Path, web: None
) -> None:
    result = ok(mcpctl("edit", "server", "web", env=editor("pass")))
    assert result.stdout == "Edit cancelled, no changes made.\n"
    assert load_yaml(mcpctl("get", "server", "web", "-o", "yaml"))["metadata"][
        "resourceVersion"
    ] == ("1")
    assert kept_files(edit_dir) == []


def test_edit_that_loses_a_race_exits_5_and_keeps_the_file(
    mcpctl: Mcpctl, editor: Editor, edit_dir: Path, web: None
) -> None:
    # While the user edits, someone else applies a change to the same object.
    env = editor(
        """\
        call_mcpd("PUT", "/api/v1/servers/web", {
            "apiVersion": "mcpctl/v1", "kind": "Server",
            "metadata": {"name": "web"}, "spec": {"command": "deno"},
        })
        save(text.replace("command: python3", "command: node"))
        """
    )

    result = mcpctl("edit", "server", "web", env=env)

    assert result.exit_code == 5
    (kept,) = kept_files(edit_dir)
    assert result.stderr == (
        "error: server/web: resourceVersion 1 is stale (it is at 2); "
        "get it again and reapply your change\n"
        f"your edits are kept in {kept}\n"
    )
    assert "command: node" in kept.read_text()
    assert load_yaml(mcpctl("get", "server", "web", "-o", "yaml"))["spec"]["command"] == "deno"


def test_edit_of_an_object_deleted_meanwhile_exits_5_and_keeps_the_file(
    mcpctl: Mcpctl, editor: Editor, edit_dir: Path, web: None
) -> None:
    env = editor(
        """\
        call_mcpd("DELETE", "/api/v1/servers/web")
        save(text.replace("command: python3", "command: node"))
        """
    )
    result = mcpctl("edit", "server", "web", env=env)
    assert result.exit_code == 5
    (kept,) = kept_files(edit_dir)
    assert "resourceVersion 1 is stale (it does not exist)" in result.stderr
    assert result.stderr.endswith(f"your edits are kept in {kept}\n")


def test_edit_saving_invalid_yaml_exits_3_and_keeps_the_file(
    mcpctl: Mcpctl, editor: Editor, edit_dir: Path, web: None
) -> None:
    env = editor('save(text.replace("command: python3", "command: [python3"))')
    result = mcpctl("edit", "server", "web", env=env)
    assert result.exit_code == 3
    (kept,) = kept_files(edit_dir)
    first, second = result.stderr.splitlines()
    assert first.startswith(f"error: {kept}:")
    assert "invalid YAML" in first
    assert second == f"your edits are kept in {kept}"
    assert load_yaml(mcpctl("get", "server", "web", "-o", "yaml"))["spec"]["command"] == "python3"


def test_edit_saving_an_invalid_spec_exits_3_naming_the_field(
    mcpctl: Mcpctl, editor: Editor, edit_dir: Path, web: None
) -> None:
    env = editor('save(text.replace("command: python3", "command: python3\\n  colour: red", 1))')
    result = mcpctl("edit", "server", "web", env=env)
    assert result.exit_code == 3
    (kept,) = kept_files(edit_dir)
    assert result.stderr == (
        f"error: spec.colour: Extra inputs are not permitted\nyour edits are kept in {kept}\n"
    )


def test_edit_renaming_the_object_exits_3_and_keeps_the_file(
    mcpctl: Mcpctl, editor: Editor, edit_dir: Path, web: None
) -> None:
    env = editor('save(text.replace("name: web", "name: web2"))')
    result = mcpctl("edit", "server", "web", env=env)
    assert result.exit_code == 3
    (kept,) = kept_files(edit_dir)
    assert result.stderr == (
        f"error: {kept}: keep exactly one Server named 'web'\nyour edits are kept in {kept}\n"
    )
    assert mcpctl("get", "server", "web2").exit_code == 4


def test_edit_when_the_editor_fails_keeps_the_file_and_applies_nothing(
    mcpctl: Mcpctl, editor: Editor, edit_dir: Path, web: None
) -> None:
    env = editor('save(text.replace("python3", "node"))\nsys.exit(2)')
    result = mcpctl("edit", "server", "web", env=env)
    assert result.exit_code == 1
    (kept,) = kept_files(edit_dir)
    assert result.stderr == f"error: editor exited with 2; your edits are in {kept}\n"
    assert load_yaml(mcpctl("get", "server", "web", "-o", "yaml"))["spec"]["command"] == "python3"


def test_edit_with_an_editor_that_cannot_run_exits_3_without_a_traceback(
    mcpctl: Mcpctl, edit_dir: Path, web: None, tmp_path: Path
) -> None:
    missing = tmp_path / "no-such-editor"
    result = mcpctl("edit", "server", "web", env={"MCPCTL_EDITOR": str(missing)})
    assert result.exit_code == 3
    assert result.stderr == (
        f"error: cannot run the editor '{missing}' (No such file or directory); "
        "set MCPCTL_EDITOR, VISUAL or EDITOR\n"
    )
    assert kept_files(edit_dir) == []


def test_edit_of_an_object_that_does_not_exist_exits_4_without_opening_an_editor(
    mcpctl: Mcpctl, editor: Editor, edit_dir: Path, tmp_path: Path
) -> None:
    marker = tmp_path / "editor-ran"
    result = mcpctl("edit", "server", "ghost", env=editor(f"open({str(marker)!r}, 'w')"))
    assert result.exit_code == 4
    assert result.stderr == "error: server/ghost not found\n"
    assert not marker.exists()
    assert kept_files(edit_dir) == []


def test_edit_falls_back_to_visual_then_editor(
    mcpctl: Mcpctl, editor: Editor, edit_dir: Path, web: None
) -> None:
    command = editor('save(text.replace("command: python3", "command: node"))')["MCPCTL_EDITOR"]
    ok(mcpctl("edit", "server", "web", env={"EDITOR": command}))
    assert load_yaml(mcpctl("get", "server", "web", "-o", "yaml"))["spec"]["command"] == "node"
