"""`mcpctl apply -f`: dependency order, outcomes, dry runs, the YAML round trip, bad input."""

from __future__ import annotations

from pathlib import Path

import yaml

from tests.cli.conftest import Mcpctl
from tests.cli.samples import STACK, STACK_REFS, document, lines, load_yaml, ok, server, write


def names_on_server(mcpctl: Mcpctl) -> list[str]:
    return lines(ok(mcpctl("get", "all", "-o", "name")))


def test_apply_multi_document_file_creates_objects_in_dependency_order(
    mcpctl: Mcpctl, tmp_path: Path
) -> None:
    result = ok(mcpctl("apply", "-f", str(write(tmp_path, "stack.yaml", STACK))))
    assert lines(result) == [f"{ref} created" for ref in STACK_REFS]
    assert result.stderr == ""
    assert sorted(names_on_server(mcpctl)) == sorted(STACK_REFS)


def test_apply_twice_reports_every_object_unchanged(mcpctl: Mcpctl, tmp_path: Path) -> None:
    path = write(tmp_path, "stack.yaml", STACK)
    ok(mcpctl("apply", "-f", str(path)))
    result = ok(mcpctl("apply", "-f", str(path)))
    assert lines(result) == [f"{ref} unchanged" for ref in STACK_REFS]
    assert load_yaml(mcpctl("get", "server", "time", "-o", "yaml"))["metadata"][
        "resourceVersion"
    ] == ("1")


def test_apply_a_changed_object_reports_configured_and_bumps_its_version(
    mcpctl: Mcpctl, tmp_path: Path
) -> None:
    ok(mcpctl("apply", "-f", str(write(tmp_path, "stack.yaml", STACK))))
    changed = STACK.replace("command: python3", "command: python3.11")
    result = mcpctl("apply", "-f", str(write(tmp_path, "changed.yaml", changed)))
    assert result.stderr == ""
    assert "server/clock configured" in lines(result)
    assert [line for line in lines(result) if not line.endswith(" unchanged")] == [
        "server/clock configured"
    ]
    clock = load_yaml(mcpctl("get", "server", "clock", "-o", "yaml"))
    assert clock["spec"]["command"] == "python3.11"
    assert clock["metadata"]["resourceVersion"] == "2"


def test_apply_changing_only_labels_reports_configured(mcpctl: Mcpctl, tmp_path: Path) -> None:
    ok(mcpctl("apply", "-f", str(write(tmp_path, "a.yaml", server("web", labels={"a": "1"})))))
    result = mcpctl("apply", "-f", str(write(tmp_path, "b.yaml", server("web", labels={"a": "2"}))))
    assert lines(ok(result)) == ["server/web configured"]
    assert load_yaml(mcpctl("get", "server", "web", "-o", "yaml"))["metadata"]["labels"] == {
        "a": "2"
    }


def test_apply_dry_run_reports_outcomes_and_changes_nothing(mcpctl: Mcpctl, tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "two.yaml",
        server("web") + "---\n" + document("Secret", "creds", {"data": {"k": "v"}}),
    )
    result = ok(mcpctl("apply", "-f", str(path), "--dry-run"))
    assert lines(result) == ["secret/creds created (dry run)", "server/web created (dry run)"]
    assert mcpctl("get", "all").stderr == "No resources found.\n"

    ok(mcpctl("apply", "-f", str(path)))
    again = ok(mcpctl("apply", "-f", str(path), "--dry-run"))
    assert lines(again) == ["secret/creds unchanged (dry run)", "server/web unchanged (dry run)"]


def test_apply_dry_run_of_objects_that_refer_to_each_other_validates_them_together(
    mcpctl: Mcpctl, tmp_path: Path
) -> None:
    path = write(tmp_path, "stack.yaml", STACK)
    result = ok(mcpctl("apply", "-f", str(path), "--dry-run"))
    assert lines(result) == [f"{ref} created (dry run)" for ref in STACK_REFS]
    assert mcpctl("get", "all").stderr == "No resources found.\n"


def test_diff_of_a_new_stack_shows_every_object_without_errors(
    mcpctl: Mcpctl, tmp_path: Path
) -> None:
    result = mcpctl("diff", "-f", str(write(tmp_path, "stack.yaml", STACK)))
    assert result.exit_code == 1
    assert result.stderr == ""
    assert result.stdout.count("+++ file/") == len(STACK_REFS)


def test_apply_dry_run_of_a_change_leaves_the_stored_object_alone(
    mcpctl: Mcpctl, tmp_path: Path
) -> None:
    ok(mcpctl("apply", "-f", str(write(tmp_path, "a.yaml", server("web", "python3")))))
    result = mcpctl("apply", "--dry-run", "-f", str(write(tmp_path, "b.yaml", server("web", "x"))))
    stored = load_yaml(mcpctl("get", "server", "web", "-o", "yaml"))
    assert (stored["spec"]["command"], stored["metadata"]["resourceVersion"]) == ("python3", "1")
    assert lines(result) == ["server/web configured (dry run)"]


