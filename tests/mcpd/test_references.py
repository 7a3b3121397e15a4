"""References between objects: checked on write, enforced on delete, listed by /usage."""

from __future__ import annotations

import httpx
import pytest

from tests.mcpd.manifests import (
    error_paths,
    must_put,
    project,
    prompt,
    put,
    secret,
    secret_env,
    server,
)

pytestmark = pytest.mark.anyio


async def test_env_secret_ref_to_a_missing_secret_is_422_naming_the_field(
    api: httpx.AsyncClient,
) -> None:
    body = server("gh", env=[{"name": "A", "value": "1"}, secret_env("TOKEN", "nope", "token")])

    response = await put(api, body)

    assert response.status_code == 422
    assert response.json()["code"] == "invalid_input"
    assert error_paths(response) == ["spec.env[1].valueFrom.secretRef"]
    assert (await api.get("/api/v1/servers/gh")).status_code == 404


async def test_env_secret_ref_to_a_missing_key_is_422_naming_the_key_field(
    api: httpx.AsyncClient,
) -> None:
    await must_put(api, secret("gh", {"token": "t"}))

    response = await put(api, server("gh", env=[secret_env("TOKEN", "gh", "other")]))

    assert response.status_code == 422
    assert response.json()["code"] == "invalid_input"
    assert error_paths(response) == ["spec.env[0].valueFrom.secretRef.key"]


async def test_project_with_a_missing_server_is_422_naming_its_index(
    api: httpx.AsyncClient,
) -> None:
    await must_put(api, server("time"))

    response = await put(api, project("team", ["time", "missing"]))

    assert response.status_code == 422
    assert response.json()["code"] == "invalid_input"
    assert error_paths(response) == ["spec.servers[1]"]
    assert (await api.get("/api/v1/projects/team")).status_code == 404


async def test_project_listing_a_server_twice_is_422(api: httpx.AsyncClient) -> None:
    await must_put(api, server("time"))

    response = await put(api, project("team", ["time", "time"]))

    assert response.status_code == 422
    assert error_paths(response) == ["spec.servers"]


async def test_prompt_with_a_missing_project_is_422(api: httpx.AsyncClient) -> None:
    response = await put(api, prompt("style", "nope"))

    assert response.status_code == 422
    assert error_paths(response) == ["spec.project"]


async def test_deleting_a_server_used_by_a_project_is_409_in_use_and_deletes_nothing(
    api: httpx.AsyncClient,
) -> None:
    await must_put(api, server("time"), server("fetch"))
    await must_put(api, project("team", ["fetch", "time"]), project("solo", ["time"]))

    response = await api.delete("/api/v1/servers/time")

    assert response.status_code == 409
    problem = response.json()
    assert problem["code"] == "in_use"
    assert problem["usedBy"] == [
        {"kind": "Project", "name": "solo", "field": "spec.servers[0]"},
        {"kind": "Project", "name": "team", "field": "spec.servers[1]"},
    ]
    assert (await api.get("/api/v1/servers/time")).status_code == 200
    assert (await api.get("/api/v1/projects/team")).json()["spec"]["servers"] == ["fetch", "time"]


async def test_deleting_a_secret_used_by_a_server_is_409_in_use(api: httpx.AsyncClient) -> None:
    await must_put(api, secret("gh", {"token": "t"}))
    await must_put(api, server("gh", env=[secret_env("GITHUB_TOKEN", "gh", "token")]))

    response = await api.delete("/api/v1/secrets/gh")

    assert response.status_code == 409
    assert response.json()["code"] == "in_use"
    assert response.json()["usedBy"] == [
        {"kind": "Server", "name": "gh", "field": "spec.env[0].valueFrom.secretRef"}
    ]
    assert (await api.get("/api/v1/secrets/gh")).status_code == 200


async def test_removing_a_secret_key_still_used_is_409_in_use_and_keeps_the_key(
    api: httpx.AsyncClient,
) -> None:
    await must_put(api, secret("gh", {"token": "t", "spare": "s"}))
    await must_put(api, server("gh", env=[secret_env("GITHUB_TOKEN", "gh", "token")]))

    narrowed = await put(api, secret("gh", {"spare": None}))

    assert narrowed.status_code == 409
    assert narrowed.json()["code"] == "in_use"
    assert narrowed.json()["usedBy"][0]["name"] == "gh"
    shown = await api.get("/api/v1/secrets/gh", params={"showValues": "true"})
    assert shown.json()["spec"]["data"] == {"spare": "s", "token": "t"}


async def test_removing_an_unused_secret_key_is_allowed(api: httpx.AsyncClient) -> None:
    await must_put(api, secret("gh", {"token": "t", "spare": "s"}))
    await must_put(api, server("gh", env=[secret_env("GITHUB_TOKEN", "gh", "token")]))

    narrowed = await put(api, secret("gh", {"token": None}))

    assert (narrowed.status_code, narrowed.json()["outcome"]) == (200, "configured")
    assert narrowed.json()["object"]["status"]["keys"] == ["token"]


async def test_once_the_user_is_gone_the_object_can_be_deleted(api: httpx.AsyncClient) -> None:
    await must_put(api, server("time"), project("team", ["time"]))
    await must_put(api, project("team", []))

    response = await api.delete("/api/v1/servers/time")

    assert response.status_code == 200
    assert (await api.get("/api/v1/servers/time/usage")).status_code == 404


async def test_deleting_a_project_deletes_its_prompts(api: httpx.AsyncClient) -> None:
    await must_put(api, server("time"), project("team", ["time"]), project("other", []))
    await must_put(api, prompt("style", "team"), prompt("tone", "team"), prompt("keep", "other"))

    response = await api.delete("/api/v1/projects/team")

    assert response.status_code == 200
    names = [p["metadata"]["name"] for p in (await api.get("/api/v1/prompts")).json()["items"]]
    assert names == ["keep"]
    assert (await api.get("/api/v1/servers/time")).status_code == 200


async def test_usage_lists_who_uses_an_object_and_what_it_uses(api: httpx.AsyncClient) -> None:
    await must_put(api, secret("gh", {"token": "t"}))
    await must_put(api, server("gh", env=[secret_env("GITHUB_TOKEN", "gh", "token")]))
    await must_put(api, project("team", ["gh"]), prompt("style", "team"))

    server_usage = await api.get("/api/v1/servers/gh/usage")
    project_usage = await api.get("/api/v1/projects/team/usage")

    assert server_usage.status_code == 200
    assert server_usage.json() == {
        "usedBy": [{"kind": "Project", "name": "team", "field": "spec.servers[0]"}],
        "uses": [{"kind": "Secret", "name": "gh", "field": "spec.env[0].valueFrom.secretRef"}],
    }
    assert project_usage.json() == {
        "usedBy": [{"kind": "Prompt", "name": "style", "field": "spec.project"}],
        "uses": [{"kind": "Server", "name": "gh", "field": "spec.servers[0]"}],
    }


async def test_usage_of_a_missing_object_is_404(api: httpx.AsyncClient) -> None:
    response = await api.get("/api/v1/servers/nothing/usage")

    assert (response.status_code, response.json()["code"]) == (404, "not_found")


async def test_reapplying_with_fewer_references_updates_usage(api: httpx.AsyncClient) -> None:
    await must_put(api, server("a"), server("b"), project("team", ["a", "b"]))

    await must_put(api, project("team", ["b"]))

    assert (await api.get("/api/v1/servers/a/usage")).json()["usedBy"] == []
    assert (await api.get("/api/v1/servers/b/usage")).json()["usedBy"] == [
        {"kind": "Project", "name": "team", "field": "spec.servers[0]"}
    ]
