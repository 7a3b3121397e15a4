"""The Llm kind through the REST API, on both engines: validation with field paths, the apiKey
secret reference (checked on write, RESTRICT on the Secret), lifecycle fields kept across
applies, the effective pool key, pool-key clashes, the RESTRICT from the Agents using one, and
``GET /api/v1/llms/{name}/members``."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.conftest import state_of
from tests.mcpd.manifests import error_paths, manifest, must_put, put, secret
from tests.people import add_person, bearer

pytestmark = pytest.mark.anyio

JSON = dict[str, Any]


def llm(name: str, **spec: Any) -> JSON:
    base: JSON = {"provider": "openai", "url": "http://127.0.0.1:9/v1", "model": "m"}
    return manifest("Llm", name, {**base, **spec})


async def test_an_llm_is_stored_as_given_and_shows_its_pool_key(api: httpx.AsyncClient) -> None:
    body = llm("gpt", tier="fast", defaultParams={"temperature": 0.2, "stop": ["###"]})

    (stored,) = await must_put(api, body)

    assert stored["spec"] == body["spec"]
    assert stored["status"] == {"poolKey": "gpt"}
    pooled = (await must_put(api, llm("gpt-2", poolName="gpt")))[0]
    assert pooled["status"]["poolKey"] == "gpt"


async def test_apply_of_the_same_llm_again_is_unchanged(api: httpx.AsyncClient) -> None:
    await must_put(api, llm("gpt", poolName="fast", status="hibernating"))

    again = await put(api, llm("gpt", poolName="fast", status="hibernating"))

    assert again.json()["outcome"] == "unchanged"


@pytest.mark.parametrize(
    ("spec", "path"),
    [
        ({"kind": "virtual"}, "spec.kind"),
        ({"kind": "private"}, "spec.kind"),
        ({"provider": "mistral"}, "spec.provider"),
        ({"url": "ftp://x"}, "spec.url"),
        ({"model": " "}, "spec.model"),
        ({"poolName": "Not A Name"}, "spec.poolName"),
        ({"status": "asleep"}, "spec.status"),
        ({"defaultParams": {"temperature": 3}}, "spec.defaultParams.temperature"),
        ({"defaultParams": {"max_tokens": 0}}, "spec.defaultParams.max_tokens"),
        ({"defaultParams": {"temprature": 0.1}}, "spec.defaultParams.temprature"),
        ({"providerSessionId": "x"}, "spec.providerSessionId"),
    ],
)
async def test_a_bad_llm_is_422_naming_the_field(
    api: httpx.AsyncClient, spec: JSON, path: str
) -> None:
    response = await put(api, llm("bad", **spec))

    assert response.status_code == 422, response.text
    assert response.json()["code"] == "invalid_input"
    assert error_paths(response) == [path]
    assert (await api.get("/api/v1/llms/bad")).status_code == 404


async def test_a_virtual_llm_is_refused_with_a_message_naming_spec_kind(
    api: httpx.AsyncClient,
) -> None:
    response = await put(api, llm("v", kind="virtual"))

    assert response.json()["detail"].startswith("spec.kind: ")
    assert "virtual Llms are not supported yet" in response.json()["detail"]


async def test_an_api_key_must_name_an_existing_secret_key(api: httpx.AsyncClient) -> None:
    missing = await put(api, llm("gpt", apiKey={"name": "openai", "key": "key"}))
    await must_put(api, secret("openai", {"key": "sk-1"}))
    wrong_key = await put(api, llm("gpt", apiKey={"name": "openai", "key": "other"}))
    good = await put(api, llm("gpt", apiKey={"name": "openai", "key": "key"}))

    assert error_paths(missing) == ["spec.apiKey"]
    assert error_paths(wrong_key) == ["spec.apiKey.key"]
    assert good.status_code == 201


async def test_a_secret_used_as_an_api_key_cannot_be_deleted(api: httpx.AsyncClient) -> None:
    await must_put(api, secret("openai", {"key": "sk-1"}))
    await must_put(api, llm("gpt", apiKey={"name": "openai", "key": "key"}))

    refused = await api.delete("/api/v1/secrets/openai")
    narrowed = await put(api, secret("openai", {"other": "x"}))

    assert refused.status_code == 409
    assert refused.json()["code"] == "in_use"
    assert refused.json()["usedBy"] == [{"kind": "Llm", "name": "gpt", "field": "spec.apiKey"}]
    assert "llm/gpt (spec.apiKey)" in refused.json()["detail"]
    assert narrowed.status_code == 409
    await must_put(api, llm("gpt"))
    assert (await api.delete("/api/v1/secrets/openai")).status_code == 200


async def test_lifecycle_fields_are_kept_across_applies_and_never_read_from_input(
    api: httpx.AsyncClient, app: FastAPI
) -> None:
    await must_put(api, llm("gpt"))
    uows = state_of(app).objects.uows
    async with uows.write() as uow:
        row = await uow.objects.get("Llm", "gpt")
        assert row is not None
        lifecycle = {"providerSessionId": "s-1", "lastHeartbeatAt": "2026-01-01T00:00:00Z"}
        await uow.objects.update_if_version(row.id, row.resource_version, status=lifecycle)
        await uow.commit()
    body = llm("gpt", model="m2")
    body["status"] = {"providerSessionId": "forged", "inactiveSince": "x"}

    (changed,) = await must_put(api, body)

    assert changed["status"] == {**lifecycle, "poolKey": "gpt"}


async def test_a_pool_name_equal_to_the_name_of_an_llm_in_another_pool_is_refused(
    api: httpx.AsyncClient,
) -> None:
    await must_put(api, llm("x", poolName="z"))

    clash = await put(api, llm("y", poolName="x"))
    seed = await put(api, llm("seed"))
    joined = await put(api, llm("seed-2", poolName="seed"))
    moved = await put(api, llm("seed", poolName="elsewhere"))

    assert clash.status_code == 422
    assert error_paths(clash) == ["spec.poolName"]
    assert seed.status_code == 201
    assert joined.status_code == 201
    assert moved.status_code == 422
    assert "llm/seed-2" in moved.json()["detail"]


async def test_an_llm_used_by_an_agent_cannot_be_deleted_naming_the_agents(
    api: httpx.AsyncClient,
) -> None:
    await must_put(api, llm("gpt"), llm("other"))
    for name in ("helper", "reviewer"):
        await must_put(api, manifest("Agent", name, {"llm": "gpt"}))
    await must_put(api, manifest("Agent", "elsewhere", {"llm": "other"}))

    refused = await api.delete("/api/v1/llms/gpt")

    assert refused.status_code == 409
    assert refused.json()["code"] == "in_use"
    assert refused.json()["usedBy"] == [
        {"kind": "Agent", "name": "helper", "field": "spec.llm"},
        {"kind": "Agent", "name": "reviewer", "field": "spec.llm"},
    ]
    assert "agent/helper (spec.llm), agent/reviewer (spec.llm)" in refused.json()["detail"]
    assert (await api.get("/api/v1/llms/gpt")).status_code == 200


async def test_members_lists_the_pool_of_an_llm(api: httpx.AsyncClient) -> None:
    await must_put(
        api,
        llm("a", poolName="fast", model="small"),
        llm("b", poolName="fast", status="inactive"),
        llm("other"),
    )

    response = await api.get("/api/v1/llms/a/members")

    assert response.status_code == 200, response.text
    pool = response.json()
    assert (pool["kind"], pool["pool"], pool["llm"]) == ("LlmPool", "fast", "a")
    assert pool["members"] == [
        {
            "name": "a",
            "status": "active",
            "provider": "openai",
            "model": "small",
            "coolingDownUntil": None,
            "recentFailures": [],
            "inFlight": 0,
        },
        {
            "name": "b",
            "status": "inactive",
            "provider": "openai",
            "model": "m",
            "coolingDownUntil": None,
            "recentFailures": [],
            "inFlight": 0,
        },
    ]
    assert pool["cooldown"] == {"allowedFails": 3, "windowSeconds": 60.0, "cooldownSeconds": 5.0}


async def test_members_follow_writes_at_once(api: httpx.AsyncClient) -> None:
    await must_put(api, llm("a", poolName="fast"))
    before = (await api.get("/api/v1/llms/a/members")).json()
    await must_put(api, llm("b", poolName="fast"))

    after = (await api.get("/api/v1/llms/a/members")).json()

    assert [m["name"] for m in before["members"]] == ["a"]
    assert [m["name"] for m in after["members"]] == ["a", "b"]


async def test_members_of_an_unknown_llm_or_of_a_pool_key_is_404(api: httpx.AsyncClient) -> None:
    await must_put(api, llm("a", poolName="fast"))

    for name in ("nope", "fast"):
        response = await api.get(f"/api/v1/llms/{name}/members")
        assert response.status_code == 404
        assert response.json()["code"] == "not_found"


async def test_members_needs_view_on_llms(api: httpx.AsyncClient) -> None:
    await must_put(api, llm("a"))
    token = await add_person(api, "alice")

    denied = await api.get("/api/v1/llms/a/members", headers=bearer(token))
    await must_put(
        api,
        manifest(
            "RbacDefinition",
            "llm-viewers",
            {"subjects": ["user:alice"], "bindings": [{"role": "view", "resource": "llms"}]},
        ),
    )
    allowed = await api.get("/api/v1/llms/a/members", headers=bearer(token))

    assert denied.status_code == 403
    assert denied.json()["code"] == "permission_denied"
    assert allowed.status_code == 200
