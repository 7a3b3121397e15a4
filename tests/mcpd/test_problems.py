"""Every error is an RFC 9457 problem document with a stable code; 500s say nothing inside."""

from __future__ import annotations

import logging

import httpx
import pytest
from asgi_lifespan import LifespanManager

from mcpctl.errors import AlreadyExists, InUse, InvalidInput, NotFound, from_problem
from mcpctl.mcpd.app import create_app
from mcpctl.mcpd.settings import Settings
from tests.mcpd.manifests import must_put, project, put, server
from tests.mcpd.running import admin_token

pytestmark = pytest.mark.anyio

PROBLEM_JSON = "application/problem+json"


def assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    problem: dict[str, object] = response.json()
    assert {"type", "title", "status", "detail", "code"} <= problem.keys()
    assert problem["status"] == status
    assert problem["code"] == code
    assert problem["type"] == f"urn:mcpctl:problem:{code}"
    assert isinstance(problem["title"], str)
    assert problem["title"]
    assert isinstance(problem["detail"], str)
    assert problem["detail"]
    return problem


async def test_every_kind_of_error_is_a_problem_document(api: httpx.AsyncClient) -> None:
    await must_put(api, server("time"), project("team", ["time"]))
    bad = server("time")
    bad["spec"]["bogus"] = True

    cases = [
        (await api.get("/api/v1/servers/nothing"), 404, "not_found"),
        (await api.get("/no/such/route"), 404, "not_found"),
        (await api.patch("/api/v1/servers/time", json={}), 405, "method_not_allowed"),
        (await api.post("/api/v1/servers", json=server("time")), 409, "already_exists"),
        (await api.delete("/api/v1/servers/time"), 409, "in_use"),
        (await put(api, bad), 422, "invalid_input"),
        (await put(api, project("team", ["missing"])), 422, "invalid_input"),
        (await api.get("/api/v1/servers", params={"limit": 0}), 422, "invalid_input"),
        (
            await api.get("/api/v1/auth/whoami", headers={"Authorization": ""}),
            401,
            "unauthenticated",
        ),
    ]

    for response, status, code in cases:
        assert_problem(response, status, code)


async def test_validation_problems_list_every_error_with_path_and_message(
    api: httpx.AsyncClient,
) -> None:
    body = server("time", runtime="vm")
    body["spec"]["bogus"] = 1

    problem = assert_problem(await put(api, body), 422, "invalid_input")

    errors = problem["errors"]
    assert isinstance(errors, list)
    assert {e["path"] for e in errors} == {"spec.runtime", "spec.bogus"}
    assert all(e["message"] for e in errors)
    assert "(and 1 more)" in str(problem["detail"])


async def test_unknown_route_is_a_404_problem(api: httpx.AsyncClient) -> None:
    assert_problem(await api.get("/api/v2/servers"), 404, "not_found")


async def test_problems_rebuild_the_same_error_on_the_client_side(
    api: httpx.AsyncClient,
) -> None:
    await must_put(api, server("time"), project("team", ["time"]))

    in_use = await api.delete("/api/v1/servers/time")
    missing = await api.get("/api/v1/servers/nothing")
    exists = await api.post("/api/v1/servers", json=server("time"))
    invalid = await put(api, project("other", ["missing"]))

    rebuilt = from_problem(in_use.json(), in_use.status_code)
    assert isinstance(rebuilt, InUse)
    assert rebuilt.message == in_use.json()["detail"]
    assert rebuilt.details["usedBy"] == in_use.json()["usedBy"]
    assert isinstance(from_problem(missing.json(), missing.status_code), NotFound)
    assert isinstance(from_problem(exists.json(), exists.status_code), AlreadyExists)
    invalid_error = from_problem(invalid.json(), invalid.status_code)
    assert isinstance(invalid_error, InvalidInput)
    assert invalid_error.details["errors"][0]["path"] == "spec.servers[0]"


async def test_an_unexpected_error_is_a_generic_500_and_logged_once(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    application = create_app(settings)

    @application.get("/boom")
    async def boom() -> None:
        raise RuntimeError("database password is hunter2")

    async with LifespanManager(application) as manager:
        transport = httpx.ASGITransport(app=manager.app, raise_app_exceptions=False)
        headers = {"Authorization": f"Bearer {admin_token(settings)}"}
        async with httpx.AsyncClient(
            transport=transport, base_url="http://mcpd.test", headers=headers
        ) as client:
            with caplog.at_level(logging.ERROR, logger="mcpctl.mcpd.problems"):
                response = await client.get("/boom")

    problem = assert_problem(response, 500, "internal")
    assert "hunter2" not in response.text
    assert "RuntimeError" not in response.text
    assert problem["title"] == "Internal error"
    logged = [r for r in caplog.records if r.name == "mcpctl.mcpd.problems"]
    assert len(logged) == 1
    assert logged[0].exc_info is not None
    assert "hunter2" in str(logged[0].exc_info[1])
