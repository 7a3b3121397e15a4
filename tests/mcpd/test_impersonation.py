"""Impersonation: ``Impersonate-User`` makes a request act as another user, with that user's
permissions, for callers holding the ``impersonate`` operation; both names reach the audit."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.conftest import state_of
from tests.mcpd.manifests import JSON, manifest, put, server
from tests.people import PASSWORD, add_person, add_user

pytestmark = pytest.mark.anyio

HEADER = "Impersonate-User"


async def grant(api: httpx.AsyncClient, user: str, bindings: list[JSON]) -> None:
    """Make ``bindings`` the only ones of ``user`` (as the bootstrap admin)."""
    spec = {"subjects": [f"user:{user}"], "bindings": bindings}
    response = await put(api, manifest("RbacDefinition", f"probe-{user}", spec))
    assert response.is_success, response.text


def acting(token: str | None, as_user: str) -> dict[str, str]:
    """Headers of a request with ``token`` (None: the admin's) acting as ``as_user``."""
    headers = {HEADER: as_user}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return headers


async def events(app: FastAPI, api: httpx.AsyncClient, **params: Any) -> list[JSON]:
    """Audit events so far, oldest first."""
    await state_of(app).audit.flush()
    response = await api.get("/api/v1/auditevents", params=params)
    assert response.status_code == 200, response.text
    items: list[JSON] = response.json()["items"]
    return items[::-1]


def brief(event: JSON) -> tuple[Any, ...]:
    return (
        event["user"],
        event["impersonatedBy"],
        event["verb"],
        event["kind"],
        event["name"],
        event["outcome"],
    )


async def command_of(api: httpx.AsyncClient, name: str) -> Any:
    return (await api.get(f"/api/v1/servers/{name}")).json()["spec"].get("command")


async def test_an_impersonator_acts_with_the_targets_permissions_not_their_own(
    app: FastAPI, api: httpx.AsyncClient
) -> None:
    await add_person(api, "alice")
    await put(api, server("a", command="uvx"))

    denied = await api.put(
        "/api/v1/servers/a", json=server("a", command="npx"), headers=acting(None, "alice")
    )
    unchanged = await command_of(api, "a")
    await grant(api, "alice", [{"role": "edit", "resource": "servers"}])
    allowed = await api.put(
        "/api/v1/servers/a", json=server("a", command="npx"), headers=acting(None, "alice")
    )

    assert (denied.status_code, denied.json()["code"]) == (403, "permission_denied")
    assert "alice" in denied.json()["detail"]
    assert unchanged == "uvx"
    assert allowed.status_code == 200, allowed.text
    assert await command_of(api, "a") == "npx"
    audited = [brief(e) for e in await events(app, api, kind="Server")]
    assert audited[-2:] == [
        ("alice", "admin", "edit", "Server", "a", "denied"),
        ("alice", "admin", "apply", "Server", "a", "ok"),
    ]


async def test_impersonating_needs_the_impersonate_operation_and_changes_nothing_without(
    app: FastAPI, api: httpx.AsyncClient
) -> None:
    bob = await add_person(api, "bob")
    await add_person(api, "alice")
    await grant(api, "alice", [{"role": "create", "resource": "servers"}])
    await grant(api, "bob", [{"role": "view", "resource": "*"}])

    without = await api.post("/api/v1/servers", json=server("b"), headers=acting(bob, "alice"))
    absent = (await api.get("/api/v1/servers/b")).status_code
    unknown = await api.get("/api/v1/servers", headers=acting(bob, "nobody"))
    await grant(
        api, "bob", [{"role": "view", "resource": "*"}, {"role": "run", "action": "impersonate"}]
    )
    with_it = await api.post("/api/v1/servers", json=server("b"), headers=acting(bob, "alice"))

    assert (without.status_code, without.json()["code"]) == (403, "permission_denied")
    assert without.json()["detail"] == (
        "user 'bob' may not impersonate other users (that needs {role: run, action: impersonate})"
    )
    # Without the operation nothing tells whether the target exists.
    assert unknown.json()["detail"] == without.json()["detail"]
    assert absent == 404
    assert with_it.status_code == 201, with_it.text
    audited = [brief(e) for e in await events(app, api)]
    assert ("bob", None, "run", "impersonate", "alice", "denied") in audited
    assert ("bob", None, "run", "impersonate", "nobody", "denied") in audited
    assert audited[-1] == ("alice", "bob", "create", "Server", "b", "ok")


@pytest.mark.parametrize("target", ["nobody", "carol"])
async def test_an_unknown_or_disabled_target_is_refused_alike(
    app: FastAPI, api: httpx.AsyncClient, target: str
) -> None:
    await add_user(api, "carol", disabled=True)

    response = await api.get("/api/v1/auth/whoami", headers=acting(None, target))

    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"
    assert response.json()["detail"] == f"cannot impersonate {target!r}: no such enabled user"
    audited = [brief(e) for e in await events(app, api)]
    assert audited[-1] == ("admin", None, "run", "impersonate", target, "denied")


async def test_whoami_names_the_target_and_the_impersonator(api: httpx.AsyncClient) -> None:
    await add_person(api, "alice")

    acting_as = (await api.get("/api/v1/auth/whoami", headers=acting(None, "alice"))).json()
    itself = (await api.get("/api/v1/auth/whoami")).json()
    can = await api.get(
        "/api/v1/auth/can-i",
        params={"verb": "create", "resource": "servers"},
        headers=acting(None, "alice"),
    )

    assert acting_as == {"user": "alice", "admin": False, "impersonatedBy": "admin"}
    assert itself == {"user": "admin", "admin": True}
    assert can.json() == {"allowed": False}


async def test_a_password_cannot_be_changed_while_impersonating(
    app: FastAPI, api: httpx.AsyncClient
) -> None:
    await add_person(api, "alice")

    response = await api.post(
        "/api/v1/auth/password",
        json={"current": PASSWORD, "new": "a much better password"},
        headers=acting(None, "alice"),
    )
    still = await api.post("/api/v1/auth/login", json={"user": "alice", "password": PASSWORD})

    assert (response.status_code, response.json()["code"]) == (403, "permission_denied")
    assert response.json()["detail"].startswith("cannot change a password while impersonating")
    assert still.status_code == 200
    audited = [brief(e) for e in await events(app, api, kind="auth")]
    assert ("alice", "admin", "change-password", "auth", "alice", "denied") in audited


async def test_tokens_cannot_be_revoked_or_issued_while_impersonating(
    app: FastAPI, api: httpx.AsyncClient
) -> None:
    alice = await add_person(api, "alice")
    listed = await api.get("/api/v1/tokens", headers=acting(None, "alice"))
    token_id = listed.json()["items"][0]["id"]

    revoke = await api.delete(f"/api/v1/tokens/{token_id}", headers=acting(None, "alice"))
    login = await api.post(
        "/api/v1/auth/login",
        json={"user": "alice", "password": PASSWORD},
        headers={HEADER: "alice"},
    )

    assert [t["user"] for t in listed.json()["items"]] == ["alice"]
    assert (revoke.status_code, revoke.json()["code"]) == (403, "permission_denied")
    assert revoke.json()["detail"].startswith("cannot revoke a token while impersonating")
    assert (login.status_code, login.json()["code"]) == (403, "permission_denied")
    still = await api.get("/api/v1/auth/whoami", headers={"Authorization": f"Bearer {alice}"})
    assert still.json()["user"] == "alice"
    audited = [brief(e) for e in await events(app, api, kind="Token")]
    assert audited[-1] == ("alice", "admin", "delete", "Token", token_id, "denied")


@pytest.mark.parametrize(
    "values", [[""], ["  "], ["alice", "bob"]], ids=["empty", "blank", "twice"]
)
async def test_the_header_names_exactly_one_user_so_impersonation_never_chains(
    api: httpx.AsyncClient, values: list[str]
) -> None:
    await add_person(api, "alice")
    await add_person(api, "bob")
    headers = [(HEADER, v) for v in values]

    response = await api.get("/api/v1/auth/whoami", headers=headers)

    assert response.status_code == 422
    assert response.json()["code"] == "invalid_input"
    assert response.json()["detail"] == f"{HEADER}: give exactly one user name"
