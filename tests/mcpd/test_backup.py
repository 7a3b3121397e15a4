"""Backup and restore: every kind and the users, secret values sealed by a passphrase,
validated whole before anything is written, restored all or nothing."""

from __future__ import annotations

import asyncio
import copy
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from argon2 import PasswordHasher
from fastapi import FastAPI

from mcpctl.domain.caller import SYSTEM
from mcpctl.errors import InvalidInput
from mcpctl.mcpd.db.engine import create_engine
from mcpctl.mcpd.db.repository import IN_CHUNK, UserRepository
from mcpctl.mcpd.db.tables import UserRow, utcnow
from mcpctl.mcpd.db.uow import UnitOfWorkFactory
from mcpctl.mcpd.settings import Settings
from mcpctl.resources.envelope import ObjectMeta, Resource
from mcpctl.resources.kinds import KINDS
from tests.conftest import Database, _pg, state_of
from tests.mcpd.chain_kind import LINK, LinkSpec
from tests.mcpd.manifests import (
    JSON,
    error_paths,
    manifest,
    must_put,
    project,
    prompt,
    secret,
    secret_env,
    server,
    template,
)
from tests.mcpd.running import raw_rows, running

pytestmark = pytest.mark.anyio

PASSPHRASE = "a long backup passphrase"
MARKER = "backup-marker-5c1e0b7d"
ALICE_PASSWORD = "alice's password"


@pytest.fixture
def fresh_settings(tmp_path: Path, database: Database, settings: Settings) -> Iterator[Settings]:
    """A second mcpd's settings: a new, empty database on the same engine, another data dir
    (so another at-rest secret key)."""
    schema = None
    if database.engine == "sqlite":
        url = f"sqlite:///{tmp_path / 'fresh.db'}"
    else:
        url = database.url
        schema = f"t_{uuid.uuid4().hex[:12]}"
        asyncio.run(_pg(f'CREATE SCHEMA "{schema}"'))
    try:
        yield settings.model_copy(
            update={
                "data_dir": tmp_path / "fresh-data",
                "database_url": url,
                "database_schema": schema,
            }
        )
    finally:
        if schema is not None:
            asyncio.run(_pg(f'DROP SCHEMA "{schema}" CASCADE'))


@asynccontextmanager
async def users_of(settings: Settings) -> AsyncIterator[UserRepository]:
    """The users table of ``settings``' database, past every service (changes committed)."""
    engine = create_engine(settings.effective_database_url(), schema=settings.database_schema)
    try:
        async with UnitOfWorkFactory(engine).write() as uow:
            yield uow.users
            await uow.commit()
    finally:
        await engine.dispose()


async def add_user(api: httpx.AsyncClient, name: str, password: str) -> None:
    """A user as users are made: a User object with a password."""
    await must_put(api, manifest("User", name, {"displayName": name.title(), "password": password}))


async def add_user_row(settings: Settings, name: str, password: str) -> None:
    """A ``users`` row with no User object, as databases from before User was a kind hold."""
    async with users_of(settings) as users:
        await users.add(
            UserRow(
                name=name,
                display_name=name.title(),
                is_admin=False,
                disabled=False,
                password_hash=PasswordHasher().hash(password),
                created_at=utcnow(),
            )
        )


async def populate(api: httpx.AsyncClient) -> None:
    """One object of every kind, with references, labels and a secret marker value."""
    await must_put(
        api,
        secret("creds", {"token": MARKER, "user": "bot"}, labels={"team": "infra"}),
        template("clock", command="python3", args=["-m", "clock"]),
        server(
            "time",
            labels={"tier": "1"},
            fromTemplate="clock",
            env=[secret_env("T", "creds", "token")],
        ),
        server("plain", command="uvx", args=["mcp-server-time"]),
        project("tools", ["time", "plain"], description="Everyday tools"),
        prompt("hello", "tools", content="Say hello."),
    )


async def take_backup(api: httpx.AsyncClient, passphrase: str = PASSPHRASE) -> JSON:
    response = await api.post("/api/v1/backup", json={"passphrase": passphrase})
    assert response.status_code == 200, response.text
    assert MARKER not in response.text
    document: JSON = response.json()
    return document


async def restore(
    api: httpx.AsyncClient, document: JSON, passphrase: str = PASSPHRASE, **params: Any
) -> httpx.Response:
    return await api.post(
        "/api/v1/restore", json={"passphrase": passphrase, "backup": document}, params=params
    )


