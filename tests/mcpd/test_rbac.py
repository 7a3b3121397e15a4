"""RBAC through the API: a matrix over every kind of the registry, filtered lists, operations,
secret values, groups, the bootstrap ``admin`` definition and the last-full-access guard."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from mcpctl.domain.rbac import Grant
from mcpctl.mcpd.services.rbac import GrantCache
from mcpctl.mcpd.settings import Settings
from mcpctl.resources.kinds import KINDS, KindInfo
from tests.conftest import state_of
from tests.mcpd.manifests import JSON, error_paths, manifest, put
from tests.mcpd.running import running
from tests.people import add_person, bearer

pytestmark = pytest.mark.anyio

SAMPLE_SPECS: dict[str, JSON] = {
    "Secret": {"data": {"k": "v"}},
    "Template": {"command": "uvx"},
    "Server": {"command": "uvx"},
    "Project": {"servers": []},
    "Llm": {"provider": "openai", "url": "http://127.0.0.1:9/v1", "model": "m"},
    "Prompt": {"content": "Be brief."},
    "Agent": {"llm": "gpt"},
    "Personality": {"agent": "helper"},
    "User": {"displayName": "Target"},
    "Group": {"members": []},
    "RbacDefinition": {"subjects": [], "bindings": []},
}
# What the samples refer to, applied first.
PREREQUISITES: dict[str, list[JSON]] = {
    "Agent": [manifest("Llm", "gpt", SAMPLE_SPECS["Llm"])],
    "Personality": [
        manifest("Llm", "gpt", SAMPLE_SPECS["Llm"]),
        manifest("Agent", "helper", {"llm": "gpt"}),
    ],
}
# Personalities are named AGENT.NAME.
TARGETS = {"Personality": "helper.target"}
VERBS = ("view", "create", "edit", "delete")
# scenario → (bindings for alice, via a group?, allowed?)
SCENARIOS: dict[str, tuple[list[JSON], bool, bool]] = {
    "no binding": ([], False, False),
    "kind-wide": ([{"role": "{verb}", "resource": "{plural}"}], False, True),
    "another name": ([{"role": "{verb}", "resource": "{plural}", "name": "other"}], False, False),
    "this name": ([{"role": "{verb}", "resource": "{plural}", "name": "{target}"}], False, True),
    "via a group": ([{"role": "{verb}", "resource": "{plural}"}], True, True),
}


def test_the_matrix_covers_every_kind_of_the_registry() -> None:
    assert set(SAMPLE_SPECS) == {info.kind for info in KINDS}


def target_of(info: KindInfo) -> str:
    return TARGETS.get(info.kind, "target")


def sample(info: KindInfo, labels: dict[str, str] | None = None) -> JSON:
    return manifest(info.kind, target_of(info), SAMPLE_SPECS[info.kind], labels)


def rbac(name: str, subjects: list[str], bindings: list[JSON]) -> JSON:
    return manifest("RbacDefinition", name, {"subjects": subjects, "bindings": bindings})


async def grant(api: httpx.AsyncClient, bindings: list[JSON], *, via_group: bool = False) -> None:
    """Make ``bindings`` alice's only ones (directly or through group ``team``)."""
    subject = "group:team" if via_group else "user:alice"
    if via_group:
        assert (await put(api, manifest("Group", "team", {"members": ["alice"]}))).is_success
    response = await put(api, rbac("probe", [subject], bindings))
    assert response.is_success, response.text


async def revoke(api: httpx.AsyncClient) -> None:
    for url in ("/api/v1/rbacdefinitions/probe", "/api/v1/groups/team"):
        assert (await api.delete(url)).status_code in (200, 404)


async def current(api: httpx.AsyncClient, info: KindInfo) -> Any:
    response = await api.get(f"/api/v1/{info.plural}/{target_of(info)}")
    return response.json() if response.status_code == 200 else response.status_code


