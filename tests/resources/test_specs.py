"""Spec models: strict fields, what makes a server runnable, and the references each reports."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from mcpctl.resources.envelope import Resource
from mcpctl.resources.projects import ProjectSpec
from mcpctl.resources.projects import references as project_references
from mcpctl.resources.prompts import PromptSpec
from mcpctl.resources.prompts import references as prompt_references
from mcpctl.resources.references import Reference
from mcpctl.resources.servers import ServerSpec, runnable_problem
from mcpctl.resources.servers import references as server_references
from mcpctl.resources.templates import TemplateSpec
from mcpctl.resources.templates import references as template_references


def locs(exc: ValidationError) -> list[tuple[Any, ...]]:
    return [tuple(e["loc"]) for e in exc.errors()]


def test_unknown_fields_are_rejected_with_their_location() -> None:
    with pytest.raises(ValidationError) as info:
        Resource[ServerSpec].model_validate(
            {
                "kind": "Server",
                "metadata": {"name": "a", "x": 1},
                "spec": {"env": [{"name": "A", "value": "1", "y": 2}]},
            }
        )

    assert set(locs(info.value)) == {("metadata", "x"), ("spec", "env", 0, "y")}


@pytest.mark.parametrize(
    ("spec", "problem"),
    [
        ({"command": "uvx"}, None),
        ({}, "spec.command: required for runtime process"),
        ({"runtime": "docker"}, "spec.image: required for runtime docker"),
        ({"runtime": "docker", "image": "busybox"}, None),
        ({"runtime": "external", "transport": "http"}, "spec.url: required for runtime external"),
        (
            {"runtime": "external", "url": "http://x"},
            "spec.transport: runtime external needs transport http",
        ),
        ({"runtime": "external", "url": "http://x", "transport": "http"}, None),
        (
            {"transport": "http", "command": "x"},
            "spec.url: required for an http server run as a process",
        ),
        ({"transport": "http", "command": "x", "url": "http://127.0.0.1:1/mcp"}, None),
    ],
)
def test_runnable_problem_names_the_missing_field(
    spec: dict[str, Any], problem: str | None
) -> None:
    assert runnable_problem(ServerSpec.model_validate(spec)) == problem


def test_env_needs_exactly_one_source() -> None:
    for entry in (
        {"name": "A"},
        {"name": "A", "value": "v", "valueFrom": {"secretRef": {"name": "s", "key": "k"}}},
    ):
        with pytest.raises(ValidationError) as info:
            ServerSpec.model_validate({"env": [entry]})
        assert locs(info.value) == [("env", 0)]


def test_server_references_its_template_and_secrets() -> None:
    spec = ServerSpec.model_validate(
        {
            "fromTemplate": "github",
            "env": [
                {"name": "A", "value": "1"},
                {"name": "T", "valueFrom": {"secretRef": {"name": "gh", "key": "token"}}},
            ],
        }
    )

    assert server_references(spec) == [
        Reference("Template", "github", "spec.fromTemplate"),
        Reference("Secret", "gh", "spec.env[1].valueFrom.secretRef", "token"),
    ]


def test_template_references_its_secrets() -> None:
    spec = TemplateSpec.model_validate(
        {
            "command": "x",
            "env": [{"name": "T", "valueFrom": {"secretRef": {"name": "gh", "key": "k"}}}],
        }
    )

    assert template_references(spec) == [
        Reference("Secret", "gh", "spec.env[0].valueFrom.secretRef", "k")
    ]


def test_project_references_each_server_by_index() -> None:
    spec = ProjectSpec.model_validate({"servers": ["a", "b"]})

    assert project_references(spec) == [
        Reference("Server", "a", "spec.servers[0]"),
        Reference("Server", "b", "spec.servers[1]"),
    ]


def test_prompts_cascade_with_their_project_and_have_one_owner() -> None:
    spec = PromptSpec.model_validate({"content": "x", "project": "team"})

    assert prompt_references(spec) == [
        Reference("Project", "team", "spec.project", on_delete="cascade")
    ]
    with pytest.raises(ValidationError):
        PromptSpec.model_validate({"content": "x", "project": "p", "agent": "a"})
    with pytest.raises(ValidationError):
        PromptSpec.model_validate({"content": "x", "priority": 11})