async def snapshot(api: httpx.AsyncClient) -> dict[str, list[tuple[str, dict[str, str], Any]]]:
    """Every kind's objects as (name, labels, revealed spec)."""
    out = {}
    for info in KINDS:
        listed = await api.get(f"/api/v1/{info.plural}", params={"showValues": "true"})
        assert listed.status_code == 200, listed.text
        out[info.plural] = [
            (o["metadata"]["name"], o["metadata"]["labels"], o["spec"])
            for o in listed.json()["items"]
        ]
    return out


def nothing_but_bootstrap(snap: dict[str, list[tuple[str, dict[str, str], Any]]]) -> bool:
    """True when a database holds only what mcpd creates at first start (the admin's
    RbacDefinition, and its User object where User is a kind)."""
    bootstrap = [snap.pop("rbacdefinitions"), snap.pop("users", [("admin", {}, None)])]
    return all([n for n, _, _ in items] == ["admin"] for items in bootstrap) and all(
        items == [] for items in snap.values()
    )


def outcomes(response: httpx.Response) -> dict[str, str]:
    assert response.status_code == 200, response.text
    return {f"{r['kind']}/{r['name']}": r["outcome"] for r in response.json()["results"]}


async def user_names(settings: Settings) -> list[str]:
    return [str(r[0]) for r in await raw_rows(settings, "SELECT name FROM users ORDER BY name")]


async def test_restore_into_a_fresh_database_gives_back_every_object_and_user(
    api: httpx.AsyncClient, settings: Settings, fresh_settings: Settings
) -> None:
    await populate(api)
    await add_user(api, "alice", ALICE_PASSWORD)
    before = await snapshot(api)
    document = await take_backup(api)

    async with running(fresh_settings) as fresh:
        response = await restore(fresh, document)
        after = await snapshot(fresh)
        login = await fresh.post(
            "/api/v1/auth/login", json={"user": "alice", "password": ALICE_PASSWORD}
        )

    assert after == before
    assert outcomes(response) == {
        "User/admin": "skipped",
        "User/alice": "created",
        "RbacDefinition/admin": "skipped",
        "Secret/creds": "created",
        "Template/clock": "created",
        "Server/plain": "created",
        "Server/time": "created",
        "Project/tools": "created",
        "Prompt/hello": "created",
    }
    assert login.status_code == 200, login.text
    assert await user_names(fresh_settings) == ["admin", "alice"]


async def test_backup_is_versioned_lists_kinds_in_apply_order_and_seals_secret_values(
    api: httpx.AsyncClient,
) -> None:
    await populate(api)

    document = await take_backup(api)

    assert (document["apiVersion"], document["kind"], document["formatVersion"]) == (
        "mcpctl/v1",
        "Backup",
        1,
    )
    assert document["mcpdVersion"]
    assert document["createdAt"]
    assert document["encryption"]["kdf"] == "scrypt"
    assert document["encryption"]["cipher"] == "AES-256-GCM"
    kinds = [o["kind"] for o in document["objects"]]
    order = {info.kind: info.apply_order for info in KINDS}
    assert kinds == sorted(kinds, key=order.__getitem__)
    (creds,) = [o for o in document["objects"] if o["kind"] == "Secret"]
    assert creds["spec"] == {"data": {"token": None, "user": None}}
    assert "encryptedSpec" in creds
    assert [o for o in document["objects"] if "encryptedSpec" in o] == [creds]
    assert MARKER not in yaml.safe_dump(document)
    assert document["users"] == [
        {
            "name": "admin",
            "displayName": "Administrator",
            "admin": True,
            "disabled": False,
            "passwordHash": None,
        }
    ]
    assert "token" not in {key.lower() for key in document}


async def test_a_wrong_passphrase_is_422_and_restores_nothing(
    api: httpx.AsyncClient, fresh_settings: Settings
) -> None:
    await populate(api)
    document = await take_backup(api)

    async with running(fresh_settings) as fresh:
        response = await restore(fresh, document, passphrase="not the passphrase")
        after = await snapshot(fresh)

    assert response.status_code == 422
    assert response.json()["code"] == "invalid_input"
    assert error_paths(response) == ["passphrase"]
    assert "\n" not in response.json()["detail"]
    assert nothing_but_bootstrap(after)
    assert await user_names(fresh_settings) == ["admin"]


