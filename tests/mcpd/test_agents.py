"""Agents, Personalities and agent Prompts through the REST API, on both engines: validation,
the references between them (restrict, set-null, cascade, deferrable), the system block, the
round trip through apply and restore, and a delete racing an apply."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.conftest import state_of
from tests.mcpd.manifests import error_paths, manifest, must_put, put
from tests.mcpd.test_backup import restore, take_backup

pytestmark = pytest.mark.anyio

JSON = dict[str, Any]
LLM = manifest("Llm", "gpt", {"provider": "openai", "url": "http://127.0.0.1:9/v1", "model": "m"})


def agent(name: str, **spec: Any) -> JSON:
    return manifest("Agent", name, {"llm": "gpt", **spec})


def personality(agent_name: str, name: str, *prompts: str | tuple[str, int], **spec: Any) -> JSON:
    bindings = [
        {"name": p} if isinstance(p, str) else {"name": p[0], "priority": p[1]} for p in prompts
    ]
    return manifest(
        "Personality", f"{agent_name}.{name}", {"agent": agent_name, "prompts": bindings, **spec}
    )


def prompt(name: str, content: str, priority: int | None = None, **owner: str) -> JSON:
    spec: JSON = {"content": content, **owner}
    if priority is not None:
        spec["priority"] = priority
    return manifest("Prompt", name, spec)


async def names(api: httpx.AsyncClient, plural: str) -> list[str]:
    response = await api.get(f"/api/v1/{plural}")
    assert response.status_code == 200, response.text
    return [o["metadata"]["name"] for o in response.json()["items"]]


async def bulk(api: httpx.AsyncClient, *items: JSON) -> httpx.Response:
    return await api.post("/api/v1/apply", json={"items": list(items)})


async def events(app: FastAPI, api: httpx.AsyncClient, kind: str) -> list[tuple[str, ...]]:
    await state_of(app).audit.flush()
    items = (await api.get("/api/v1/auditevents", params={"kind": kind})).json()["items"]
    return [(e["verb"], e["name"], e["details"].get("cause", "")) for e in items]


# -- the Agent kind ------------------------------------------------------------------------


async def test_an_agent_is_stored_as_given_and_applies_back_unchanged(
    api: httpx.AsyncClient,
) -> None:
    await must_put(api, LLM, manifest("Project", "team", {"servers": []}))
    body = agent(
        "helper",
        project="team",
        systemPrompt="You help.",
        defaultParams={"temperature": 0.2, "max_tokens": 256},
        extras={"ui": {"color": "blue"}},
    )

    (stored,) = await must_put(api, body)
    again = await put(api, stored)

    assert stored["spec"] == body["spec"]
    assert again.json()["outcome"] == "unchanged"


@pytest.mark.parametrize(
    ("spec", "path"),
    [
        ({"llm": "nope"}, "spec.llm"),
        ({"llm": "Not A Name"}, "spec.llm"),
        ({"project": "nope"}, "spec.project"),
        ({"defaultParams": {"temperature": 3}}, "spec.defaultParams.temperature"),
        ({"defaultParams": {"temprature": 0.1}}, "spec.defaultParams.temprature"),
        ({"defaultPersonality": "nope"}, "spec.defaultPersonality"),
        ({"systemPrompt": 1}, "spec.systemPrompt"),
    ],
)
async def test_a_bad_agent_is_422_naming_the_field_and_changes_nothing(
    api: httpx.AsyncClient, spec: JSON, path: str
) -> None:
    await must_put(api, LLM)

    response = await put(api, agent("bad", **spec))

    assert response.status_code == 422, response.text
    assert response.json()["code"] == "invalid_input"
    assert error_paths(response) == [path]
    assert (await api.get("/api/v1/agents/bad")).status_code == 404


async def test_an_agent_without_an_llm_is_422(api: httpx.AsyncClient) -> None:
    response = await put(api, manifest("Agent", "bare", {}))

    assert response.status_code == 422
    assert error_paths(response) == ["spec.llm"]


# -- Personality names ---------------------------------------------------------------------


async def test_two_agents_may_each_have_a_personality_of_the_same_name(
    api: httpx.AsyncClient,
) -> None:
    await must_put(api, LLM, agent("reviewer"), agent("writer"))

    await must_put(api, personality("reviewer", "concise"), personality("writer", "concise"))

    assert await names(api, "personalities") == ["reviewer.concise", "writer.concise"]


@pytest.mark.parametrize("name", ["concise", "reviewer.", ".concise", "reviewer.Concise", "a.b.c"])
async def test_a_personality_not_named_agent_dot_name_is_422_on_metadata_name(
    api: httpx.AsyncClient, name: str
) -> None:
    await must_put(api, LLM, agent("reviewer"))
    body = manifest("Personality", name, {"agent": "reviewer"})

    response = await api.post("/api/v1/personalities", json=body)

    assert response.status_code == 422, response.text
    assert error_paths(response) == ["metadata.name"]
    assert "AGENT.NAME" in response.json()["detail"]


async def test_a_personality_named_for_another_agent_is_422_on_spec_agent(
    api: httpx.AsyncClient,
) -> None:
    await must_put(api, LLM, agent("reviewer"), agent("writer"))

    response = await put(api, manifest("Personality", "writer.concise", {"agent": "reviewer"}))

    assert response.status_code == 422
    assert error_paths(response) == ["spec.agent"]


async def test_a_personality_naming_a_missing_prompt_is_422_at_its_index(
    api: httpx.AsyncClient,
) -> None:
    await must_put(api, LLM, agent("reviewer"), prompt("brief", "Be brief."))

    response = await put(api, personality("reviewer", "concise", "brief", "missing"))

    assert response.status_code == 422
    assert error_paths(response) == ["spec.prompts[1]"]


# -- restrict, set-null, cascade -----------------------------------------------------------


async def test_one_prompt_shared_by_two_personalities_cannot_be_deleted_while_used(
    api: httpx.AsyncClient,
) -> None:
    await must_put(api, LLM, agent("reviewer"), agent("writer"), prompt("brief", "Be brief."))
    await must_put(
        api, personality("reviewer", "concise", "brief"), personality("writer", "short", "brief")
    )

    refused = await api.delete("/api/v1/prompts/brief")
    await api.delete("/api/v1/personalities/reviewer.concise")
    still = await api.delete("/api/v1/prompts/brief")
    await api.delete("/api/v1/personalities/writer.short")
    gone = await api.delete("/api/v1/prompts/brief")

    assert refused.status_code == 409
    assert refused.json()["code"] == "in_use"
    assert refused.json()["usedBy"] == [
        {"kind": "Personality", "name": "reviewer.concise", "field": "spec.prompts[0]"},
        {"kind": "Personality", "name": "writer.short", "field": "spec.prompts[0]"},
    ]
    assert still.status_code == 409
    assert gone.status_code == 200


async def test_deleting_a_project_clears_it_from_its_agents(
    app: FastAPI, api: httpx.AsyncClient
) -> None:
    await must_put(api, LLM, manifest("Project", "team", {"servers": []}))
    (before,) = await must_put(api, agent("helper", project="team", systemPrompt="Hi."))

    deleted = await api.delete("/api/v1/projects/team")
    after = (await api.get("/api/v1/agents/helper")).json()

    assert deleted.status_code == 200
    assert after["spec"] == {"llm": "gpt", "systemPrompt": "Hi."}
    assert (
        int(after["metadata"]["resourceVersion"]) == int(before["metadata"]["resourceVersion"]) + 1
    )
    assert (await api.get("/api/v1/agents/helper/usage")).json()["uses"] == [
        {"kind": "Llm", "name": "gpt", "field": "spec.llm"}
    ]
    assert ("edit", "helper", "project/team") in await events(app, api, "Agent")


async def test_deleting_the_default_personality_clears_it_from_the_agent(
    api: httpx.AsyncClient,
) -> None:
    await must_put(api, LLM, agent("reviewer"), personality("reviewer", "concise"))
    await must_put(api, agent("reviewer", defaultPersonality="concise"))

    deleted = await api.delete("/api/v1/personalities/reviewer.concise")

    assert deleted.status_code == 200
    assert (await api.get("/api/v1/agents/reviewer")).json()["spec"] == {"llm": "gpt"}


async def test_deleting_an_agent_deletes_its_personalities_and_prompts_and_audits_them(
    app: FastAPI, api: httpx.AsyncClient
) -> None:
    await must_put(api, LLM, agent("reviewer"), agent("writer"))
    await must_put(
        api,
        prompt("own", "Review diffs.", agent="reviewer"),
        prompt("shared", "Be brief."),
        prompt("other", "Write.", agent="writer"),
    )
    await must_put(
        api,
        personality("reviewer", "concise", "shared", "own"),
        personality("writer", "concise", "shared"),
    )
    await must_put(api, agent("reviewer", defaultPersonality="concise"))

    response = await api.delete("/api/v1/agents/reviewer")

    assert response.status_code == 200, response.text
    assert await names(api, "agents") == ["writer"]
    assert await names(api, "personalities") == ["writer.concise"]
    assert await names(api, "prompts") == ["other", "shared"]
    cascaded = await events(app, api, "Personality") + await events(app, api, "Prompt")
    assert ("delete", "reviewer.concise", "agent/reviewer") in cascaded
    assert ("delete", "own", "agent/reviewer") in cascaded


async def test_an_agent_whose_prompt_another_agent_uses_cannot_be_deleted(
    api: httpx.AsyncClient,
) -> None:
    await must_put(api, LLM, agent("reviewer"), agent("writer"))
    await must_put(api, prompt("own", "Review diffs.", agent="reviewer"))
    await must_put(api, personality("writer", "borrowing", "own"))

    response = await api.delete("/api/v1/agents/reviewer")

    assert response.status_code == 409
    assert response.json()["usedBy"] == [
        {
            "kind": "Personality",
            "name": "writer.borrowing",
            "field": "spec.prompts[0]",
            "via": "prompt/own",
        }
    ]
    assert "which would be deleted with it" in response.json()["detail"]
    assert await names(api, "agents") == ["reviewer", "writer"]
    assert await names(api, "prompts") == ["own"]


async def test_a_dry_run_delete_of_an_agent_changes_nothing(api: httpx.AsyncClient) -> None:
    await must_put(api, LLM, agent("reviewer"), personality("reviewer", "concise"))

    response = await api.delete("/api/v1/agents/reviewer", params={"dryRun": "true"})

    assert response.status_code == 200
    assert await names(api, "personalities") == ["reviewer.concise"]


# -- the default personality in one batch --------------------------------------------------


async def test_one_bulk_apply_holds_an_agent_its_personality_and_the_default(
    api: httpx.AsyncClient,
) -> None:
    items = [
        LLM,
        agent("reviewer", defaultPersonality="concise"),
        prompt("brief", "Be brief."),
        personality("reviewer", "concise", "brief"),
    ]

    first = await bulk(api, *items)
    second = await bulk(api, *items)

    assert first.status_code == 200, first.text
    assert [r["outcome"] for r in first.json()["results"]] == ["created"] * 4
    assert [r["outcome"] for r in second.json()["results"]] == ["unchanged"] * 4
    assert {
        "kind": "Personality",
        "name": "reviewer.concise",
        "field": "spec.defaultPersonality",
    } in (await api.get("/api/v1/agents/reviewer/usage")).json()["uses"]


async def test_a_default_personality_missing_from_the_batch_fails_the_batch(
    api: httpx.AsyncClient,
) -> None:
    response = await bulk(api, LLM, agent("reviewer", defaultPersonality="concise"))

    assert response.status_code == 422, response.text
    assert error_paths(response) == ["spec.defaultPersonality"]
    assert response.json()["detail"].startswith("agent/reviewer: spec.defaultPersonality: ")
    assert await names(api, "agents") == []
    assert await names(api, "llms") == []


async def test_restore_brings_back_an_agent_with_its_default_personality(
    api: httpx.AsyncClient,
) -> None:
    await must_put(api, LLM, agent("reviewer"), prompt("brief", "Be brief.", agent="reviewer"))
    await must_put(api, personality("reviewer", "concise", "brief"))
    await must_put(api, agent("reviewer", defaultPersonality="concise"))
    document = await take_backup(api)
    assert (await api.delete("/api/v1/agents/reviewer")).status_code == 200

    restored = await restore(api, document)

    assert restored.status_code == 200, restored.text
    shown = (await api.get("/api/v1/agents/reviewer")).json()
    assert shown["spec"]["defaultPersonality"] == "concise"
    assert (await api.delete("/api/v1/personalities/reviewer.concise")).status_code == 200
    assert "defaultPersonality" not in (await api.get("/api/v1/agents/reviewer")).json()["spec"]


# -- the system block ----------------------------------------------------------------------


async def test_the_system_block_is_system_prompt_then_agent_prompts_then_personality_prompts(
    api: httpx.AsyncClient,
) -> None:
    await must_put(api, LLM, agent("reviewer", systemPrompt="You review code."))
    await must_put(
        api,
        prompt("b-style", "Style B.", 5, agent="reviewer"),
        prompt("a-style", "Style A.", 5, agent="reviewer"),
        prompt("urgent", "Security first.", 9, agent="reviewer"),
        prompt("brief", "Be brief.", 2),
        prompt("cite", "Cite lines.", 7),
        prompt("tone", "Be kind.", 3),
    )
    await must_put(
        api,
        personality("reviewer", "concise", "cite", ("brief", 10), "tone"),
        personality("reviewer", "plain"),
    )
    await must_put(
        api, agent("reviewer", systemPrompt="You review code.", defaultPersonality="concise")
    )

    default = (await api.get("/api/v1/agents/reviewer/system-block")).json()
    plain = await api.get("/api/v1/agents/reviewer/system-block", params={"personality": "plain"})

    assert default["personality"] == "concise"
    assert [(p["source"], p["name"], p["priority"]) for p in default["parts"]] == [
        ("agent", None, None),
        ("prompt", "urgent", 9),
        ("prompt", "a-style", 5),
        ("prompt", "b-style", 5),
        ("personality", "brief", 10),
        ("personality", "cite", 7),
        ("personality", "tone", 3),
    ]
    assert default["text"] == (
        "You review code.\n\nSecurity first.\n\nStyle A.\n\nStyle B.\n\n"
        "Be brief.\n\nCite lines.\n\nBe kind."
    )
    assert plain.json()["text"] == "You review code.\n\nSecurity first.\n\nStyle A.\n\nStyle B."


async def test_an_unknown_personality_is_404_naming_it_and_the_known_ones(
    api: httpx.AsyncClient,
) -> None:
    await must_put(api, LLM, agent("reviewer"), personality("reviewer", "concise"))

    response = await api.get(
        "/api/v1/agents/reviewer/system-block", params={"personality": "chatty"}
    )

    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
    assert response.json()["detail"] == (
        "agent/reviewer has no personality 'chatty' (it has: concise)"
    )


# -- races ---------------------------------------------------------------------------------


async def test_a_project_delete_racing_agent_applies_never_leaves_a_dangling_project(
    api: httpx.AsyncClient,
) -> None:
    await must_put(api, LLM)
    for round_ in range(8):
        await must_put(api, manifest("Project", "team", {"servers": []}))
        await must_put(api, agent("helper", systemPrompt="v0"))

        deleted, applied = await asyncio.gather(
            api.delete("/api/v1/projects/team"),
            put(api, agent("helper", project="team", systemPrompt=f"v{round_ + 1}")),
        )

        # Either the apply came first (the delete then cleared the project from the agent), or
        # the delete did (the apply then names a missing project).
        assert deleted.status_code == 200, deleted.text
        assert applied.status_code in (200, 422), applied.text
        project_exists = (await api.get("/api/v1/projects/team")).status_code == 200
        shown = (await api.get("/api/v1/agents/helper")).json()
        uses = (await api.get("/api/v1/agents/helper/usage")).json()["uses"]
        names_project = shown["spec"].get("project") == "team"
        assert names_project == any(u["kind"] == "Project" for u in uses)
        if names_project:
            assert project_exists