async def attempt(api: httpx.AsyncClient, token: str, info: KindInfo, verb: str) -> int:
    url = f"/api/v1/{info.plural}/{target_of(info)}"
    headers = bearer(token)
    if verb == "view":
        response = await api.get(url, headers=headers)
    elif verb == "create":
        response = await api.post(f"/api/v1/{info.plural}", json=sample(info), headers=headers)
    elif verb == "edit":
        response = await api.put(url, json=sample(info, {"x": "y"}), headers=headers)
    else:
        response = await api.delete(url, headers=headers)
    return response.status_code


async def last_event(app: FastAPI, api: httpx.AsyncClient, kind: str) -> tuple[str, ...]:
    await state_of(app).audit.flush()
    items = (await api.get("/api/v1/auditevents", params={"user": "alice", "kind": kind})).json()
    newest = items["items"][0]
    return (newest["verb"], newest["name"], newest["outcome"])


@pytest.mark.parametrize("verb", VERBS)
@pytest.mark.parametrize("info", KINDS, ids=[k.plural for k in KINDS])
async def test_every_kind_and_verb_is_allowed_exactly_by_a_covering_binding(
    app: FastAPI, api: httpx.AsyncClient, info: KindInfo, verb: str
) -> None:
    alice = await add_person(api, "alice")
    for body in PREREQUISITES.get(info.kind, []):
        assert (await put(api, body)).is_success
    target = target_of(info)
    for scenario, (bindings, via_group, allowed) in SCENARIOS.items():
        filled = [
            {k: v.format(verb=verb, plural=info.plural, target=target) for k, v in b.items()}
            for b in bindings
        ]
        await grant(api, filled, via_group=via_group)
        if verb == "create":
            assert (await api.delete(f"/api/v1/{info.plural}/{target}")).status_code in (200, 404)
        else:
            assert (await put(api, sample(info))).is_success
        before = await current(api, info)

        status = await attempt(api, alice, info, verb)

        after = await current(api, info)
        if allowed:
            assert status in (200, 201), (scenario, status)
        else:
            assert status == 403, (scenario, status)
            assert after == before, scenario
            assert await last_event(app, api, info.kind) == (verb, target, "denied"), scenario
        await revoke(api)


async def names_listed(api: httpx.AsyncClient, token: str) -> Any:
    response = await api.get("/api/v1/servers", headers=bearer(token))
    if response.status_code != 200:
        return response.json()["code"]
    return [o["metadata"]["name"] for o in response.json()["items"]]


async def test_lists_show_only_what_the_caller_may_view(api: httpx.AsyncClient) -> None:
    alice = await add_person(api, "alice")
    for name in ("a", "b", "c"):
        await put(api, manifest("Server", name, {"command": "uvx"}))

    nothing = await names_listed(api, alice)
    await grant(api, [{"role": "view", "resource": "server", "name": n} for n in ("a", "c")])
    scoped = await names_listed(api, alice)
    await grant(api, [{"role": "view", "resource": "srv"}])
    everything = await names_listed(api, alice)

    assert nothing == "permission_denied"
    assert scoped == ["a", "c"]
    assert everything == ["a", "b", "c"]


async def test_operations_need_their_action(api: httpx.AsyncClient) -> None:
    alice = await add_person(api, "alice")
    every_role = [{"role": r, "resource": "*"} for r in ("view", "create", "edit", "delete", "run")]
    backup = {"passphrase": "correct horse battery"}

    await grant(api, every_role)
    denied = [
        (await api.post("/api/v1/backup", json=backup, headers=bearer(alice))).status_code,
        (await api.get("/api/v1/auditevents", headers=bearer(alice))).status_code,
    ]
    await grant(api, [{"role": "run", "action": "backup"}, {"role": "run", "action": "audit"}])
    allowed = [
        (await api.post("/api/v1/backup", json=backup, headers=bearer(alice))).status_code,
        (await api.get("/api/v1/auditevents", headers=bearer(alice))).status_code,
    ]

    assert denied == [403, 403]
    assert allowed == [200, 200]