async def test_an_altered_sealed_value_is_422_and_restores_nothing(
    api: httpx.AsyncClient, fresh_settings: Settings
) -> None:
    await populate(api)
    await must_put(api, secret("other", {"k": "v"}))
    document = await take_backup(api)
    sealed = [o for o in document["objects"] if "encryptedSpec" in o]
    # Swapping the sealed values of two secrets is noticed: each is bound to its object.
    sealed[0]["encryptedSpec"], sealed[1]["encryptedSpec"] = (
        sealed[1]["encryptedSpec"],
        sealed[0]["encryptedSpec"],
    )

    async with running(fresh_settings) as fresh:
        response = await restore(fresh, document)
        after = await snapshot(fresh)

    assert response.status_code == 422
    assert nothing_but_bootstrap(after)


async def test_a_failure_midway_rolls_back_the_whole_restore(
    api: httpx.AsyncClient, fresh_settings: Settings
) -> None:
    await populate(api)
    document = await take_backup(api)
    # Valid on its own, but the template it needs is not in the file: found only when writing.
    document["objects"].append(server("orphan", fromTemplate="missing"))

    async with running(fresh_settings) as fresh:
        response = await restore(fresh, document)
        after = await snapshot(fresh)

    assert response.status_code == 422
    assert response.json()["detail"].startswith("server/orphan: spec.fromTemplate")
    assert nothing_but_bootstrap(after)
    assert await user_names(fresh_settings) == ["admin"]


async def test_conflict_skip_leaves_existing_objects_and_overwrite_replaces_them(
    api: httpx.AsyncClient, settings: Settings
) -> None:
    await populate(api)
    await add_user(api, "alice", ALICE_PASSWORD)
    before = await snapshot(api)
    document = await take_backup(api)
    await must_put(
        api,
        secret("creds", {"token": "changed", "user": "bot"}, labels={"team": "infra"}),
        server("plain", labels={"new": "label"}, command="uvx", args=["mcp-server-time"]),
    )
    changed = await snapshot(api)

    skipped = outcomes(await restore(api, document))
    after_skip = await snapshot(api)
    overwritten = outcomes(await restore(api, document, conflict="overwrite"))
    after_overwrite = await snapshot(api)
    again = outcomes(await restore(api, document, conflict="overwrite"))

    assert set(skipped.values()) == {"skipped"}
    assert after_skip == changed
    assert overwritten["Secret/creds"] == "configured"
    assert overwritten["Server/plain"] == "configured"
    assert overwritten["Server/time"] == "unchanged"
    assert overwritten["User/alice"] == "unchanged"
    assert after_overwrite == before
    assert set(again.values()) == {"unchanged"}


async def test_overwrite_restores_a_users_password_hash(
    api: httpx.AsyncClient, settings: Settings
) -> None:
    await add_user(api, "alice", ALICE_PASSWORD)
    document = await take_backup(api)
    async with users_of(settings) as users:
        alice = await users.get_by_name("alice")
        assert alice is not None
        alice.password_hash = PasswordHasher().hash("another password")
        alice.disabled = True

    result = outcomes(await restore(api, document, conflict="overwrite"))
    login = await api.post("/api/v1/auth/login", json={"user": "alice", "password": ALICE_PASSWORD})

    assert result["User/alice"] == "configured"
    assert login.status_code == 200, login.text


async def test_users_of_a_backup_from_before_user_objects_get_their_objects_on_restore(
    api: httpx.AsyncClient, settings: Settings, fresh_settings: Settings
) -> None:
    await add_user_row(settings, "carol", "carol's password")
    document = await take_backup(api)
    document["objects"] = [o for o in document["objects"] if o["kind"] != "User"]

    async with running(fresh_settings) as fresh:
        result = outcomes(await restore(fresh, document))
        carol = await fresh.get("/api/v1/users/carol")
        again = outcomes(await restore(fresh, document))
        login = await fresh.post(
            "/api/v1/auth/login", json={"user": "carol", "password": "carol's password"}
        )

    assert result["User/carol"] == "created"
    assert carol.status_code == 200, carol.text
    assert carol.json()["spec"] == {"displayName": "Carol"}
    assert again["User/carol"] == "skipped"
    assert login.status_code == 200, login.text


async def test_dry_run_reports_what_would_happen_and_changes_nothing(
    api: httpx.AsyncClient, fresh_settings: Settings
) -> None:
    await populate(api)
    document = await take_backup(api)

    async with running(fresh_settings) as fresh:
        response = await restore(fresh, document, dryRun="true")
        after = await snapshot(fresh)

    assert response.json()["dryRun"] is True
    assert set(outcomes(response).values()) == {"created", "skipped"}
    assert nothing_but_bootstrap(after)


