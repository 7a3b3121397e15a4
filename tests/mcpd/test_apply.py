"""PUT is apply: created / configured / unchanged, strict input, and dry runs."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from mcpctl.domain.names import NAME_RULE
from tests.mcpd.manifests import (
    collection_of,
    error_paths,
    must_put,
    project,
    prompt,
    put,
    server,
    url_of,
)

pytestmark = pytest.mark.anyio


async def test_apply_answers_created_configured_unchanged(api: httpx.AsyncClient) -> None:
    first = await put(api, server("time", args=["mcp-server-time"]))
    again = await put(api, server("time", args=["mcp-server-time"]))
    changed = await put(api, server("time", args=["mcp-server-time", "--local-timezone=UTC"]))

    assert (first.status_code, first.json()["outcome"]) == (201, "created")
    assert (again.status_code, again.json()["outcome"]) == (200, "unchanged")
    assert (changed.status_code, changed.json()["outcome"]) == (200, "configured")
    assert changed.json()["object"]["spec"]["args"] == ["mcp-server-time", "--local-timezone=UTC"]


async def test_apply_bumps_resource_version_only_when_something_changed(
    api: httpx.AsyncClient,
) -> None:
    await put(api, server("time"))
    unchanged = (await put(api, server("time"))).json()["object"]
    configured = (await put(api, server("time", description="clock"))).json()["object"]

    assert unchanged["metadata"]["resourceVersion"] == "1"
    assert configured["metadata"]["resourceVersion"] == "2"
    assert configured["metadata"]["uid"] == unchanged["metadata"]["uid"]


async def test_apply_of_new_labels_alone_is_configured(api: httpx.AsyncClient) -> None:
    await put(api, server("time", labels={"team": "infra"}))

    response = await put(api, server("time", labels={"team": "web"}))

    assert response.json()["outcome"] == "configured"
    assert (await api.get("/api/v1/servers/time")).json()["metadata"]["labels"] == {"team": "web"}


async def test_apply_ignores_status_and_server_set_metadata_on_input(
    api: httpx.AsyncClient,
) -> None:
    body = server("time")
    body["status"] = {"effective": {"command": "rm"}, "made": "up"}
    body["metadata"]["uid"] = "not-a-uid"

    response = await put(api, body)

    stored = response.json()["object"]
    assert response.status_code == 201
    assert "made" not in stored["status"]
    assert stored["status"]["effective"]["command"] == "uvx"
    assert stored["metadata"]["uid"] != "not-a-uid"


UNKNOWN_FIELDS: list[tuple[tuple[Any, ...], str]] = [
    (("spec",), "spec.bogus"),
    (("metadata",), "metadata.foo"),
    ((), "bogus"),
    (("spec", "env", 0), "spec.env[0].bogus"),
]


async def test_unknown_fields_are_422_with_their_path(api: httpx.AsyncClient) -> None:
    for where, path in UNKNOWN_FIELDS:
        body = server("time", env=[{"name": "TZ", "value": "UTC"}])
        node: Any = body
        for step in where:
            node = node[step]
        node[path.rsplit(".", 1)[-1]] = 1

        applied = await put(api, body)
        created = await api.post("/api/v1/servers", json=body)

        for response in (applied, created):
            assert response.status_code == 422, path
            assert response.json()["code"] == "invalid_input"
            assert path in error_paths(response)
    assert (await api.get("/api/v1/servers")).json()["items"] == []


async def test_bad_names_are_422_naming_the_rule(api: httpx.AsyncClient) -> None:
    for name in ["Time", "-time", "time-", "ti_me", "t" * 64, "tíme", "a.b"]:
        body = server(name)

        applied = await api.put(f"/api/v1/servers/{name}", json=body)
        created = await api.post("/api/v1/servers", json=body)

        for response in (applied, created):
            assert response.status_code == 422, name
            problem = response.json()
            assert problem["code"] == "invalid_input"
            assert error_paths(response) == ["metadata.name"]
            assert NAME_RULE in problem["detail"]
    assert (await api.get("/api/v1/servers")).json()["items"] == []


async def test_a_63_character_name_is_accepted(api: httpx.AsyncClient) -> None:
    response = await put(api, server("a" * 63))

    assert response.status_code == 201


async def test_kind_that_does_not_match_the_url_is_422(api: httpx.AsyncClient) -> None:
    body = server("time")
    body["kind"] = "Template"

    applied = await api.put("/api/v1/servers/time", json=body)
    created = await api.post("/api/v1/servers", json=body)

    for response in (applied, created):
        assert response.status_code == 422
        assert response.json()["code"] == "invalid_input"
        assert error_paths(response) == ["kind"]


async def test_metadata_name_that_does_not_match_the_url_is_422(api: httpx.AsyncClient) -> None:
    response = await api.put("/api/v1/servers/other", json=server("time"))

    assert response.status_code == 422
    assert response.json()["code"] == "invalid_input"
    assert error_paths(response) == ["metadata.name"]
    assert (await api.get("/api/v1/servers")).json()["items"] == []


async def test_wrong_api_version_is_422(api: httpx.AsyncClient) -> None:
    body = server("time")
    body["apiVersion"] = "mcpctl/v2"

    response = await put(api, body)

    assert response.status_code == 422
    assert "apiVersion" in error_paths(response)


async def test_bad_labels_are_422_with_their_path(api: httpx.AsyncClient) -> None:
    cases = [({"bad key!": "x"}, "metadata.labels"), ({"team": "not ok!"}, "metadata.labels.team")]
    for labels, path in cases:
        response = await put(api, server("time", labels=labels))

        assert response.status_code == 422
        assert response.json()["code"] == "invalid_input"
        assert error_paths(response) == [path]


UNRUNNABLE: list[tuple[dict[str, Any], str]] = [
    ({"runtime": "docker"}, "spec.image"),
    ({"runtime": "external", "transport": "http"}, "spec.url"),
    ({"runtime": "external", "url": "http://x.test/mcp"}, "spec.transport"),
    ({"transport": "http", "command": "srv"}, "spec.url"),
    ({"command": "x", "runtime": "vm"}, "spec.runtime"),
    ({"command": "x", "env": [{"name": "1X", "value": "v"}]}, "spec.env[0].name"),
    ({"command": "x", "env": [{"name": "X"}]}, "spec.env[0]"),
    (
        {"command": "x", "env": [{"name": "X", "value": "1"}, {"name": "X", "value": "2"}]},
        "spec.env",
    ),
    ({"command": "x", "transport": "sse"}, "spec.transport"),
]


async def test_servers_that_cannot_run_are_422_naming_the_field(api: httpx.AsyncClient) -> None:
    for spec, path in UNRUNNABLE:
        body = server("broken", **spec)
        if "command" not in spec:
            del body["spec"]["command"]

        response = await put(api, body)

        assert response.status_code == 422, (spec, response.text)
        assert response.json()["code"] == "invalid_input"
        assert path in error_paths(response), (spec, response.text)


async def test_prompt_without_content_is_422(api: httpx.AsyncClient) -> None:
    body = prompt("style")
    del body["spec"]["content"]

    response = await put(api, body)

    assert response.status_code == 422
    assert error_paths(response) == ["spec.content"]


async def test_dry_run_create_reports_the_object_but_stores_nothing(
    api: httpx.AsyncClient,
) -> None:
    response = await api.post("/api/v1/servers", json=server("time"), params={"dryRun": "true"})

    assert response.status_code == 201
    assert response.json()["metadata"]["name"] == "time"
    assert (await api.get("/api/v1/servers/time")).status_code == 404


async def test_dry_run_apply_of_a_new_object_stores_nothing(api: httpx.AsyncClient) -> None:
    response = await put(api, server("time"), dryRun="true")

    assert response.status_code == 201
    assert response.json() | {"object": None} == {
        "outcome": "created",
        "dryRun": True,
        "object": None,
    }
    assert (await api.get("/api/v1/servers/time")).status_code == 404


async def test_dry_run_apply_of_a_change_shows_it_but_keeps_the_stored_object(
    api: httpx.AsyncClient,
) -> None:
    (before,) = await must_put(api, server("time", labels={"a": "1"}))

    response = await put(api, server("time", labels={"a": "2"}, description="new"), dryRun="true")

    assert response.json()["outcome"] == "configured"
    assert response.json()["object"]["spec"]["description"] == "new"
    assert response.json()["object"]["metadata"]["labels"] == {"a": "2"}
    assert (await api.get("/api/v1/servers/time")).json() == before


async def test_dry_run_delete_keeps_the_object_and_what_cascades_from_it(
    api: httpx.AsyncClient,
) -> None:
    await must_put(api, server("time"), project("team", ["time"]), prompt("style", "team"))

    response = await api.delete("/api/v1/projects/team", params={"dryRun": "true"})

    assert response.status_code == 200
    assert (await api.get("/api/v1/projects/team")).status_code == 200
    assert (await api.get("/api/v1/prompts/style")).status_code == 200


async def test_dry_run_still_validates(api: httpx.AsyncClient) -> None:
    response = await put(api, project("team", ["missing"]), dryRun="true")

    assert response.status_code == 422
    assert error_paths(response) == ["spec.servers[0]"]


async def test_unknown_kind_in_the_url_is_404(api: httpx.AsyncClient) -> None:
    response = await api.get("/api/v1/widgets")

    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


async def test_list_collection_urls_exist_for_every_kind(api: httpx.AsyncClient) -> None:
    for kind in ("Secret", "Template", "Server", "Project", "Prompt"):
        response = await api.get(collection_of(kind))
        assert response.status_code == 200, kind
        assert response.json()["items"] == []


async def test_a_body_that_is_not_json_is_422_on_the_body(api: httpx.AsyncClient) -> None:
    for content in (b"{not json", b"\xff\xfe", b""):
        response = await api.put(
            url_of(server("time")), content=content, headers={"Content-Type": "application/json"}
        )

        assert response.status_code == 422, content
        assert response.json()["code"] == "invalid_input"
        assert error_paths(response) == ["body"], response.text
