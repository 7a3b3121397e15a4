"""`mcpctl create server|secret|project`: imperative shortcuts for one object."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli.conftest import Mcpctl
from tests.cli.samples import document, lines, load_yaml, ok, write

GITHUB_TEMPLATE = document(
    "Template",
    "github",
    {
        "command": "npx",
        "args": ["-y", "@modelcontextprotocol/server-github"],
        "parameters": [
            {"name": "GITHUB_TOKEN", "required": True, "secret": True},
            {"name": "GITHUB_ORG", "description": "Organisation", "required": True},
        ],
    },
)


@pytest.fixture
def template(mcpctl: Mcpctl, tmp_path: Path) -> None:
    ok(mcpctl("apply", "-f", str(write(tmp_path, "tpl.yaml", GITHUB_TEMPLATE))))
    ok(mcpctl("create", "secret", "gh", "--from-literal", "token=ghp_123"))


def test_create_server_from_a_template_with_literal_and_secret_env(
    mcpctl: Mcpctl, template: None
) -> None:
    result = ok(
        mcpctl(
            "create",
            "server",
            "github",
            "--from-template",
            "github",
            "--env",
            "GITHUB_ORG=acme",
            "--env",
            "GITHUB_TOKEN=secret:gh/token",
            "-l",
            "team=infra",
        )
    )
    assert result.stdout == "server/github created\n"
    stored = load_yaml(mcpctl("get", "server", "github", "-o", "yaml"))
    assert stored["metadata"]["labels"] == {"team": "infra"}
    assert stored["spec"]["fromTemplate"] == "github"
    assert stored["spec"]["env"] == [
        {"name": "GITHUB_ORG", "value": "acme"},
        {"name": "GITHUB_TOKEN", "valueFrom": {"secretRef": {"name": "gh", "key": "token"}}},
    ]
    assert stored["status"]["effective"]["command"] == "npx"
    assert "secret/gh" in ok(mcpctl("describe", "server", "github")).stdout


def test_create_server_output_yaml_prints_the_created_object(
    mcpctl: Mcpctl, template: None
) -> None:
    args = ["create", "server", "gh", "--from-template", "github", "--env", "GITHUB_ORG=a"]
    obj = load_yaml(mcpctl(*args, "--env", "GITHUB_TOKEN=secret:gh/token", "-o", "yaml"))
    assert (obj["kind"], obj["metadata"]["name"], obj["metadata"]["resourceVersion"]) == (
        "Server",
        "gh",
        "1",
    )


def test_create_server_client_features_go_into_the_spec(mcpctl: Mcpctl) -> None:
    args = ["create", "server", "writer", "--command", "writer-mcp"]
    flags = ["--client-feature", "sampling", "--client-feature", "roots", "-o", "yaml"]
    obj = load_yaml(mcpctl(*args, *flags))
    assert obj["spec"]["clientFeatures"] == ["sampling", "roots"]

    twice = mcpctl("create", "server", "w2", "--command", "x", *flags[:2], *flags[:2])
    assert twice.exit_code == 3
    assert "spec.clientFeatures" in twice.stderr
    assert "lists a feature more than once" in twice.stderr


def test_create_server_dry_run_validates_and_creates_nothing(
    mcpctl: Mcpctl, template: None
) -> None:
    args = ["create", "server", "gh", "--from-template", "github", "--env", "GITHUB_ORG=a"]
    result = ok(mcpctl(*args, "--env", "GITHUB_TOKEN=secret:gh/token", "--dry-run"))
    assert result.stdout == "server/gh created (dry run)\n"
    assert mcpctl("get", "server", "gh").exit_code == 4

    refused = mcpctl(*args, "--env", "GITHUB_TOKEN=plain", "--dry-run")
    assert refused.exit_code == 3
    assert refused.stderr == (
        "error: spec.env[1]: template parameter 'GITHUB_TOKEN' is secret: give it as "
        "valueFrom.secretRef (CLI: --env NAME=secret:SECRET/KEY)\n"
    )


def test_create_server_missing_a_required_parameter_names_it(
    mcpctl: Mcpctl, template: None
) -> None:
    result = mcpctl(
        "create",
        "server",
        "gh",
        "--from-template",
        "github",
        "--env",
        "GITHUB_TOKEN=secret:gh/token",
    )
    assert result.exit_code == 3
    assert result.stderr == (
        "error: spec.env: template parameter 'GITHUB_ORG' is required (Organisation)\n"
    )


def test_create_server_with_a_secret_key_that_does_not_exist_exits_3(
    mcpctl: Mcpctl, template: None
) -> None:
    result = mcpctl(
        "create",
        "server",
        "gh",
        "--from-template",
        "github",
        "--env",
        "GITHUB_ORG=a",
        "--env",
        "GITHUB_TOKEN=secret:gh/nokey",
    )
    assert result.exit_code == 3
    assert result.stderr == (
        "error: spec.env[1].valueFrom.secretRef.key: secret 'gh' has no key 'nokey'\n"
    )


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("NOEQUALS", "error: --env 'NOEQUALS': use NAME=VALUE or NAME=secret:SECRET/KEY\n"),
        ("=value", "error: --env '=value': use NAME=VALUE or NAME=secret:SECRET/KEY\n"),
        ("K=secret:nokey", "error: --env 'K=secret:nokey': use NAME=secret:SECRET/KEY\n"),
    ],
)
def test_create_server_with_a_malformed_env_entry_exits_3(
    offline_mcpctl: Mcpctl, entry: str, message: str
) -> None:
    result = offline_mcpctl("create", "server", "x", "--command", "y", "--env", entry)
    assert (result.exit_code, result.stderr) == (3, message)


def test_create_server_from_a_command(mcpctl: Mcpctl) -> None:
    result = mcpctl(
        "create",
        "server",
        "clock",
        "--command",
        "python3",
        "--arg",
        "-m",
        "--arg",
        "clock",
        "--description",
        "A clock",
        "-o",
        "json",
    )
    obj = json.loads(ok(result).stdout)
    assert obj["spec"] == {"description": "A clock", "command": "python3", "args": ["-m", "clock"]}


def test_create_an_object_that_exists_exits_5(mcpctl: Mcpctl) -> None:
    ok(mcpctl("create", "server", "clock", "--command", "python3"))
    result = mcpctl("create", "server", "clock", "--command", "python3")
    assert result.exit_code == 5
    assert result.stderr == "error: server/clock already exists\n"


def test_create_secret_from_literals(mcpctl: Mcpctl) -> None:
    result = ok(
        mcpctl("create", "secret", "db", "--from-literal", "user=app", "--from-literal", "pw=x=y")
    )
    assert result.stdout == "secret/db created\n"
    shown = load_yaml(mcpctl("get", "secret", "db", "-o", "yaml"))
    assert shown["spec"]["data"] == {"user": None, "pw": None}
    revealed = load_yaml(mcpctl("get", "secret", "db", "-o", "yaml", "--show-values"))
    assert revealed["spec"]["data"] == {"user": "app", "pw": "x=y"}


def test_create_secret_with_a_malformed_literal_exits_3(offline_mcpctl: Mcpctl) -> None:
    result = offline_mcpctl("create", "secret", "db", "--from-literal", "novalue")
    assert (result.exit_code, result.stderr) == (
        3,
        "error: --from-literal 'novalue': use KEY=VALUE\n",
    )


def test_create_secret_output_name(mcpctl: Mcpctl) -> None:
    result = ok(mcpctl("create", "secret", "db", "--from-literal", "a=b", "-o", "name"))
    assert result.stdout == "secret/db\n"


def test_create_project_with_servers(mcpctl: Mcpctl) -> None:
    ok(mcpctl("create", "server", "a", "--command", "x"))
    ok(mcpctl("create", "server", "b", "--command", "y"))
    result = ok(
        mcpctl(
            "create",
            "project",
            "site",
            "--server",
            "a",
            "--server",
            "b",
            "--description",
            "The site",
            "--gated",
        )
    )
    assert result.stdout == "project/site created\n"
    spec = load_yaml(mcpctl("get", "project", "site", "-o", "yaml"))["spec"]
    assert spec == {"description": "The site", "servers": ["a", "b"], "gated": True}
    table = lines(ok(mcpctl("get", "projects")))
    assert table[1].split()[:3] == ["site", "a,b", "true"]


def test_create_project_with_a_server_that_does_not_exist_exits_3(mcpctl: Mcpctl) -> None:
    result = mcpctl("create", "project", "site", "--server", "ghost")
    assert result.exit_code == 3
    assert result.stderr == "error: spec.servers[0]: server 'ghost' not found\n"
    assert mcpctl("get", "project", "site").exit_code == 4


def test_create_project_dry_run_creates_nothing(mcpctl: Mcpctl) -> None:
    ok(mcpctl("create", "server", "a", "--command", "x"))
    result = ok(mcpctl("create", "project", "site", "--server", "a", "--dry-run", "-o", "yaml"))
    assert load_yaml(result)["metadata"]["name"] == "site"
    assert mcpctl("get", "project", "site").exit_code == 4


def test_create_with_a_bad_name_states_the_rule(mcpctl: Mcpctl) -> None:
    result = mcpctl("create", "secret", "My.Secret", "--from-literal", "a=b")
    assert result.exit_code == 3
    assert "metadata.name: invalid name 'My.Secret': use lowercase letters" in result.stderr


def test_create_an_unknown_type_is_a_usage_error(offline_mcpctl: Mcpctl) -> None:
    result = offline_mcpctl("create", "widget", "x")
    assert result.exit_code == 2
    assert "No such command 'widget'" in result.stderr