async def test_secret_values_need_reveal_secrets(api: httpx.AsyncClient) -> None:
    alice = await add_person(api, "alice")
    await put(api, manifest("Secret", "s", {"data": {"k": "hidden-value"}}))
    url = "/api/v1/secrets/s"
    view = {"role": "view", "resource": "secrets"}

    await grant(api, [view])
    masked = await api.get(url, headers=bearer(alice))
    refused = await api.get(url, params={"showValues": "true"}, headers=bearer(alice))
    await grant(api, [view, {"role": "run", "action": "reveal-secrets"}])
    revealed = await api.get(url, params={"showValues": "true"}, headers=bearer(alice))

    assert masked.status_code == 200
    assert "hidden-value" not in masked.text
    assert refused.status_code == 403
    assert revealed.json()["spec"]["data"] == {"k": "hidden-value"}


async def test_the_bootstrap_admin_has_full_access_through_an_ordinary_definition(
    api: httpx.AsyncClient,
) -> None:
    alice = await add_person(api, "alice")

    admin = (await api.get("/api/v1/rbacdefinitions/admin")).json()
    who = (await api.get("/api/v1/auth/whoami")).json()
    alice_who = (await api.get("/api/v1/auth/whoami", headers=bearer(alice))).json()

    assert admin["spec"]["subjects"] == ["user:admin"]
    assert {"role": "edit", "resource": "*"} in admin["spec"]["bindings"]
    assert {"role": "run", "action": "reveal-secrets"} in admin["spec"]["bindings"]
    assert who == {"user": "admin", "admin": True}
    assert alice_who == {"user": "alice", "admin": False}


async def test_nothing_may_leave_no_enabled_user_with_full_access(api: httpx.AsyncClient) -> None:
    alice = await add_person(api, "alice")
    admin = (await api.get("/api/v1/rbacdefinitions/admin")).json()
    bindings = admin["spec"]["bindings"]

    deleted = await api.delete("/api/v1/rbacdefinitions/admin")
    emptied = await put(api, rbac("admin", [], bindings))
    narrowed = await put(api, rbac("admin", ["user:admin"], bindings[1:]))
    await put(api, manifest("Group", "admins", {"members": ["alice"]}))
    await put(api, rbac("second", ["group:admins"], bindings))
    then_deleted = await api.delete("/api/v1/rbacdefinitions/admin")
    # Now only alice (through the group) has full access; admin has none left.
    group = manifest("Group", "admins", {"members": []})
    group_emptied = await api.put("/api/v1/groups/admins", json=group, headers=bearer(alice))
    admin_now = await api.get("/api/v1/auth/whoami")

    for refused in (deleted, emptied, narrowed, group_emptied):
        assert refused.status_code == 409, refused.text
        assert refused.json()["code"] == "in_use"
        assert "full access" in refused.json()["detail"]
    assert then_deleted.status_code == 200
    assert admin_now.json() == {"user": "admin", "admin": False}


async def test_a_grant_takes_effect_at_the_next_request_and_so_does_a_revocation(
    api: httpx.AsyncClient,
) -> None:
    alice = await add_person(api, "alice")
    await put(api, manifest("Group", "team", {"members": []}))
    await put(api, rbac("probe", ["group:team"], [{"role": "view", "resource": "servers"}]))

    outside = await names_listed(api, alice)
    await put(api, manifest("Group", "team", {"members": ["alice"]}))
    member = await names_listed(api, alice)
    await put(api, manifest("Group", "team", {"members": []}))
    removed = await names_listed(api, alice)

    assert (outside, member, removed) == ("permission_denied", [], "permission_denied")


