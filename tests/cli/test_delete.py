"""`mcpctl delete KIND NAME...`, `delete KIND/NAME...` and `delete -f FILE`."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.conftest import Mcpctl
from tests.cli.samples import STACK, STACK_REFS, lines, ok, server, write


@pytest.fixture
def stack(mcpctl: Mcpctl, tmp_path: Path) -> Path:
    path = write(tmp_path, "stack.yaml", STACK)
    ok(mcpctl("apply", "-f", str(path)))
    return path


def names_on_server(mcpctl: Mcpctl) -> list[str]:
    return lines(ok(mcpctl("get", "all", "-o", "name")))


def test_delete_kind_name_removes_the_object(mcpctl: Mcpctl, tmp_path: Path) -> None:
    ok(mcpctl("apply", "-f", str(write(tmp_path, "s.yaml", server("web")))))
    result = ok(mcpctl("delete", "server", "web"))
    assert lines(result) == ["server/web deleted"]
    assert mcpctl("get", "server", "web").exit_code == 4


def test_delete_several_objects_by_name_and_by_type_slash_name(
    mcpctl: Mcpctl, tmp_path: Path
) -> None:
    text = "---\n".join(server(n) for n in ("a", "b", "c", "d"))
    ok(mcpctl("apply", "-f", str(write(tmp_path, "s.yaml", text))))
    assert lines(ok(mcpctl("delete", "srv", "a", "b"))) == ["server/a deleted", "server/b deleted"]
    assert lines(ok(mcpctl("delete", "server/c", "servers/d"))) == [
        "server/c deleted",
        "server/d deleted",
    ]
    assert mcpctl("get", "servers").stderr == "No resources found.\n"


def test_delete_file_removes_its_objects_users_first(mcpctl: Mcpctl, stack: Path) -> None:
    result = ok(mcpctl("delete", "-f", str(stack)))
    assert lines(result) == [f"{ref} deleted" for ref in reversed(STACK_REFS)]
    assert mcpctl("get", "all").stderr == "No resources found.\n"


def test_delete_a_secret_in_use_exits_5_naming_its_user(mcpctl: Mcpctl, stack: Path) -> None:
    result = mcpctl("delete", "secret", "creds")
    assert result.exit_code == 5
    assert result.stdout == ""
    assert result.stderr == (
        "error: secret/creds is in use by server/time (spec.env[1].valueFrom.secretRef); "
        "remove those references first\n"
        "error: delete failed\n"
    )
    assert "secret/creds" in names_on_server(mcpctl)


def test_delete_a_server_in_use_names_every_project_using_it(mcpctl: Mcpctl, stack: Path) -> None:
    result = mcpctl("delete", "server", "clock")
    assert result.exit_code == 5
    assert "server/clock is in use by project/tools (spec.servers[1])" in result.stderr


def test_delete_a_project_takes_its_prompts_with_it(mcpctl: Mcpctl, stack: Path) -> None:
    assert lines(ok(mcpctl("delete", "project", "tools"))) == ["project/tools deleted"]
    assert mcpctl("get", "prompt", "greeting").exit_code == 4


def test_delete_dry_run_reports_and_deletes_nothing(mcpctl: Mcpctl, stack: Path) -> None:
    result = ok(mcpctl("delete", "project", "tools", "--dry-run"))
    assert lines(result) == ["project/tools deleted (dry run)"]
    assert sorted(names_on_server(mcpctl)) == sorted(STACK_REFS)

    in_use = mcpctl("delete", "secret", "creds", "--dry-run")
    assert in_use.exit_code == 5
    assert "is in use by server/time" in in_use.stderr


def test_delete_file_dry_run_deletes_nothing(mcpctl: Mcpctl, stack: Path) -> None:
    result = mcpctl("delete", "-f", str(stack), "--dry-run")
    assert lines(result)[:2] == [
        "prompt/greeting deleted (dry run)",
        "project/tools deleted (dry run)",
    ]
    assert sorted(names_on_server(mcpctl)) == sorted(STACK_REFS)


def test_delete_an_object_that_does_not_exist_exits_4(mcpctl: Mcpctl) -> None:
    result = mcpctl("delete", "server", "ghost")
    assert result.exit_code == 4
    assert result.stderr == "error: server/ghost not found\nerror: delete failed\n"


def test_delete_where_some_objects_fail_deletes_the_others(mcpctl: Mcpctl, stack: Path) -> None:
    result = mcpctl("delete", "prompt/greeting", "secret/creds", "prompt/ghost")
    assert result.exit_code == 5
    assert lines(result) == ["prompt/greeting deleted"]
    assert result.stderr.splitlines()[-1] == "error: delete failed for 2 of 3 objects"


def test_delete_a_kind_without_a_name_exits_3(offline_mcpctl: Mcpctl) -> None:
    result = offline_mcpctl("delete", "servers")
    assert result.exit_code == 3
    assert "say which object" in result.stderr


def test_delete_names_and_a_file_together_is_a_usage_error(
    offline_mcpctl: Mcpctl, tmp_path: Path
) -> None:
    path = write(tmp_path, "s.yaml", server("web"))
    result = offline_mcpctl("delete", "server", "web", "-f", str(path))
    assert result.exit_code == 2
    assert "not both" in result.stderr
