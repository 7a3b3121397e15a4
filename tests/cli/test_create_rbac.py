"""`mcpctl create group|rbac`, and `describe user|group` showing where each permission comes
from (direct or via which group, and which RbacDefinition)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.cli.conftest import Mcpctl
from tests.cli.samples import document, ok, write
from tests.conftest import LiveMcpd
from tests.people import add_person_live


def as_user(token: str) -> dict[str, str | None]:
    return {"MCPCTL_TOKEN": token}


def spec_of(mcpctl: Mcpctl, kind: str, name: str) -> Any:
    return json.loads(ok(mcpctl("get", kind, name, "-o", "json")).stdout)["spec"]


@pytest.fixture
def team(mcpctl: Mcpctl, live_mcpd: LiveMcpd) -> dict[str, str]:
    """alice and bob in group devs; devs may view everything and read logs; alice alone may
    also edit the server github."""
    tokens = {n: add_person_live(live_mcpd, n, displayName=n.title()) for n in ("alice", "bob")}
    ok(mcpctl("create", "group", "devs", "--member", "alice", "--member", "bob"))
    ok(
        mcpctl(
            "create",
            "rbac",
            "devs-read",
            "--subject",
            "group:devs",
            "--binding",
            "view:*",
            "--operation",
            "logs",
        )
    )
    ok(
        mcpctl(
            "create",
            "rbac",
            "alice-github",
            "--subject",
            "user:alice",
            "--binding",
            "edit:srv:github",
        )
    )
    return tokens


def test_create_group_and_rbac_print_what_they_created(
    mcpctl: Mcpctl, team: dict[str, str]
) -> None:
    group = ok(mcpctl("create", "group", "ops", "--member", "bob", "--description", "On call"))
    rbac = ok(mcpctl("create", "rbac", "ops", "--subject", "group:ops", "--operation", "backup"))

    assert group.stdout == "group/ops created\n"
    assert rbac.stdout == "rbacdefinition/ops created\n"
    assert spec_of(mcpctl, "group", "ops") == {"description": "On call", "members": ["bob"]}


def test_what_create_grants_is_what_can_i_answers(mcpctl: Mcpctl, team: dict[str, str]) -> None:
    alice, bob = as_user(team["alice"]), as_user(team["bob"])

    answers = {
        (who, question): mcpctl("auth", "can-i", *question.split(), env=env).exit_code
        for who, env in (("alice", alice), ("bob", bob))
        for question in ("view servers", "edit server github", "edit server other", "run logs")
    }

    assert answers == {
        ("alice", "view servers"): 0,
        ("alice", "edit server github"): 0,
        ("alice", "edit server other"): 1,
        ("alice", "run logs"): 0,
        ("bob", "view servers"): 0,
        ("bob", "edit server github"): 1,
        ("bob", "edit server other"): 1,
        ("bob", "run logs"): 0,
    }


def test_create_rbac_stores_exactly_what_the_same_yaml_stores(
    mcpctl: Mcpctl, team: dict[str, str], tmp_path: Path
) -> None:
    spec = {
        "description": "Servers team",
        "subjects": ["user:alice", "group:devs"],
        "bindings": [
            {"role": "edit", "resource": "servers"},
            {"role": "view", "resource": "servers", "name": "github"},
            {"role": "view", "resource": "*"},
            {"role": "run", "resource": "projects", "name": "research"},
            {"role": "run", "action": "logs"},
            {"role": "run", "action": "backup"},
        ],
    }
    ok(
        mcpctl(
            "apply", "-f", str(write(tmp_path, "rbac.yaml", document("RbacDefinition", "y", spec)))
        )
    )
    ok(
        mcpctl(
            "create",
            "rbac",
            "c",
            "--description",
            "Servers team",
            "--subject",
            "user:alice",
            "--subject",
            "group:devs",
            "--binding",
            "edit:servers",
            "--binding",
            "view:server:github",
            "--binding",
            "view:*",
            "--binding",
            "run:proj:research",
            "--operation",
            "logs",
            "--operation",
            "backup",
        )
    )

    assert spec_of(mcpctl, "rbac", "c") == spec_of(mcpctl, "rbac", "y") == spec


def test_create_rbac_dry_run_and_output_yaml_create_nothing(
    mcpctl: Mcpctl, team: dict[str, str]
) -> None:
    args = ["create", "rbac", "trial", "--subject", "user:bob", "--binding", "delete:tpl"]

    dry = ok(mcpctl(*args, "--dry-run"))
    printed = ok(mcpctl(*args, "--dry-run", "-o", "yaml"))
    missing = mcpctl("get", "rbac", "trial")

    assert dry.stdout == "rbacdefinition/trial created (dry run)\n"
    assert "- role: delete\n    resource: templates\n" in printed.stdout
    assert missing.exit_code == 4


@pytest.mark.parametrize(
    ("flag", "value", "says"),
    [
        ("--binding", "edit", "use ROLE:RESOURCE or ROLE:RESOURCE:NAME"),
        ("--binding", "edit:servers:a:b", "use ROLE:RESOURCE or ROLE:RESOURCE:NAME"),
        ("--binding", "edit::a", "use ROLE:RESOURCE or ROLE:RESOURCE:NAME"),
        ("--binding", "own:servers", "unknown role 'own'"),
        ("--binding", "view:widgets", "unknown kind 'widgets'"),
        ("--binding", "view:*:github", "a NAME needs a resource, not *"),
        ("--binding", "view:servers:Bad_Name", "'Bad_Name' is not a valid object name"),
        ("--operation", "dance", "'dance' is not one of"),
        ("--subject", "alice", "use user:NAME or group:NAME"),
        ("--subject", "team:devs", "use user:NAME or group:NAME"),
    ],
)
def test_bad_flags_of_create_rbac_are_usage_errors_naming_the_value(
    offline_mcpctl: Mcpctl, flag: str, value: str, says: str
) -> None:
    result = offline_mcpctl("create", "rbac", "x", flag, value)

    assert result.exit_code == 2, result.output
    assert f"Invalid value for '{flag}'" in result.stderr
    assert value in result.stderr
    assert says in result.stderr


def permission_rows(describe_output: str) -> list[list[str]]:
    """The rows of the Permissions table, split into columns (header first)."""
    out = describe_output.split("Permissions:\n", 1)[1]
    return [re.split(r"\s{2,}", line.strip()) for line in out.splitlines() if line.startswith("  ")]


def test_describe_group_shows_the_permissions_definitions_give_it(
    mcpctl: Mcpctl, team: dict[str, str]
) -> None:
    ok(mcpctl("create", "rbac", "devs-extra", "--subject", "group:devs", "--binding", "run:srv"))

    output = ok(mcpctl("describe", "group", "devs")).stdout

    assert permission_rows(output) == [
        ["ROLE", "RESOURCE", "NAME", "VIA", "DEFINITION"],
        ["run", "servers", "*", "direct", "devs-extra"],
        ["view", "*", "*", "direct", "devs-read"],
        ["run", "action:logs", "-", "direct", "devs-read"],
    ]


def test_describe_group_without_bindings_says_none(mcpctl: Mcpctl, team: dict[str, str]) -> None:
    ok(mcpctl("create", "group", "idle"))

    assert "Permissions: <none>\n" in ok(mcpctl("describe", "grp/idle")).stdout


def test_describe_user_shows_direct_permissions_and_those_via_each_group(
    mcpctl: Mcpctl, team: dict[str, str]
) -> None:
    ok(mcpctl("create", "group", "ops", "--member", "alice"))
    ok(mcpctl("create", "rbac", "ops-backup", "--subject", "group:ops", "--operation", "backup"))

    output = ok(mcpctl("describe", "user", "alice")).stdout
    rows = permission_rows(output)

    assert rows == [
        ["ROLE", "RESOURCE", "NAME", "VIA", "DEFINITION"],
        ["edit", "servers", "github", "direct", "alice-github"],
        ["view", "*", "*", "group devs", "devs-read"],
        ["run", "action:logs", "-", "group devs", "devs-read"],
        ["run", "action:backup", "-", "group ops", "ops-backup"],
    ]
    assert permission_rows(ok(mcpctl("describe", "user", "bob")).stdout) == [rows[0], *rows[2:4]]
