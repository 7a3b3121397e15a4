"""Create, read, list and delete every kind through REST."""

from __future__ import annotations

import httpx
import pytest

from tests.mcpd.manifests import (
    JSON,
    collection_of,
    manifest,
    must_put,
    project,
    prompt,
    secret,
    server,
    template,
    url_of,
)

pytestmark = pytest.mark.anyio

# One valid object per kind, and what must exist before it.
SAMPLES: dict[str, tuple[list[JSON], JSON]] = {
    "Secret": ([], secret("tokens", {"API_KEY": "s3cr3t"})),
    "Template": ([], template("time", command="uvx", args=["mcp-server-time"])),
    "Server": ([], server("time", args=["mcp-server-time"], description="clock")),
    "Project": ([server("time")], project("team", ["time"], gated=True)),
    "Prompt": ([], prompt("style", content="Answer in one line.")),
    "Llm": (
        [secret("openai", {"key": "sk-1"})],
        manifest(
            "Llm",
            "gpt",
            {
                "provider": "openai",
                "url": "https://api.openai.com/v1",
                "model": "gpt-4o-mini",
                "apiKey": {"name": "openai", "key": "key"},
                "poolName": "fast",
            },
        ),
    ),
}
KINDS = sorted(SAMPLES)


@pytest.fixture(params=KINDS)
async def sample(request: pytest.FixtureRequest, api: httpx.AsyncClient) -> JSON:
    needs, body = SAMPLES[request.param]
    await must_put(api, *needs)
    return body


async def test_create_answers_201_with_the_stored_object(
    api: httpx.AsyncClient, sample: JSON
) -> None:
    response = await api.post(collection_of(sample["kind"]), json=sample)

    assert response.status_code == 201, response.text
    obj = response.json()
    assert obj["kind"] == sample["kind"]
    assert obj["metadata"]["name"] == sample["metadata"]["name"]
    assert obj["metadata"]["resourceVersion"] == "1"
    assert obj["metadata"]["uid"]
    assert obj["metadata"]["createdAt"].endswith("Z")


async def test_create_of_a_taken_name_is_409_already_exists(
    api: httpx.AsyncClient, sample: JSON
) -> None:
    first = await api.post(collection_of(sample["kind"]), json=sample)
    second = await api.post(collection_of(sample["kind"]), json=sample)

    assert first.status_code == 201
    assert second.status_code == 409
    assert second.json()["code"] == "already_exists"


async def test_get_returns_what_create_returned(api: httpx.AsyncClient, sample: JSON) -> None:
    created = (await api.post(collection_of(sample["kind"]), json=sample)).json()

    response = await api.get(url_of(sample))

    assert response.status_code == 200
    assert response.json() == created


async def test_list_contains_the_created_object(api: httpx.AsyncClient, sample: JSON) -> None:
    await api.post(collection_of(sample["kind"]), json=sample)

    response = await api.get(collection_of(sample["kind"]))

    assert response.status_code == 200
    body = response.json()
    assert body["kind"] == f"{sample['kind']}List"
    assert sample["metadata"]["name"] in [i["metadata"]["name"] for i in body["items"]]


async def test_delete_returns_the_object_and_removes_it(
    api: httpx.AsyncClient, sample: JSON
) -> None:
    await api.post(collection_of(sample["kind"]), json=sample)

    deleted = await api.delete(url_of(sample))
    after = await api.get(url_of(sample))

    assert deleted.status_code == 200
    assert deleted.json()["metadata"]["name"] == sample["metadata"]["name"]
    assert after.status_code == 404
    assert after.json()["code"] == "not_found"


async def test_get_and_delete_of_a_missing_object_are_404_for_every_kind(
    api: httpx.AsyncClient,
) -> None:
    for kind in KINDS:
        url = f"{collection_of(kind)}/nothing-here"

        got = await api.get(url)
        deleted = await api.delete(url)

        assert (got.status_code, got.json()["code"]) == (404, "not_found"), kind
        assert (deleted.status_code, deleted.json()["code"]) == (404, "not_found"), kind


async def test_get_output_applies_back_unchanged(api: httpx.AsyncClient, sample: JSON) -> None:
    await api.post(collection_of(sample["kind"]), json=sample)
    shown = (await api.get(url_of(sample))).json()

    response = await api.put(url_of(sample), json=shown)

    assert response.status_code == 200, response.text
    assert response.json()["outcome"] == "unchanged"


async def test_secret_get_output_applies_back_unchanged_with_masked_values(
    api: httpx.AsyncClient,
) -> None:
    body = secret("db", {"PASSWORD": "hunter2"})
    await must_put(api, body)
    shown = (await api.get(url_of(body))).json()
    assert shown["spec"]["data"] == {"PASSWORD": None}

    response = await api.put(url_of(body), json=shown)

    assert (response.status_code, response.json()["outcome"]) == (200, "unchanged")


async def test_spec_fields_come_back_in_the_spec_models_order_on_every_engine(
    api: httpx.AsyncClient,
) -> None:
    body = {
        "apiVersion": "mcpctl/v1",
        "kind": "Server",
        "metadata": {"name": "ordered"},
        "spec": {"args": ["x"], "command": "uvx", "runtime": "process", "description": "d"},
    }
    await api.put("/api/v1/servers/ordered", json=body)

    stored = (await api.get("/api/v1/servers/ordered")).json()

    assert list(stored["spec"]) == ["description", "runtime", "command", "args"]
