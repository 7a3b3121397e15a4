"""POST /api/v1/apply: many objects in order, one transaction, each succeeding or failing alone."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.mcpd.manifests import JSON, project, secret, secret_env, server

pytestmark = pytest.mark.anyio


def plain(name: str, **spec: Any) -> JSON:
    return server(name, command="uvx", args=["mcp-server-time"], **spec)


async def bulk(api: httpx.AsyncClient, items: list[JSON], **params: Any) -> list[JSON]:
    response = await api.post("/api/v1/apply", json={"items": items}, params=params)
    assert response.status_code == 200, response.text
    results: list[JSON] = response.json()["results"]
    return results


async def test_bulk_apply_reports_each_outcome_in_order(api: httpx.AsyncClient) -> None:
    await bulk(api, [plain("a")])

    results = await bulk(api, [plain("a"), plain("b"), plain("a", description="changed")])

    assert [(r["kind"], r["name"], r["outcome"]) for r in results] == [
        ("Server", "a", "unchanged"),
        ("Server", "b", "created"),
        ("Server", "a", "configured"),
    ]
    assert results[1]["object"]["metadata"]["resourceVersion"] == "1"


async def test_later_objects_see_earlier_ones_of_the_same_request(api: httpx.AsyncClient) -> None:
    items = [
        secret("gh", {"token": "t"}),
        plain("gh", env=[secret_env("TOKEN", "gh", "token")]),
        project("dev", ["gh"]),
    ]

    results = await bulk(api, items)

    assert [r["outcome"] for r in results] == ["created", "created", "created"]
    assert (await api.get("/api/v1/projects/dev")).status_code == 200


async def test_a_failing_object_changes_nothing_and_the_others_are_applied(
    api: httpx.AsyncClient,
) -> None:
    items = [plain("good"), project("broken", ["missing"]), plain("also-good")]

    results = await bulk(api, items)

    assert results[0]["outcome"] == "created"
    assert results[2]["outcome"] == "created"
    error = results[1]["error"]
    assert results[1]["outcome"] is None
    assert (error["code"], error["status"]) == ("invalid_input", 422)
    assert error["errors"][0]["path"] == "spec.servers[0]"
    assert (await api.get("/api/v1/projects/broken")).status_code == 404
    assert (await api.get("/api/v1/servers/also-good")).status_code == 200


async def test_bad_envelopes_are_reported_per_object(api: httpx.AsyncClient) -> None:
    items: list[Any] = [
        {"apiVersion": "mcpctl/v1", "kind": "Gadget", "metadata": {"name": "x"}, "spec": {}},
        server("y", command="uvx", bogus=1),
        plain("Bad_Name"),
    ]

    results = await bulk(api, items)

    codes = [r["error"]["code"] for r in results]
    assert codes == ["invalid_input"] * 3
    assert "known kinds" in results[0]["error"]["detail"]
    assert results[1]["error"]["errors"][0]["path"] == "spec.bogus"
    assert results[2]["error"]["errors"][0]["path"] == "metadata.name"


async def test_a_dry_run_sees_its_own_objects_and_stores_nothing(api: httpx.AsyncClient) -> None:
    items = [plain("time"), project("dev", ["time"])]

    results = await bulk(api, items, dryRun="true")

    assert [r["outcome"] for r in results] == ["created", "created"]
    assert (await api.get("/api/v1/servers/time")).status_code == 404
    assert (await api.get("/api/v1/projects/dev")).status_code == 404


async def test_a_stale_resource_version_fails_only_that_object(api: httpx.AsyncClient) -> None:
    await bulk(api, [plain("a")])
    stale = plain("a", description="x")
    stale["metadata"]["resourceVersion"] = "7"

    results = await bulk(api, [stale, plain("b")])

    assert results[0]["error"]["code"] == "version_conflict"
    assert results[1]["outcome"] == "created"


async def test_more_than_500_objects_in_one_request_is_422(api: httpx.AsyncClient) -> None:
    items = [plain(f"s{i}") for i in range(501)]

    response = await api.post("/api/v1/apply", json={"items": items})

    assert response.status_code == 422
    assert response.json()["errors"][0]["path"] == "items"


async def test_bulk_apply_needs_a_token(api: httpx.AsyncClient) -> None:
    response = await api.post(
        "/api/v1/apply", json={"items": []}, headers={"Authorization": "Bearer nope"}
    )

    assert response.status_code == 401
    assert response.json()["code"] == "unauthenticated"
