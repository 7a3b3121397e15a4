"""`mcpctl diff -f`: exit 0 when the server already matches, 1 with a unified diff otherwise."""

from __future__ import annotations

from pathlib import Path

from tests.cli.conftest import Mcpctl
from tests.cli.samples import STACK, document, load_yaml, ok, server, write


def test_diff_of_applied_objects_prints_nothing_and_exits_0(mcpctl: Mcpctl, tmp_path: Path) -> None:
    path = write(tmp_path, "stack.yaml", STACK)
    ok(mcpctl("apply", "-f", str(path)))
    result = mcpctl("diff", "-f", str(path))
    assert (result.exit_code, result.stdout, result.stderr) == (0, "", "")


def test_diff_of_get_yaml_output_exits_0(mcpctl: Mcpctl, tmp_path: Path) -> None:
    ok(mcpctl("apply", "-f", str(write(tmp_path, "stack.yaml", STACK))))
    exported = ok(mcpctl("get", "all", "-o", "yaml")).stdout
    result = mcpctl("diff", "-f", "-", stdin=exported)
    assert (result.exit_code, result.stdout) == (0, "")


def test_diff_of_a_changed_object_prints_a_unified_diff_and_exits_1(
    mcpctl: Mcpctl, tmp_path: Path
) -> None:
    ok(mcpctl("apply", "-f", str(write(tmp_path, "stack.yaml", STACK))))
    changed = write(tmp_path, "changed.yaml", STACK.replace("command: python3", "command: node"))

    result = mcpctl("diff", "-f", str(changed))

    assert result.exit_code == 1
    assert result.stderr == ""
    diff = result.stdout.splitlines()
    assert diff[:2] == ["--- live/server/clock", "+++ file/server/clock"]
    assert diff[2].startswith("@@ ")
    # Only the changed line differs; the rest of the hunk is context.
    assert [line for line in diff[3:] if line[0] != " "] == [
        "-  command: python3",
        "+  command: node",
    ]
    stored = load_yaml(mcpctl("get", "server", "clock", "-o", "yaml"))
    assert (stored["spec"]["command"], stored["metadata"]["resourceVersion"]) == ("python3", "1")


def test_diff_of_a_label_change_shows_the_labels(mcpctl: Mcpctl, tmp_path: Path) -> None:
    ok(mcpctl("apply", "-f", str(write(tmp_path, "a.yaml", server("web", labels={"a": "1"})))))
    result = mcpctl("diff", "-f", str(write(tmp_path, "b.yaml", server("web", labels={"a": "2"}))))
    assert result.exit_code == 1
    assert "-    a: '1'\n+    a: '2'\n" in result.stdout


def test_diff_of_a_new_object_shows_it_all_as_added_and_exits_1(
    mcpctl: Mcpctl, tmp_path: Path
) -> None:
    result = mcpctl("diff", "-f", str(write(tmp_path, "new.yaml", server("web"))))
    assert result.exit_code == 1
    assert result.stdout == (
        "--- live/server/web\n"
        "+++ file/server/web\n"
        "@@ -0,0 +1,7 @@\n"
        "+apiVersion: mcpctl/v1\n"
        "+kind: Server\n"
        "+metadata:\n"
        "+  name: web\n"
        "+  labels: {}\n"
        "+spec:\n"
        "+  command: python3\n"
    )
    assert mcpctl("get", "servers").stderr == "No resources found.\n"


def test_diff_of_an_invalid_object_reports_it_with_its_exit_code(
    mcpctl: Mcpctl, tmp_path: Path
) -> None:
    path = write(tmp_path, "bad.yaml", document("Server", "web", {"runtime": "docker"}))
    result = mcpctl("diff", "-f", str(path))
    assert result.exit_code == 3
    assert result.stderr == "error: server/web: spec.image: required for runtime docker\n"
