"""`GET /api/v1/users/{name}/permissions` and `/api/v1/groups/{name}/permissions`: every
permission with its origin (direct or via a group) and its RbacDefinition."""

from __future__ import annotations

import httpx
import pytest

from mcpctl.domain.rbac import FULL_ACCESS, Grant
from tests.mcpd.manifests import JSON, manifest, must_put
from tests.people import add_person, bearer

pytestmark = pytest.mark.anyio


def rbac(name: str, subjects: list[str], bindings: list[JSON]) -> JSON:
    return manifest("RbacDefinition", name, {"subjects": subjects, "bindings": bindings})


async def permissions(api: httpx.AsyncClient, path: str, token: str | None = None) -> JSON:
    response = await api.get(path, headers=bearer(token) if token else None)
    assert response.status_code == 200, response.text
    body: JSON = response.json()
    return body


async def setup_team(api: httpx.AsyncClient) -> str:
    """alice (token returned) in group devs; one definition for her, one for devs."""
    alice = await add_person(api, "alice")
    await add_person(api, "bob")
    await must_put(
        api,
        manifest("Group", "devs", {"members": ["alice", "bob"]}),
        rbac(
            "alice-servers",
            ["user:alice"],
            [{"role": "edit", "resource": "servers", "name": "github"}],
        ),
        rbac(
            "devs-read",
            ["group:devs"],
            [{"role": "view", "resource": "*"}, {"role": "run", "action": "logs"}],
        ),
    )
    return alice


async def test_a_users_permissions_show_direct_ones_and_those_via_each_group(
    api: httpx.AsyncClient,
) -> None:
    await setup_team(api)

    body = await permissions(api, "/api/v1/users/alice/permissions")

    assert (body["kind"], body["subject"]) == ("PermissionList", "user:alice")
    assert body["items"] == [
        {
            "role": "edit",
            "resource": "servers",
            "name": "github",
            "action": None,
            "via": "direct",
            "definition": "alice-servers",
        },
        {
            "role": "view",
            "resource": "*",
            "name": None,
            "action": None,
            "via": "group devs",
            "definition": "devs-read",
        },
        {
            "role": "run",
            "resource": None,
            "name": None,
            "action": "logs",
            "via": "group devs",
            "definition": "devs-read",
        },
    ]


async def test_a_groups_permissions_are_those_of_the_definitions_naming_it(
    api: httpx.AsyncClient,
) -> None:
    await setup_team(api)

    body = await permissions(api, "/api/v1/groups/devs/permissions")

    assert body["subject"] == "group:devs"
    assert [(p["role"], p["resource"], p["action"], p["via"]) for p in body["items"]] == [
        ("view", "*", None, "direct"),
        ("run", None, "logs", "direct"),
    ]


async def test_permissions_follow_a_change_of_membership_at_once(api: httpx.AsyncClient) -> None:
    await setup_team(api)
    await must_put(api, manifest("Group", "devs", {"members": ["bob"]}))

    body = await permissions(api, "/api/v1/users/alice/permissions")

    assert [p["via"] for p in body["items"]] == ["direct"]


async def test_the_bootstrap_admin_has_full_access_through_the_admin_definition(
    api: httpx.AsyncClient,
) -> None:
    body = await permissions(api, "/api/v1/users/admin/permissions")

    assert {(p["via"], p["definition"]) for p in body["items"]} == {("direct", "admin")}
    assert {Grant(p["role"], p["resource"], p["name"], p["action"]) for p in body["items"]} == (
        FULL_ACCESS
    )


async def test_an_unknown_user_or_group_is_404(api: httpx.AsyncClient) -> None:
    for path in ("/api/v1/users/nobody/permissions", "/api/v1/groups/nobody/permissions"):
        response = await api.get(path)
        assert response.status_code == 404, path
        assert response.json()["code"] == "not_found"


async def test_reading_permissions_needs_view_on_that_user_or_group(api: httpx.AsyncClient) -> None:
    carol = await add_person(api, "carol")
    await must_put(api, manifest("Group", "devs", {"members": []}))
    denied = [
        await api.get(f"/api/v1/{path}/permissions", headers=bearer(carol))
        for path in ("users/admin", "groups/devs", "users/nobody")
    ]
    await must_put(
        api,
        rbac("carol", ["user:carol"], [{"role": "view", "resource": "groups", "name": "devs"}]),
    )

    allowed = await api.get("/api/v1/groups/devs/permissions", headers=bearer(carol))
    other_kind = await api.get("/api/v1/users/admin/permissions", headers=bearer(carol))

    assert [(r.status_code, r.json()["code"]) for r in denied] == [(403, "permission_denied")] * 3
    assert allowed.status_code == 200
    assert other_kind.status_code == 403
