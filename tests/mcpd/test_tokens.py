"""Listing and revoking tokens, their lifetime, and changing one's own password."""

from __future__ import annotations

from datetime import datetime, timedelta

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr

from mcpctl.mcpd.db.tables import utcnow
from mcpctl.mcpd.services.auth import hash_token
from mcpctl.mcpd.settings import Settings
from tests.conftest import state_of
from tests.mcpd.running import running
from tests.people import PASSWORD, add_person, bearer

pytestmark = pytest.mark.anyio


async def expire(app: FastAPI, token_id: str) -> None:
    """Make a token expired a second ago: no route issues one already expired."""
    async with state_of(app).auth.uows.write() as uow:
        found = await uow.users.token(token_id)
        assert found is not None
        found[0].expires_at = utcnow() - timedelta(seconds=1)
        await uow.commit()


async def tokens(api: httpx.AsyncClient, token: str | None = None, **params: str) -> list[dict]:  # type: ignore[type-arg]
    response = await api.get(
        "/api/v1/tokens", params=params, headers=bearer(token) if token else None
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["kind"] == "TokenList"
    items: list[dict] = body["items"]  # type: ignore[type-arg]
    return items


async def test_a_user_lists_only_their_own_tokens_and_the_current_one_is_marked(
    api: httpx.AsyncClient,
) -> None:
    alice = await add_person(api, "alice")
    await add_person(api, "alice")
    await add_person(api, "bob")

    mine = await tokens(api, alice)

    assert [t["user"] for t in mine] == ["alice", "alice"]
    assert [t["current"] for t in mine] == [True, False]
    assert set(mine[0]) == {"id", "user", "description", "createdAt", "expiresAt", "current"}
    assert alice not in str(mine)
    assert hash_token(alice) not in str(mine)
    assert [t["user"] for t in await tokens(api)] == ["admin"]


async def test_all_tokens_need_permission(api: httpx.AsyncClient) -> None:
    alice = await add_person(api, "alice")

    everyone = await tokens(api, all="true")
    denied = await api.get("/api/v1/tokens", params={"all": "true"}, headers=bearer(alice))

    assert sorted(t["user"] for t in everyone) == ["admin", "alice"]
    assert denied.status_code == 403
    assert denied.json()["code"] == "permission_denied"


async def test_a_revoked_token_is_refused_at_the_next_request(api: httpx.AsyncClient) -> None:
    alice = await add_person(api, "alice")
    (own,) = await tokens(api, alice)

    revoked = await api.delete(f"/api/v1/tokens/{own['id']}", headers=bearer(alice))
    after = await api.get("/api/v1/auth/whoami", headers=bearer(alice))

    assert revoked.status_code == 200
    assert revoked.json() == {"id": own["id"], "revoked": True}
    assert after.status_code == 401
    assert after.json()["code"] == "unauthenticated"


async def test_revoking_another_users_token_needs_permission(api: httpx.AsyncClient) -> None:
    alice = await add_person(api, "alice")
    bob = await add_person(api, "bob")
    (bobs,) = await tokens(api, bob)

    by_alice = await api.delete(f"/api/v1/tokens/{bobs['id']}", headers=bearer(alice))
    unknown_by_alice = await api.delete("/api/v1/tokens/nope", headers=bearer(alice))
    still = await api.get("/api/v1/auth/whoami", headers=bearer(bob))
    by_admin = await api.delete(f"/api/v1/tokens/{bobs['id']}")
    gone = await api.get("/api/v1/auth/whoami", headers=bearer(bob))
    unknown_by_admin = await api.delete("/api/v1/tokens/nope")

    assert by_alice.status_code == 403
    assert by_alice.json()["code"] == "permission_denied"
    assert unknown_by_alice.status_code == 403
    assert still.status_code == 200
    assert by_admin.status_code == 200
    assert gone.status_code == 401
    assert unknown_by_admin.status_code == 404
    assert unknown_by_admin.json()["code"] == "not_found"


async def test_revocations_are_audited(app: FastAPI, api: httpx.AsyncClient) -> None:
    alice = await add_person(api, "alice")
    (own,) = await tokens(api, alice)
    await api.delete(f"/api/v1/tokens/{own['id']}", headers=bearer(alice))
    await state_of(app).audit.flush()

    items = (await api.get("/api/v1/auditevents", params={"kind": "Token"})).json()["items"]

    assert [(e["user"], e["verb"], e["name"], e["outcome"]) for e in items] == [
        ("alice", "delete", own["id"], "ok")
    ]


async def test_an_expired_token_is_401_and_not_listed(app: FastAPI, api: httpx.AsyncClient) -> None:
    await add_person(api, "alice")
    expired = await add_person(api, "alice")
    await expire(app, next(t["id"] for t in await tokens(api, expired) if t["current"]))

    response = await api.get("/api/v1/auth/whoami", headers=bearer(expired))

    assert response.status_code == 401
    assert response.json()["code"] == "unauthenticated"
    assert [t["user"] for t in await tokens(api, all="true")] == ["admin", "alice"]


async def test_login_tokens_live_as_long_as_the_lifetime_setting(settings: Settings) -> None:
    configured = settings.model_copy(
        update={"admin_password": SecretStr(PASSWORD), "token_lifetime_days": 7}
    )
    async with running(configured) as api:
        login = await api.post("/api/v1/auth/login", json={"user": "admin", "password": PASSWORD})
        token = login.json()["token"]
        listed = await tokens(api, token)

    (current,) = [t for t in listed if t["current"]]
    lifetime = datetime.fromisoformat(current["expiresAt"]) - datetime.fromisoformat(
        current["createdAt"]
    )
    assert lifetime == timedelta(days=7)
    assert [t["expiresAt"] for t in listed if not t["current"]] == [None]


async def test_a_user_changes_their_own_password(app: FastAPI, api: httpx.AsyncClient) -> None:
    alice = await add_person(api, "alice")
    new = "a much better password"

    wrong = await api.post(
        "/api/v1/auth/password", json={"current": "nope", "new": new}, headers=bearer(alice)
    )
    short = await api.post(
        "/api/v1/auth/password", json={"current": PASSWORD, "new": "short"}, headers=bearer(alice)
    )
    changed = await api.post(
        "/api/v1/auth/password", json={"current": PASSWORD, "new": new}, headers=bearer(alice)
    )
    old_login = await api.post("/api/v1/auth/login", json={"user": "alice", "password": PASSWORD})
    new_login = await api.post("/api/v1/auth/login", json={"user": "alice", "password": new})
    await state_of(app).audit.flush()
    audited = (await api.get("/api/v1/auditevents", params={"user": "alice"})).json()["items"]

    assert wrong.status_code == 401
    assert wrong.json()["code"] == "unauthenticated"
    assert short.status_code == 422
    assert [e["path"] for e in short.json()["errors"]] == ["new"]
    assert changed.status_code == 204
    assert old_login.status_code == 401
    assert new_login.status_code == 200
    assert [(e["verb"], e["outcome"]) for e in audited if e["verb"] == "change-password"] == [
        ("change-password", "ok"),
        ("change-password", "denied"),
    ]
