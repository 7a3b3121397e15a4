"""Effective server specs from templates, and what a template demands of its servers."""

from __future__ import annotations

from typing import Any

from mcpctl.domain.templating import effective_server, parameter_problems
from mcpctl.resources.servers import ServerSpec
from mcpctl.resources.templates import TemplateSpec


def tpl(**spec: Any) -> TemplateSpec:
    return TemplateSpec.model_validate(spec)


def srv(**spec: Any) -> ServerSpec:
    return ServerSpec.model_validate(spec)


def secret_env(name: str) -> dict[str, Any]:
    return {"name": name, "valueFrom": {"secretRef": {"name": "s", "key": "k"}}}


GITHUB = tpl(
    description="GitHub",
    command="npx",
    args=["-y", "server-github"],
    env=[{"name": "LOG", "value": "info"}],
    parameters=[
        {"name": "TOKEN", "required": True, "secret": True, "description": "a PAT"},
        {"name": "HOST", "default": "github.com"},
        {"name": "ORG", "required": True},
        {"name": "OPTIONAL"},
    ],
)


def test_without_a_template_the_server_is_its_own_effective_spec() -> None:
    server = srv(command="uvx", args=["mcp-server-time"], fromTemplate=None)

    effective = effective_server(server, None)

    assert effective.command == "uvx"
    assert effective.args == ["mcp-server-time"]
    assert "fromTemplate" not in effective.model_dump()


def test_unset_server_fields_come_from_the_template() -> None:
    effective = effective_server(srv(fromTemplate="github"), GITHUB)

    assert (effective.command, effective.args, effective.description) == (
        "npx",
        ["-y", "server-github"],
        "GitHub",
    )
    assert effective.runtime is None


def test_server_fields_win_over_the_template() -> None:
    server = srv(fromTemplate="github", command="node", args=["x.js"], description="mine")

    effective = effective_server(server, GITHUB)

    assert (effective.command, effective.args, effective.description) == (
        "node",
        ["x.js"],
        "mine",
    )


def test_env_merges_by_name_with_defaults_then_template_then_server() -> None:
    server = srv(
        fromTemplate="github",
        env=[
            secret_env("TOKEN"),
            {"name": "HOST", "value": "ghe.local"},
            {"name": "X", "value": "1"},
        ],
    )
    template = tpl(
        command="npx",
        env=[{"name": "LOG", "value": "info"}, {"name": "HOST", "value": "tpl.local"}],
        parameters=[{"name": "HOST", "default": "github.com"}, {"name": "REGION", "default": "eu"}],
    )

    env = {e.name: e for e in effective_server(server, template).env}

    assert env["HOST"].value == "ghe.local"
    assert env["REGION"].value == "eu"
    assert env["LOG"].value == "info"
    assert env["TOKEN"].valueFrom is not None
    assert env["X"].value == "1"


def test_a_server_that_satisfies_the_template_has_no_problems() -> None:
    server = srv(fromTemplate="github", env=[secret_env("TOKEN"), {"name": "ORG", "value": "acme"}])

    assert parameter_problems(server, GITHUB) == []


def test_missing_required_parameters_are_reported_on_spec_env() -> None:
    problems = parameter_problems(srv(fromTemplate="github"), GITHUB)

    assert [path for path, _ in problems] == ["spec.env", "spec.env"]
    assert "'TOKEN' is required (a PAT)" in problems[0][1]
    assert "'ORG' is required" in problems[1][1]


def test_a_required_parameter_with_a_default_may_be_left_out() -> None:
    template = tpl(command="x", parameters=[{"name": "P", "required": True, "default": "d"}])

    assert parameter_problems(srv(fromTemplate="t"), template) == []


def test_a_secret_parameter_given_as_a_literal_is_reported_at_its_index() -> None:
    server = srv(
        fromTemplate="github",
        env=[{"name": "ORG", "value": "acme"}, {"name": "TOKEN", "value": "ghp_plain"}],
    )

    problems = parameter_problems(server, GITHUB)

    assert len(problems) == 1
    assert problems[0][0] == "spec.env[1]"
    assert "secret" in problems[0][1]
