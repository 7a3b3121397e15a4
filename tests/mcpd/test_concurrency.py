"""Optimistic concurrency: metadata.resourceVersion makes a PUT conditional; races end cleanly."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tests.mcpd.manifests import JSON, must_put, project, put, secret, server

pytestmark = pytest.mark.anyio


def at_version(body: JSON, version: str) -> JSON:
    body["metadata"]["resourceVersion"] = version
    return body


async def test_stale_resource_version_is_409_version_conflict_and_changes_nothing(
    api: httpx.AsyncClient,
) -> None:
    await must_put(api, server("time"), server("time", description="second"))
    before = (await api.get("/api/v1/servers/time")).json()
    assert before["metadata"]["resourceVersion"] == "2"

    response = await put(api, at_version(server("time", description="stale"), "1"))

    assert response.status_code == 409
    assert response.json()["code"] == "version_conflict"
    assert (await api.get("/api/v1/servers/time")).json() == before


async def test_matching_resource_version_applies_and_bumps_it(api: httpx.AsyncClient) -> None:
    (stored,) = await must_put(api, server("time"))

    response = await put(
        api, at_version(server("time", description="new"), stored["metadata"]["resourceVersion"])
    )

    assert (response.status_code, response.json()["outcome"]) == (200, "configured")
    assert response.json()["object"]["metadata"]["resourceVersion"] == "2"
    again = await put(api, at_version(server("time", description="newer"), "2"))
    assert again.json()["object"]["metadata"]["resourceVersion"] == "3"


async def test_edit_cycle_of_get_then_put_round_trips(api: httpx.AsyncClient) -> None:
    await must_put(api, server("time"))
    shown = (await api.get("/api/v1/servers/time")).json()
    shown["spec"]["description"] = "edited"

    response = await api.put("/api/v1/servers/time", json=shown)

    assert response.json()["outcome"] == "configured"
    stale = await api.put("/api/v1/servers/time", json=shown)
    assert (stale.status_code, stale.json()["code"]) == (409, "version_conflict")


async def test_resource_version_for_a_missing_object_is_409_and_creates_nothing(
    api: httpx.AsyncClient,
) -> None:
    response = await put(api, at_version(server("time"), "1"))

    assert response.status_code == 409
    assert response.json()["code"] == "version_conflict"
    assert (await api.get("/api/v1/servers/time")).status_code == 404


async def test_stale_version_on_a_secret_keeps_its_values(api: httpx.AsyncClient) -> None:
    await must_put(api, secret("db", {"PASSWORD": "one"}), secret("db", {"PASSWORD": "two"}))

    response = await put(api, at_version(secret("db", {"PASSWORD": "three"}), "1"))

    assert response.json()["code"] == "version_conflict"
    shown = await api.get("/api/v1/secrets/db", params={"showValues": "true"})
    assert shown.json()["spec"]["data"] == {"PASSWORD": "two"}


async def test_concurrent_applies_of_different_specs_all_succeed_and_the_last_one_wins(
    api: httpx.AsyncClient,
) -> None:
    await must_put(api, server("time"))
    descriptions = [f"writer {i}" for i in range(4)]

    responses = await asyncio.gather(
        *(put(api, server("time", description=d)) for d in descriptions)
    )

    assert [r.status_code for r in responses] == [200] * 4, [r.text for r in responses]
    assert {r.json()["outcome"] for r in responses} == {"configured"}
    versions = sorted(int(r.json()["object"]["metadata"]["resourceVersion"]) for r in responses)
    assert versions == [2, 3, 4, 5]
    last = max(responses, key=lambda r: int(r.json()["object"]["metadata"]["resourceVersion"]))
    stored = (await api.get("/api/v1/servers/time")).json()
    assert stored["metadata"]["resourceVersion"] == "5"
    assert stored["spec"] == last.json()["object"]["spec"]


async def test_concurrent_conditional_applies_at_one_version_have_exactly_one_winner(
    api: httpx.AsyncClient,
) -> None:
    await must_put(api, server("time"))

    responses = await asyncio.gather(
        *(put(api, at_version(server("time", description=f"w{i}"), "1")) for i in range(4))
    )

    outcomes = sorted((r.status_code, r.json().get("code")) for r in responses)
    assert outcomes == [(200, None)] + [(409, "version_conflict")] * 3, outcomes
    winner = next(r for r in responses if r.status_code == 200).json()["object"]
    assert (await api.get("/api/v1/servers/time")).json()["spec"] == winner["spec"]


async def test_concurrent_creates_of_one_name_give_one_object(api: httpx.AsyncClient) -> None:
    descriptions = [f"writer {i}" for i in range(4)]

    responses = await asyncio.gather(
        *(put(api, server("time", description=d)) for d in descriptions)
    )

    statuses = sorted(r.status_code for r in responses)
    assert statuses.count(201) == 1, [r.text for r in responses]
    assert all(s in (200, 201, 409) for s in statuses), [r.text for r in responses]
    listed = (await api.get("/api/v1/servers")).json()["items"]
    assert [o["metadata"]["name"] for o in listed] == ["time"]
    assert listed[0]["spec"]["description"] in descriptions


async def test_concurrent_posts_of_one_name_give_one_201_and_409s(api: httpx.AsyncClient) -> None:
    responses = await asyncio.gather(
        *(api.post("/api/v1/servers", json=server("time")) for _ in range(4))
    )

    codes = sorted((r.status_code, r.json().get("code")) for r in responses)
    assert codes[-1][0] == 409
    assert [c for c, _ in codes].count(201) == 1
    assert {code for status, code in codes if status == 409} == {"already_exists"}


async def test_deleting_a_server_while_a_project_starts_using_it_ends_consistently(
    api: httpx.AsyncClient,
) -> None:
    for i in range(6):
        await must_put(api, server(f"s{i}"))

        deleted, applied = await asyncio.gather(
            api.delete(f"/api/v1/servers/s{i}"), put(api, project(f"p{i}", [f"s{i}"]))
        )

        assert deleted.status_code in (200, 409), deleted.text
        assert applied.status_code in (201, 409, 422), applied.text
        server_there = (await api.get(f"/api/v1/servers/s{i}")).status_code == 200
        project_there = (await api.get(f"/api/v1/projects/p{i}")).status_code == 200
        assert server_there == (deleted.status_code == 409)
        assert project_there == (applied.status_code == 201)
        assert not (project_there and not server_there)