def test_apply_reads_every_yaml_and_json_file_of_a_directory(
    mcpctl: Mcpctl, tmp_path: Path
) -> None:
    directory = tmp_path / "manifests"
    (directory / "nested").mkdir(parents=True)
    write(directory, "b-server.yaml", server("web"))
    write(directory / "nested", "a-project.yml", document("Project", "site", {"servers": ["web"]}))
    write(
        directory,
        "c-secret.json",
        '{"apiVersion": "mcpctl/v1", "kind": "Secret",'
        ' "metadata": {"name": "creds"}, "spec": {"data": {"k": "v"}}}',
    )
    write(directory, "notes.txt", "not a manifest")
    result = ok(mcpctl("apply", "-f", str(directory)))
    assert lines(result) == ["secret/creds created", "server/web created", "project/site created"]


def test_apply_reads_stdin_when_the_file_is_a_dash(mcpctl: Mcpctl) -> None:
    result = ok(mcpctl("apply", "-f", "-", stdin=STACK))
    assert lines(result) == [f"{ref} created" for ref in STACK_REFS]


def test_get_all_yaml_applies_back_with_every_object_unchanged(
    mcpctl: Mcpctl, tmp_path: Path
) -> None:
    ok(mcpctl("apply", "-f", str(write(tmp_path, "stack.yaml", STACK))))
    exported = ok(mcpctl("get", "all", "-o", "yaml")).stdout
    path = write(tmp_path, "exported.yaml", exported)

    result = ok(mcpctl("apply", "-f", str(path)))

    assert sorted(lines(result)) == sorted(f"{ref} unchanged" for ref in STACK_REFS)
    assert ok(mcpctl("get", "all", "-o", "yaml")).stdout == exported


def test_get_yaml_and_json_of_each_kind_and_object_apply_back_unchanged(
    mcpctl: Mcpctl, tmp_path: Path
) -> None:
    ok(mcpctl("apply", "-f", str(write(tmp_path, "stack.yaml", STACK))))
    for ref in STACK_REFS:
        kind, name = ref.split("/")
        of_kind = sorted(f"{r} unchanged" for r in STACK_REFS if r.startswith(f"{kind}/"))
        for args, expected in (([f"{kind}s"], of_kind), ([kind, name], [f"{ref} unchanged"])):
            for fmt in ("yaml", "json"):
                exported = ok(mcpctl("get", *args, "-o", fmt)).stdout
                result = ok(mcpctl("apply", "-f", "-", stdin=exported))
                assert sorted(lines(result)) == expected, (args, fmt, result.stderr)


def test_renaming_a_project_in_get_yaml_output_clones_it(mcpctl: Mcpctl, tmp_path: Path) -> None:
    ok(mcpctl("apply", "-f", str(write(tmp_path, "stack.yaml", STACK))))
    original = load_yaml(mcpctl("get", "project", "tools", "-o", "yaml"))
    clone = dict(original, metadata=dict(original["metadata"], name="tools-staging"))

    result = ok(mcpctl("apply", "-f", "-", stdin=yaml.safe_dump(clone)))

    assert lines(result) == ["project/tools-staging created"]
    copy = load_yaml(mcpctl("get", "project", "tools-staging", "-o", "yaml"))
    assert copy["spec"] == original["spec"]
    assert copy["metadata"]["labels"] == {"team": "infra"}
    assert copy["metadata"]["uid"] != original["metadata"]["uid"]
    assert load_yaml(mcpctl("get", "project", "tools", "-o", "yaml")) == original
    usage = ok(mcpctl("describe", "server", "clock")).stdout
    assert "project/tools          (spec.servers[1])" in usage
    assert "project/tools-staging  (spec.servers[1])" in usage


# -- bad input ---------------------------------------------------------------------------


def test_apply_malformed_yaml_names_file_and_line_and_applies_nothing(
    mcpctl: Mcpctl, tmp_path: Path
) -> None:
    good = write(tmp_path, "good.yaml", server("api"))
    path = write(
        tmp_path,
        "broken.yaml",
        server("web") + "---\napiVersion: mcpctl/v1\nkind: Server\nmetadata:\n"
        "  name: web2\n  labels: {team: [oops}\n",
    )

    result = mcpctl("apply", "-f", str(good), "-f", str(path))

    assert result.exit_code == 3
    assert result.stdout == ""
    assert result.stderr.startswith(f"error: {path}:13:")
    assert "invalid YAML" in result.stderr
    assert len(result.stderr.splitlines()) == 1
    assert mcpctl("get", "servers").stderr == "No resources found.\n"


def test_apply_a_document_that_is_not_a_mapping_names_its_line(
    mcpctl: Mcpctl, tmp_path: Path
) -> None:
    path = write(tmp_path, "list.yaml", server("web") + "---\n- just\n- a list\n")
    result = mcpctl("apply", "-f", str(path))
    assert result.exit_code == 3
    assert result.stderr.startswith(f"error: {path}:9: a document must be a mapping")
    assert mcpctl("get", "servers").stderr == "No resources found.\n"