async def test_groups_and_definitions_are_checked_against_users_and_each_other(
    api: httpx.AsyncClient,
) -> None:
    await add_person(api, "alice")
    await put(api, manifest("Group", "team", {"members": ["alice"]}))
    await put(api, rbac("probe", ["group:team"], [{"role": "view", "resource": "Server"}]))

    unknown_member = await put(api, manifest("Group", "g", {"members": ["alice", "nobody"]}))
    twice = await put(api, manifest("Group", "g", {"members": ["alice", "alice"]}))
    unknown_user = await put(api, rbac("r", ["user:nobody"], []))
    unknown_group = await put(api, rbac("r", ["group:nobody"], []))
    bad_subject = await put(api, rbac("r", ["robot:x"], []))
    bad_resource = await put(api, rbac("r", [], [{"role": "view", "resource": "widgets"}]))
    bad_action = await put(api, rbac("r", [], [{"role": "view", "action": "backup"}]))
    in_use = await api.delete("/api/v1/groups/team")
    stored = (await api.get("/api/v1/rbacdefinitions/probe")).json()["spec"]["bindings"]

    assert error_paths(unknown_member) == ["spec.members[1]"]
    assert error_paths(twice) == ["spec.members"]
    assert error_paths(unknown_user) == ["spec.subjects[0]"]
    assert error_paths(unknown_group) == ["spec.subjects[0]"]
    assert error_paths(bad_subject) == ["spec.subjects[0]"]
    assert error_paths(bad_resource) == ["spec.bindings[0].resource"]
    assert error_paths(bad_action) == ["spec.bindings[0]"]
    assert in_use.status_code == 409
    assert in_use.json()["code"] == "in_use"
    assert "rbacdefinition/probe" in in_use.json()["detail"]
    assert stored == [{"role": "view", "resource": "servers"}]


async def test_can_i_answers_for_the_caller(api: httpx.AsyncClient) -> None:
    alice = await add_person(api, "alice")
    await grant(api, [{"role": "edit", "resource": "servers", "name": "web"}])

    async def can(token: str, **params: str) -> Any:
        response = await api.get("/api/v1/auth/can-i", params=params, headers=bearer(token))
        return response.json()["allowed"] if response.status_code == 200 else response.status_code

    assert await can(alice, verb="edit", resource="server", name="web") is True
    assert await can(alice, verb="edit", resource="srv", name="db") is False
    assert await can(alice, verb="edit", resource="servers") is False
    assert await can(alice, verb="run", resource="backup") is False
    assert await can(alice, verb="run", resource="widgets") == 422
    assert await can(alice, verb="fly", resource="servers") == 422


async def test_a_database_from_before_rbac_gets_an_admin_definition_for_its_admins(
    app: FastAPI, settings: Settings
) -> None:
    uows = state_of(app).objects.uows
    async with uows.write() as uow:
        row = await uow.objects.get("RbacDefinition", "admin")
        assert row is not None
        await uow.objects.delete(row.id)
        await uow.commit()

    async with running(settings) as restarted:
        admin = await restarted.get("/api/v1/rbacdefinitions/admin")

    assert admin.status_code == 200
    assert admin.json()["spec"]["subjects"] == ["user:admin"]


async def test_cached_grants_are_reread_after_the_ttl_when_another_replica_changed_them(
    app: FastAPI, api: httpx.AsyncClient
) -> None:
    await add_person(api, "alice")
    now = [0.0]
    # A second cache on the same database stands for another replica: this app's writes do
    # not invalidate it, only its time bound does.
    other = GrantCache(state_of(app).objects.uows, ttl=5.0, clock=lambda: now[0])
    before = await other.grants_for("alice")
    await grant(api, [{"role": "view", "resource": "servers"}])

    now[0] = 4.0
    within = await other.grants_for("alice")
    now[0] = 6.0
    after = await other.grants_for("alice")

    assert before == within == frozenset()
    assert after == {Grant("view", "servers")}


async def test_requests_arriving_while_the_grants_are_stale_share_one_reload(
    app: FastAPI, api: httpx.AsyncClient
) -> None:
    uows = state_of(app).objects.uows
    reads = [0]

    class Counting:
        def read(self) -> Any:
            reads[0] += 1
            return uows.read()

    now = [0.0]
    cache = GrantCache(Counting(), ttl=5.0, clock=lambda: now[0])  # type: ignore[arg-type]
    await cache.grants_for("admin")
    now[0] = 6.0  # stale for everyone at once
    results = await asyncio.gather(*(cache.grants_for("admin") for _ in range(20)))

    assert reads[0] == 2
    assert len(set(results)) == 1
