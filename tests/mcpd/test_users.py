"""Users as a kind: the password (write-only), the ``users`` row kept in step, disabling,
deleting, the last-full-access guard, and User objects for rows made before the kind existed."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from mcpctl.mcpd.db.tables import UserRow, utcnow
from mcpctl.mcpd.settings import Settings
from tests.conftest import state_of
from tests.mcpd.manifests import JSON, error_paths, manifest, must_put, put
from tests.mcpd.running import raw_rows, running
from tests.people import bearer, log_in

pytestmark = pytest.mark.anyio

PASSWORD = "alice's long password"


def user(name: str, **spec: object) -> JSON:
    return manifest("User", name, dict(spec))


async def login(api: httpx.AsyncClient, name: str, password: str) -> httpx.Response:
    return await api.post(
        "/api/v1/auth/login",
        json={"user": name, "password": password},
        headers={"Authorization": ""},
    )


async def whoami(api: httpx.AsyncClient, token: str) -> int:
    return (await api.get("/api/v1/auth/whoami", headers=bearer(token))).status_code


async def users_row(settings: Settings, name: str) -> list[tuple[object, ...]]:
    return await raw_rows(
        settings,
        "SELECT display_name, disabled, password_hash FROM users WHERE name = :name",
        name=name,
    )


async def test_a_user_created_with_a_password_logs_in(
    api: httpx.AsyncClient, settings: Settings
) -> None:
    created = await api.post(
        "/api/v1/users", json=user("alice", displayName="Alice", password=PASSWORD)
    )
    token = await log_in(api, "alice", PASSWORD)

    assert created.status_code == 201, created.text
    assert created.json()["spec"] == {"displayName": "Alice"}
    assert await whoami(api, token) == 200
    [(display_name, disabled, password_hash)] = await users_row(settings, "alice")
    assert (display_name, bool(disabled)) == ("Alice", False)
    assert str(password_hash).startswith("$argon2id$")


async def test_the_password_is_never_shown_nor_audited(
    app: FastAPI, api: httpx.AsyncClient, settings: Settings
) -> None:
    answers = [
        await put(api, user("alice", password=PASSWORD)),
        await put(api, user("alice", password=PASSWORD + " changed"), dryRun="true"),
        await put(api, user("bob", password="short")),
        await api.post("/api/v1/apply", json={"items": [user("carol", password=PASSWORD)]}),
        await api.get("/api/v1/users/alice", params={"showValues": "true"}),
        await api.get("/api/v1/users", params={"showValues": "true"}),
    ]
    await state_of(app).audit.flush()
    audit = await raw_rows(settings, "SELECT verb, kind, name, details FROM audit_events")

    assert [a.status_code for a in answers] == [201, 200, 422, 200, 200, 200]
    for answer in answers:
        assert PASSWORD not in answer.text
        assert "short" not in answer.text
        assert "password" not in answer.text.replace("spec.password", "")
    assert any(row[1] == "User" for row in audit)
    assert all(PASSWORD not in str(row) and "short" not in str(row) for row in audit)


async def test_a_short_password_is_refused_naming_spec_password(
    api: httpx.AsyncClient, settings: Settings
) -> None:
    response = await put(api, user("alice", password="1234567"))

    assert response.status_code == 422
    assert error_paths(response) == ["spec.password"]
    assert await users_row(settings, "alice") == []
    assert (await api.get("/api/v1/users/alice")).status_code == 404


async def test_reapplying_the_same_password_is_unchanged_and_a_new_one_replaces_it(
    api: httpx.AsyncClient,
) -> None:
    await must_put(api, user("alice", displayName="Alice", password=PASSWORD))

    again = await put(api, user("alice", displayName="Alice", password=PASSWORD))
    without = await put(api, user("alice", displayName="Alice"))
    new = await put(api, user("alice", displayName="Alice", password="a new password"))

    assert again.json()["outcome"] == "unchanged"
    assert without.json()["outcome"] == "unchanged"
    assert new.json()["outcome"] == "configured"
    assert new.json()["object"]["metadata"]["resourceVersion"] == "2"
    assert (await login(api, "alice", PASSWORD)).status_code == 401
    assert (await login(api, "alice", "a new password")).status_code == 200


async def test_a_user_without_a_password_cannot_log_in_until_one_is_set(
    api: httpx.AsyncClient,
) -> None:
    await must_put(api, user("alice"))
    before = await login(api, "alice", "")

    await must_put(api, user("alice", password=PASSWORD))

    assert before.status_code == 401
    assert (await login(api, "alice", PASSWORD)).status_code == 200


async def test_a_disabled_user_loses_access_at_once_and_an_enabled_one_gets_it_back(
    api: httpx.AsyncClient, settings: Settings
) -> None:
    await must_put(api, user("alice", password=PASSWORD))
    token = await log_in(api, "alice", PASSWORD)

    [disabled] = await must_put(api, user("alice", disabled=True))
    refused = await whoami(api, token)
    login_refused = await login(api, "alice", PASSWORD)
    await must_put(api, user("alice"))

    assert disabled["spec"] == {"disabled": True}
    assert refused == 401
    assert login_refused.status_code == 401
    assert await whoami(api, token) == 200
    assert (await login(api, "alice", PASSWORD)).status_code == 200


async def test_disabling_the_last_user_with_full_access_is_refused(
    api: httpx.AsyncClient, settings: Settings
) -> None:
    response = await put(api, user("admin", displayName="Administrator", disabled=True))

    assert response.status_code == 409
    assert response.json()["code"] == "in_use"
    assert "full access" in response.json()["detail"]
    assert (await api.get("/api/v1/users/admin")).json()["spec"] == {"displayName": "Administrator"}
    [(_, disabled, _)] = await users_row(settings, "admin")
    assert not disabled


async def test_disabling_an_admin_is_allowed_while_another_keeps_full_access(
    api: httpx.AsyncClient,
) -> None:
    await must_put(api, user("root", password=PASSWORD))
    definition = (await api.get("/api/v1/rbacdefinitions/admin")).json()
    definition["spec"]["subjects"].append("user:root")
    await must_put(api, definition)

    response = await put(api, user("admin", displayName="Administrator", disabled=True))

    assert response.status_code == 200, response.text
    root = await log_in(api, "root", PASSWORD)
    assert (await api.get("/api/v1/servers", headers=bearer(root))).status_code == 200


async def test_deleting_a_user_deletes_their_row_and_tokens(
    api: httpx.AsyncClient, settings: Settings
) -> None:
    await must_put(api, user("alice", password=PASSWORD))
    token = await log_in(api, "alice", PASSWORD)

    deleted = await api.delete("/api/v1/users/alice")

    assert deleted.status_code == 200
    assert await whoami(api, token) == 401
    assert (await login(api, "alice", PASSWORD)).status_code == 401
    assert await users_row(settings, "alice") == []
    assert await raw_rows(settings, "SELECT id FROM tokens WHERE description = 'login'") == []


async def test_deleting_a_user_still_named_by_a_group_or_definition_is_refused(
    api: httpx.AsyncClient, settings: Settings
) -> None:
    await must_put(
        api,
        user("alice", password=PASSWORD),
        manifest("Group", "team", {"members": ["alice"]}),
        manifest("RbacDefinition", "readers", {"subjects": ["user:alice"], "bindings": []}),
    )

    response = await api.delete("/api/v1/users/alice")
    dry_run_admin = await api.delete("/api/v1/users/admin", params={"dryRun": "true"})

    assert response.status_code == 409
    assert response.json()["code"] == "in_use"
    assert response.json()["usedBy"] == [
        {"kind": "Group", "name": "team", "field": "spec.members[0]"},
        {"kind": "RbacDefinition", "name": "readers", "field": "spec.subjects[0]"},
    ]
    assert "group/team" in response.json()["detail"]
    assert dry_run_admin.status_code == 409
    assert len(await users_row(settings, "alice")) == 1


async def test_the_bootstrap_admin_has_a_user_object(api: httpx.AsyncClient) -> None:
    response = await api.get("/api/v1/users/admin")
    listed = await api.get("/api/v1/users")

    assert response.status_code == 200
    assert response.json()["spec"] == {"displayName": "Administrator"}
    assert [o["metadata"]["name"] for o in listed.json()["items"]] == ["admin"]


async def test_users_rows_from_before_get_a_user_object_at_start_once(
    app: FastAPI, settings: Settings
) -> None:
    auth = state_of(app).auth
    async with auth.uows.write() as uow:
        await uow.users.add(
            UserRow(
                name="legacy",
                display_name="Old Timer",
                is_admin=False,
                disabled=True,
                password_hash=auth.hasher.hash(PASSWORD),
                created_at=utcnow(),
            )
        )
        await uow.commit()

    async with running(settings) as api:
        first = (await api.get("/api/v1/users/legacy")).json()
    async with running(settings) as api:
        second = (await api.get("/api/v1/users/legacy")).json()
        await must_put(api, user("legacy", displayName="Old Timer"))
        token = await log_in(api, "legacy", PASSWORD)

    assert first["spec"] == {"displayName": "Old Timer", "disabled": True}
    assert second["metadata"] == first["metadata"]
    assert token