def _break(document: JSON, change: str) -> JSON:
    broken = copy.deepcopy(document)
    if change == "format":
        broken["formatVersion"] = 2
    elif change == "kind":
        broken["kind"] = "ServerList"
    elif change == "object-kind":
        broken["objects"][0]["kind"] = "Gadget"
    elif change == "object-spec":
        broken["objects"][-1]["spec"]["bogus"] = 1
    elif change == "object-name":
        broken["objects"][-1]["metadata"]["name"] = "Not A Name"
    elif change == "user-hash":
        broken["users"][0]["passwordHash"] = "plaintext"
    elif change == "kdf":
        broken["encryption"]["n"] = 2**30
    elif change == "duplicate":
        broken["objects"].append(copy.deepcopy(broken["objects"][-1]))
    return broken


@pytest.mark.parametrize(
    ("change", "path"),
    [
        ("format", "formatVersion"),
        ("kind", "kind"),
        ("object-kind", "objects[0].kind"),
        ("object-spec", "objects[LAST].spec.bogus"),
        ("object-name", "objects[LAST].metadata.name"),
        ("user-hash", "users[0].passwordHash"),
        ("kdf", "encryption.n"),
        ("duplicate", "objects[LAST+1]"),
    ],
)
async def test_a_malformed_file_is_422_naming_the_problem_and_changes_nothing(
    api: httpx.AsyncClient, change: str, path: str
) -> None:
    await populate(api)
    document = await take_backup(api)
    document["users"][0]["passwordHash"] = "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA"
    before = await snapshot(api)

    response = await restore(api, _break(document, change), conflict="overwrite")

    assert response.status_code == 422, response.text
    assert response.json()["code"] == "invalid_input"
    last = len(document["objects"]) - 1  # the malformed object is the last one (or a copy)
    path = path.replace("LAST+1", str(last + 1)).replace("LAST", str(last))
    assert error_paths(response)[0] == path
    assert response.json()["detail"].startswith(path)
    assert await snapshot(api) == before


async def test_backup_refuses_a_short_passphrase(api: httpx.AsyncClient) -> None:
    response = await api.post("/api/v1/backup", json={"passphrase": "short"})

    assert response.status_code == 422
    assert error_paths(response) == ["passphrase"]


async def test_backup_and_restore_need_their_operations(
    api: httpx.AsyncClient, settings: Settings
) -> None:
    document = await take_backup(api)
    await add_user(api, "bob", "bob's password")
    login = await api.post("/api/v1/auth/login", json={"user": "bob", "password": "bob's password"})
    bob = {"Authorization": f"Bearer {login.json()['token']}"}

    backup = await api.post("/api/v1/backup", json={"passphrase": PASSPHRASE}, headers=bob)
    restored = await api.post(
        "/api/v1/restore", json={"passphrase": PASSPHRASE, "backup": document}, headers=bob
    )

    assert (backup.status_code, backup.json()["code"]) == (403, "permission_denied")
    assert (restored.status_code, restored.json()["code"]) == (403, "permission_denied")
    assert "backup" in backup.json()["detail"]
    assert "restore" in restored.json()["detail"]


# -- the set-based write path (one statement per batch, not per object) ----------------------


async def test_restored_references_and_labels_are_stored_like_applied_ones(
    api: httpx.AsyncClient, fresh_settings: Settings
) -> None:
    await populate(api)
    document = await take_backup(api)

    async with running(fresh_settings) as fresh:
        assert (await restore(fresh, document)).status_code == 200
        usage = await fresh.get("/api/v1/secrets/creds/usage")
        delete = await fresh.delete("/api/v1/secrets/creds")
        labelled = await fresh.get("/api/v1/servers", params={"labelSelector": "tier=1"})

    assert usage.json()["usedBy"] == [
        {"kind": "Server", "name": "time", "field": "spec.env[0].valueFrom.secretRef"}
    ]
    assert (delete.status_code, delete.json()["code"]) == (409, "in_use")
    assert [o["metadata"]["name"] for o in labelled.json()["items"]] == ["time"]


