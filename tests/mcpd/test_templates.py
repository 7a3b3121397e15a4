"""Servers made from templates: parameters are checked and the effective spec is shown."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.mcpd.manifests import (
    JSON,
    error_paths,
    must_put,
    put,
    secret,
    secret_env,
    server,
    template,
)

pytestmark = pytest.mark.anyio


def github_template() -> JSON:
    return template(
        "github",
        description="GitHub access",
        command="npx",
        args=["-y", "@modelcontextprotocol/server-github"],
        env=[{"name": "LOG_LEVEL", "value": "info"}],
        parameters=[
            {"name": "GITHUB_TOKEN", "required": True, "secret": True, "description": "a PAT"},
            {"name": "GITHUB_HOST", "default": "github.com"},
            {"name": "ORG", "required": True},
        ],
    )


@pytest.fixture
async def github(api: httpx.AsyncClient) -> None:
    await must_put(api, github_template(), secret("gh", {"token": "ghp_x"}))


def github_server(**spec: Any) -> JSON:
    env = [secret_env("GITHUB_TOKEN", "gh", "token"), {"name": "ORG", "value": "acme"}]
    return server("gh", fromTemplate="github", env=env, **spec)


async def test_from_template_to_a_missing_template_is_422(api: httpx.AsyncClient) -> None:
    response = await put(api, server("gh", fromTemplate="nope"))

    assert response.status_code == 422
    assert response.json()["code"] == "invalid_input"
    assert error_paths(response) == ["spec.fromTemplate"]


@pytest.mark.usefixtures("github")
async def test_missing_required_template_parameter_is_422(api: httpx.AsyncClient) -> None:
    body = server("gh", fromTemplate="github", env=[secret_env("GITHUB_TOKEN", "gh", "token")])

    response = await put(api, body)

    assert response.status_code == 422
    assert response.json()["code"] == "invalid_input"
    assert error_paths(response) == ["spec.env"]
    assert "ORG" in response.json()["detail"]
    assert (await api.get("/api/v1/servers/gh")).status_code == 404


@pytest.mark.usefixtures("github")
async def test_secret_template_parameter_given_as_a_literal_is_422(
    api: httpx.AsyncClient,
) -> None:
    env = [{"name": "ORG", "value": "acme"}, {"name": "GITHUB_TOKEN", "value": "ghp_plain"}]

    response = await put(api, server("gh", fromTemplate="github", env=env))

    assert response.status_code == 422
    assert response.json()["code"] == "invalid_input"
    assert error_paths(response) == ["spec.env[1]"]


@pytest.mark.usefixtures("github")
async def test_effective_spec_merges_template_fields_into_the_server(
    api: httpx.AsyncClient,
) -> None:
    response = await put(api, github_server())

    assert response.status_code == 201, response.text
    effective = response.json()["object"]["status"]["effective"]
    assert effective["command"] == "npx"
    assert effective["args"] == ["-y", "@modelcontextprotocol/server-github"]
    assert effective["description"] == "GitHub access"
    assert (effective["transport"], effective["runtime"]) == ("stdio", "process")
    assert sorted(effective["env"]) == ["GITHUB_HOST", "GITHUB_TOKEN", "LOG_LEVEL", "ORG"]
    assert response.json()["object"]["spec"]["fromTemplate"] == "github"
    assert "command" not in response.json()["object"]["spec"]


@pytest.mark.usefixtures("github")
async def test_server_fields_win_over_template_fields(api: httpx.AsyncClient) -> None:
    response = await put(api, github_server(command="node", args=["server.js"]))

    effective = response.json()["object"]["status"]["effective"]
    assert (effective["command"], effective["args"]) == ("node", ["server.js"])


@pytest.mark.usefixtures("github")
async def test_template_changes_show_in_the_servers_effective_spec_at_once(
    api: httpx.AsyncClient,
) -> None:
    await must_put(api, github_server())
    changed = github_template()
    changed["spec"]["command"] = "bunx"

    await must_put(api, changed)

    shown = (await api.get("/api/v1/servers/gh")).json()
    assert shown["status"]["effective"]["command"] == "bunx"
    listed = (await api.get("/api/v1/servers")).json()["items"]
    assert listed[0]["status"]["effective"]["command"] == "bunx"


@pytest.mark.usefixtures("github")
async def test_deleting_a_template_used_by_a_server_is_409_in_use(
    api: httpx.AsyncClient,
) -> None:
    await must_put(api, github_server())

    response = await api.delete("/api/v1/templates/github")

    assert response.status_code == 409
    assert response.json()["code"] == "in_use"
    assert response.json()["usedBy"] == [
        {"kind": "Server", "name": "gh", "field": "spec.fromTemplate"}
    ]
    assert (await api.get("/api/v1/templates/github")).status_code == 200


async def test_template_that_cannot_run_is_422(api: httpx.AsyncClient) -> None:
    response = await put(api, template("broken", runtime="docker"))

    assert response.status_code == 422
    assert error_paths(response) == ["spec.image"]


async def test_template_with_duplicate_parameter_names_is_422(api: httpx.AsyncClient) -> None:
    body = template("dup", command="x", parameters=[{"name": "A"}, {"name": "A"}])

    response = await put(api, body)

    assert response.status_code == 422
    assert error_paths(response) == ["spec.parameters"]


async def test_server_from_template_without_command_anywhere_is_422(
    api: httpx.AsyncClient,
) -> None:
    await must_put(api, template("img", runtime="docker", image="busybox"))

    response = await put(api, server("srv", fromTemplate="img", runtime="process"))

    assert response.status_code == 422
    assert error_paths(response) == ["spec.command"]
    assert "img" in response.json()["detail"]


@pytest.mark.usefixtures("github")
async def test_a_template_change_that_would_break_its_servers_is_409_and_changes_nothing(
    api: httpx.AsyncClient,
) -> None:
    await must_put(api, github_server())
    stricter = github_template()
    stricter["spec"]["parameters"].append({"name": "REGION", "required": True})

    response = await put(api, stricter)
    stored = await api.get("/api/v1/templates/github")

    assert response.status_code == 409
    assert response.json()["code"] == "in_use"
    assert response.json()["usedBy"] == [{"kind": "Server", "name": "gh"}]
    assert "REGION" in response.json()["detail"]
    assert stored.json()["metadata"]["resourceVersion"] == "1"


@pytest.mark.usefixtures("github")
async def test_a_template_change_its_servers_still_satisfy_is_applied(
    api: httpx.AsyncClient,
) -> None:
    await must_put(api, github_server())
    looser = github_template()
    looser["spec"]["parameters"].append({"name": "REGION", "default": "eu"})

    response = await put(api, looser)

    assert response.status_code == 200
    assert response.json()["outcome"] == "configured"


async def test_template_args_naming_an_unknown_value_are_422(api: httpx.AsyncClient) -> None:
    body = template("fs", command="npx", args=["server-filesystem", "$(ROOT_DIR)"])

    response = await put(api, body)

    assert response.status_code == 422
    assert error_paths(response) == ["spec"]
    assert "$(ROOT_DIR)" in response.json()["detail"]


async def test_template_args_may_name_parameters_and_env_entries(api: httpx.AsyncClient) -> None:
    body = template(
        "fs",
        command="npx",
        args=["server-filesystem", "$(ROOT_DIR)", "--mode=$(MODE)"],
        env=[{"name": "MODE", "value": "ro"}],
        parameters=[{"name": "ROOT_DIR", "required": True}],
    )

    response = await put(api, body)

    assert response.status_code == 201


async def test_a_template_parameter_name_must_be_an_environment_variable_name(
    api: httpx.AsyncClient,
) -> None:
    body = template("fs", command="npx", parameters=[{"name": "root-dir"}])

    response = await put(api, body)

    assert response.status_code == 422
    assert error_paths(response) == ["spec.parameters[0].name"]
