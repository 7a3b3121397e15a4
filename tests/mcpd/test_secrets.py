"""Secret values: masked on the way out, revealed on request, kept when applied as null."""

from __future__ import annotations

import httpx
import pytest

from tests.mcpd.manifests import error_paths, must_put, put, secret

pytestmark = pytest.mark.anyio


async def test_values_are_masked_in_apply_get_and_list_answers(api: httpx.AsyncClient) -> None:
    applied = await put(api, secret("db", {"PASSWORD": "hunter2", "USER": "app"}))
    got = await api.get("/api/v1/secrets/db")
    listed = await api.get("/api/v1/secrets")

    masked = {"data": {"PASSWORD": None, "USER": None}}
    assert applied.json()["object"]["spec"] == masked
    assert got.json()["spec"] == masked
    assert listed.json()["items"][0]["spec"] == masked
    assert got.json()["status"]["keys"] == ["PASSWORD", "USER"]
    for response in (applied, got, listed):
        assert "hunter2" not in response.text


async def test_create_and_delete_answers_mask_values_too(api: httpx.AsyncClient) -> None:
    created = await api.post("/api/v1/secrets", json=secret("db", {"PASSWORD": "hunter2"}))
    deleted = await api.delete("/api/v1/secrets/db")

    assert created.json()["spec"] == {"data": {"PASSWORD": None}}
    assert deleted.json()["spec"] == {"data": {"PASSWORD": None}}


async def test_show_values_reveals_them_to_the_admin(api: httpx.AsyncClient) -> None:
    await must_put(api, secret("db", {"PASSWORD": "hunter2", "USER": "app"}))

    got = await api.get("/api/v1/secrets/db", params={"showValues": "true"})
    listed = await api.get("/api/v1/secrets", params={"showValues": "true"})

    revealed = {"data": {"PASSWORD": "hunter2", "USER": "app"}}
    assert got.json()["spec"] == revealed
    assert listed.json()["items"][0]["spec"] == revealed


async def test_applying_null_for_a_stored_key_keeps_its_value(api: httpx.AsyncClient) -> None:
    await must_put(api, secret("db", {"PASSWORD": "hunter2"}))

    response = await put(api, secret("db", {"PASSWORD": None}))

    assert (response.status_code, response.json()["outcome"]) == (200, "unchanged")
    shown = await api.get("/api/v1/secrets/db", params={"showValues": "true"})
    assert shown.json()["spec"]["data"] == {"PASSWORD": "hunter2"}


async def test_applying_null_next_to_a_new_value_keeps_one_and_changes_the_other(
    api: httpx.AsyncClient,
) -> None:
    await must_put(api, secret("db", {"PASSWORD": "hunter2", "USER": "app"}))

    response = await put(api, secret("db", {"PASSWORD": None, "USER": "admin"}))

    assert response.json()["outcome"] == "configured"
    shown = await api.get("/api/v1/secrets/db", params={"showValues": "true"})
    assert shown.json()["spec"]["data"] == {"PASSWORD": "hunter2", "USER": "admin"}


async def test_applying_null_for_a_new_key_is_422_and_changes_nothing(
    api: httpx.AsyncClient,
) -> None:
    (before,) = await must_put(api, secret("db", {"PASSWORD": "hunter2"}))

    response = await put(api, secret("db", {"PASSWORD": None, "TOKEN": None}))
    new = await put(api, secret("other", {"TOKEN": None}))

    for problem in (response, new):
        assert problem.status_code == 422
        assert problem.json()["code"] == "invalid_input"
        assert error_paths(problem) == ["spec.data.TOKEN"]
    assert (await api.get("/api/v1/secrets/db")).json() == before
    assert (await api.get("/api/v1/secrets/other")).status_code == 404


async def test_changing_a_value_is_configured_and_bumps_the_version(
    api: httpx.AsyncClient,
) -> None:
    await must_put(api, secret("db", {"PASSWORD": "hunter2"}))

    response = await put(api, secret("db", {"PASSWORD": "correct horse"}))

    assert response.json()["outcome"] == "configured"
    assert response.json()["object"]["metadata"]["resourceVersion"] == "2"


async def test_bad_secret_keys_are_422(api: httpx.AsyncClient) -> None:
    response = await put(api, secret("db", {"not a key": "v"}))

    assert response.status_code == 422
    assert error_paths(response) == ["spec.data"]


async def test_dry_run_of_a_secret_change_keeps_the_stored_value(api: httpx.AsyncClient) -> None:
    await must_put(api, secret("db", {"PASSWORD": "hunter2"}))

    response = await put(api, secret("db", {"PASSWORD": "changed"}), dryRun="true")

    assert response.json()["outcome"] == "configured"
    assert response.json()["object"]["spec"]["data"] == {"PASSWORD": None}
    shown = await api.get("/api/v1/secrets/db", params={"showValues": "true"})
    assert shown.json()["spec"]["data"] == {"PASSWORD": "hunter2"}