async def test_overwrite_replaces_the_references_and_labels_of_a_changed_object(
    api: httpx.AsyncClient,
) -> None:
    await populate(api)
    document = await take_backup(api)
    await must_put(
        api,
        secret("other", {"token": "x"}),
        server(
            "time",
            labels={"moved": "yes"},
            env=[secret_env("T", "other", "token")],
            command="uvx",
            args=["mcp-server-time"],
        ),
    )

    result = outcomes(await restore(api, document, conflict="overwrite"))
    other = await api.get("/api/v1/secrets/other/usage")
    creds = await api.get("/api/v1/secrets/creds/usage")
    labels = (await api.get("/api/v1/servers/time")).json()["metadata"]["labels"]

    assert result["Server/time"] == "configured"
    assert other.json()["usedBy"] == []
    assert [u["name"] for u in creds.json()["usedBy"]] == ["time"]
    assert labels == {"tier": "1"}
    assert (await api.delete("/api/v1/secrets/other")).status_code == 200


async def test_a_reference_to_a_secret_key_missing_from_the_file_fails_naming_the_object(
    api: httpx.AsyncClient, fresh_settings: Settings
) -> None:
    await populate(api)
    document = await take_backup(api)
    document["objects"].append(
        server("needs-key", command="uvx", env=[secret_env("X", "creds", "nope")])
    )

    async with running(fresh_settings) as fresh:
        response = await restore(fresh, document)
        after = await snapshot(fresh)

    assert response.status_code == 422, response.text
    assert response.json()["detail"] == (
        "server/needs-key: spec.env[0].valueFrom.secretRef.key: secret 'creds' has no key "
        "'nope' (nothing was restored)"
    )
    assert nothing_but_bootstrap(after)


async def test_a_change_leaving_nobody_with_full_access_rolls_back_the_whole_restore(
    api: httpx.AsyncClient,
) -> None:
    await populate(api)
    document = await take_backup(api)
    (admin,) = [o for o in document["objects"] if o["kind"] == "RbacDefinition"]
    admin["spec"]["bindings"] = [{"role": "view", "resource": "*"}]
    document["objects"].append(server("extra", command="uvx"))
    before = await snapshot(api)

    response = await restore(api, document, conflict="overwrite")

    assert (response.status_code, response.json()["code"]) == (409, "in_use")
    assert response.json()["detail"].startswith("rbacdefinitions: the change would leave")
    assert response.json()["detail"].endswith("(nothing was restored)")
    assert await snapshot(api) == before


async def test_a_restore_larger_than_one_query_chunk_skips_and_overwrites_every_object(
    api: httpx.AsyncClient,
) -> None:
    document = await take_backup(api)
    count = IN_CHUNK * 2 + 7
    document["objects"] += [
        server(f"s-{i:04d}", labels={"n": str(i)}, command="uvx") for i in range(count)
    ]

    created = outcomes(await restore(api, document))
    skipped = outcomes(await restore(api, document))
    unchanged = outcomes(await restore(api, document, conflict="overwrite"))
    listed = await api.get("/api/v1/servers", params={"labelSelector": f"n={count - 1}"})

    servers = [k for k in created if k.startswith("Server/")]
    assert len(servers) == count
    assert {created[k] for k in servers} == {"created"}
    assert {skipped[k] for k in servers} == {"skipped"}
    assert {unchanged[k] for k in servers} == {"unchanged"}
    assert [o["metadata"]["name"] for o in listed.json()["items"]] == [f"s-{count - 1:04d}"]


def _link(name: str, next_name: str | None = None) -> Resource[LinkSpec]:
    return Resource[LinkSpec](
        kind="Link", metadata=ObjectMeta(name=name), spec=LinkSpec(next=next_name)
    )


async def test_objects_of_a_batch_may_refer_to_earlier_objects_of_it_but_not_to_later_ones(
    app: FastAPI,
) -> None:
    objects = state_of(app).objects
    async with objects.uows.write() as uow:
        written = await objects.write_batch_in(
            uow, LINK, [_link("a"), _link("b", "a"), _link("c", "b")], overwrite=False
        )
        await uow.commit()
    async with objects.uows.write() as uow:
        with pytest.raises(InvalidInput) as raised:
            await objects.write_batch_in(uow, LINK, [_link("x", "y"), _link("y")], overwrite=False)

    assert written == ["created", "created", "created"]
    assert [u.name for u in (await objects.usage(SYSTEM, LINK, "a")).usedBy] == ["b"]
    assert [u.name for u in (await objects.usage(SYSTEM, LINK, "b")).usedBy] == ["c"]
    assert raised.value.message == "link/x: spec.next: link 'y' not found"