def test_apply_an_unknown_kind_lists_the_known_kinds_and_applies_nothing(
    mcpctl: Mcpctl, tmp_path: Path
) -> None:
    path = write(tmp_path, "w.yaml", server("web") + "---\n" + document("Widget", "w", {}))
    result = mcpctl("apply", "-f", str(path))
    assert result.exit_code == 3
    assert result.stderr == (
        f"error: {path}:9: kind: unknown kind 'Widget'; "
        "known kinds: Secret, Template, Server, Llm, Project, Agent, Prompt, Personality, User, "
        "Group, RbacDefinition\n"
    )
    assert mcpctl("get", "servers").stderr == "No resources found.\n"


def test_apply_with_a_wrong_api_version_names_the_field(mcpctl: Mcpctl, tmp_path: Path) -> None:
    path = write(tmp_path, "v.yaml", server("web").replace("mcpctl/v1", "mcpctl/v2"))
    result = mcpctl("apply", "-f", str(path))
    assert result.exit_code == 3
    assert result.stderr == (f"error: {path}:1: apiVersion: must be 'mcpctl/v1', got 'mcpctl/v2'\n")


def test_apply_an_unknown_field_names_its_path(mcpctl: Mcpctl, tmp_path: Path) -> None:
    path = write(tmp_path, "f.yaml", document("Server", "web", {"command": "x", "comand": "y"}))
    result = mcpctl("apply", "-f", str(path))
    assert result.exit_code == 3
    assert result.stderr == (
        "error: server/web: spec.comand: Extra inputs are not permitted\nerror: apply failed\n"
    )
    assert result.stdout == ""


def test_apply_a_bad_nested_field_names_its_path(mcpctl: Mcpctl, tmp_path: Path) -> None:
    spec = {"command": "x", "env": [{"name": "OK", "value": "1"}, {"name": "9LIVES", "value": "2"}]}
    result = mcpctl("apply", "-f", str(write(tmp_path, "e.yaml", document("Server", "web", spec))))
    assert result.exit_code == 3
    assert result.stderr.startswith("error: server/web: spec.env[1].name: ")
    assert "shell variable name" in result.stderr


def test_apply_a_server_missing_what_it_needs_to_run_says_which_field(
    mcpctl: Mcpctl, tmp_path: Path
) -> None:
    path = write(tmp_path, "d.yaml", document("Server", "box", {"runtime": "docker"}))
    result = mcpctl("apply", "-f", str(path))
    assert result.exit_code == 3
    assert result.stderr.startswith("error: server/box: spec.image: required for runtime docker\n")


def test_apply_a_bad_name_states_the_naming_rule(mcpctl: Mcpctl, tmp_path: Path) -> None:
    result = mcpctl("apply", "-f", str(write(tmp_path, "n.yaml", server("Web_Server"))))
    assert result.exit_code == 3
    assert result.stderr.splitlines()[0] == (
        "error: server/Web_Server: metadata.name: invalid name 'Web_Server': use lowercase "
        "letters, digits and '-', starting and ending with a letter or digit, "
        "at most 63 characters"
    )


def test_apply_where_one_object_fails_applies_the_others_and_exits_non_zero(
    mcpctl: Mcpctl, tmp_path: Path
) -> None:
    text = "---\n".join(
        [
            server("good"),
            document("Server", "broken", {"fromTemplate": "missing"}),
            document("Project", "site", {"servers": ["good"]}),
            document("Project", "dangling", {"servers": ["ghost"]}),
        ]
    )
    result = mcpctl("apply", "-f", str(write(tmp_path, "mixed.yaml", text)))

    assert result.exit_code == 3
    assert lines(result) == ["server/good created", "project/site created"]
    assert result.stderr == (
        "error: server/broken: spec.fromTemplate: template 'missing' not found\n"
        "error: project/dangling: spec.servers[0]: server 'ghost' not found\n"
        "error: apply failed for 2 of 4 objects\n"
    )
    assert names_on_server(mcpctl) == ["server/good", "project/site"]


def test_apply_an_object_defined_twice_names_both_places(mcpctl: Mcpctl, tmp_path: Path) -> None:
    path = write(tmp_path, "dup.yaml", server("web") + "---\n" + server("web", "other"))
    result = mcpctl("apply", "-f", str(path))
    assert result.exit_code == 3
    assert result.stderr == f"error: {path}:9: server/web is also defined at {path}:1\n"


def test_apply_without_a_file_is_a_usage_error(offline_mcpctl: Mcpctl) -> None:
    result = offline_mcpctl("apply")
    assert result.exit_code == 2
    assert "-f FILE" in result.stderr


def test_apply_a_missing_file_exits_3(offline_mcpctl: Mcpctl, tmp_path: Path) -> None:
    result = offline_mcpctl("apply", "-f", str(tmp_path / "nope.yaml"))
    assert result.exit_code == 3
    assert result.stderr == f"error: {tmp_path / 'nope.yaml'}: no such file or directory\n"


def test_apply_an_empty_file_says_no_objects_were_found(
    offline_mcpctl: Mcpctl, tmp_path: Path
) -> None:
    path = write(tmp_path, "empty.yaml", "# nothing here\n---\n")
    result = offline_mcpctl("apply", "-f", str(path))
    assert result.exit_code == 3
    assert result.stderr == f"error: {path}: no objects found\n"
