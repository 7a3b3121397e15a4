"""Following an object: ``GET /api/v1/{plural}/{name}?changedAfter=RV&waitSeconds=S`` answers
when the object is at another resourceVersion, 304 when S passes first; commits of every kind
of object write wake it, rolled-back writes do not."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from mcpctl.mcpd.app import create_app
from mcpctl.mcpd.db import notify
from mcpctl.mcpd.settings import Settings
from tests.conftest import serve_mcpd, state_of
from tests.mcpd.manifests import JSON, manifest, must_put, project, prompt, put, server
from tests.people import add_person, bearer

pytestmark = pytest.mark.anyio

LONG = 30.0  # a wait no test reaches: an answer before it came from a change
BOUND = 10.0  # how long a test waits for an answer that comes from a change
LLM = manifest("Llm", "gpt", {"provider": "openai", "url": "http://127.0.0.1:9/v1", "model": "m"})


@pytest.fixture
async def dev(api: httpx.AsyncClient) -> JSON:
    """Project ``dev`` on server ``time``, as stored."""
    stored = await must_put(api, server("time"), project("dev", ["time"]))
    return stored[1]


@pytest.fixture(autouse=True)
def no_waiter_left(request: pytest.FixtureRequest) -> Iterator[None]:
    """Every test on the in-process app ends with nobody waiting any more."""
    app: FastAPI | None = request.getfixturevalue("app") if "app" in request.fixturenames else None
    yield
    if app is not None:
        assert state_of(app).follower.changes.waiting == 0


def follow(
    api: httpx.AsyncClient, path: str, version: str, wait: float, **kwargs: Any
) -> Awaitable[httpx.Response]:
    params: dict[str, str | float] = {"changedAfter": version, "waitSeconds": wait}
    return api.get(path, params=params, timeout=LONG + BOUND, **kwargs)


async def waiting(app: FastAPI, count: int = 1) -> None:
    """Wait until ``count`` requests wait for a change."""
    changes = state_of(app).follower.changes
    with anyio.fail_after(BOUND):
        # The bus has no event for a new waiter: poll, bounded.
        while changes.waiting < count:  # noqa: ASYNC110
            await asyncio.sleep(0.005)


async def answered_during_the_wait(
    app: FastAPI, waiter: Awaitable[httpx.Response], change: Awaitable[Any]
) -> httpx.Response:
    """Start ``waiter``, make ``change`` once it waits, and return the waiter's answer."""
    task = asyncio.ensure_future(waiter)
    await waiting(app)
    await change
    with anyio.fail_after(BOUND):
        return await task


async def test_a_stale_resource_version_is_answered_at_once(
    api: httpx.AsyncClient, dev: JSON
) -> None:
    await must_put(api, project("dev", ["time"], toolPrefix="never"))

    with anyio.fail_after(BOUND):
        response = await follow(api, "/api/v1/projects/dev", "1", LONG)

    assert response.status_code == 200
    assert response.json()["metadata"]["resourceVersion"] == "2"
    assert response.json()["spec"]["toolPrefix"] == "never"


async def test_no_change_within_the_wait_is_304_with_no_body(
    api: httpx.AsyncClient, dev: JSON
) -> None:
    started = time.monotonic()
    response = await follow(api, "/api/v1/projects/dev", "1", 0.3)

    assert response.status_code == 304
    assert response.content == b""
    assert time.monotonic() - started >= 0.3


async def test_without_a_wait_the_answer_is_304_or_the_object_at_once(
    api: httpx.AsyncClient, dev: JSON
) -> None:
    same = await api.get("/api/v1/projects/dev", params={"changedAfter": "1"})
    other = await api.get("/api/v1/projects/dev", params={"changedAfter": "7"})

    assert same.status_code == 304
    assert other.status_code == 200
    assert other.json() == dev


async def test_a_put_during_the_wait_answers_with_the_new_object(
    app: FastAPI, api: httpx.AsyncClient, dev: JSON
) -> None:
    response = await answered_during_the_wait(
        app,
        follow(api, "/api/v1/projects/dev", "1", LONG),
        put(api, project("dev", ["time"], toolPrefix="never")),
    )

    assert response.status_code == 200
    assert response.json()["metadata"]["resourceVersion"] == "2"
    assert response.json()["spec"]["toolPrefix"] == "never"


async def test_a_delete_during_the_wait_answers_404(
    app: FastAPI, api: httpx.AsyncClient, dev: JSON
) -> None:
    response = await answered_during_the_wait(
        app,
        follow(api, "/api/v1/projects/dev", "1", LONG),
        api.delete("/api/v1/projects/dev"),
    )

    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


async def test_an_object_that_does_not_exist_is_404_at_once(api: httpx.AsyncClient) -> None:
    with anyio.fail_after(BOUND):
        response = await follow(api, "/api/v1/projects/nope", "1", LONG)

    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


async def test_a_cascading_delete_wakes_the_waiters_of_what_goes_with_it(
    app: FastAPI, api: httpx.AsyncClient, dev: JSON
) -> None:
    await must_put(api, prompt("style", project_name="dev"))

    response = await answered_during_the_wait(
        app,
        follow(api, "/api/v1/prompts/style", "1", LONG),
        api.delete("/api/v1/projects/dev"),
    )

    assert response.status_code == 404


async def test_clearing_a_set_null_reference_wakes_the_waiters_of_the_referrer(
    app: FastAPI, api: httpx.AsyncClient, dev: JSON
) -> None:
    await must_put(api, LLM, manifest("Agent", "helper", {"llm": "gpt", "project": "dev"}))

    response = await answered_during_the_wait(
        app,
        follow(api, "/api/v1/agents/helper", "1", LONG),
        api.delete("/api/v1/projects/dev"),
    )

    assert response.status_code == 200
    assert response.json()["metadata"]["resourceVersion"] == "2"
    assert "project" not in response.json()["spec"]


async def test_a_bulk_apply_wakes_the_waiters_of_what_it_wrote(
    app: FastAPI, api: httpx.AsyncClient, dev: JSON
) -> None:
    items = [server("git"), project("dev", ["time", "git"])]

    response = await answered_during_the_wait(
        app,
        follow(api, "/api/v1/projects/dev", "1", LONG),
        api.post("/api/v1/apply", json={"items": items}),
    )

    assert response.status_code == 200
    assert response.json()["spec"]["servers"] == ["time", "git"]


async def test_a_restore_wakes_the_waiters_of_what_it_wrote(
    app: FastAPI, api: httpx.AsyncClient, dev: JSON
) -> None:
    secret = {"passphrase": "a long backup passphrase"}
    document = (await api.post("/api/v1/backup", json=secret)).json()
    await must_put(api, project("dev", ["time"], toolPrefix="never"))
    body = {**secret, "backup": document}

    response = await answered_during_the_wait(
        app,
        follow(api, "/api/v1/projects/dev", "2", LONG),
        api.post("/api/v1/restore", json=body, params={"conflict": "overwrite"}),
    )

    assert response.status_code == 200
    assert response.json()["metadata"]["resourceVersion"] == "3"
    assert "toolPrefix" not in response.json()["spec"]


async def test_a_bulk_item_that_failed_after_writing_wakes_nobody(
    app: FastAPI, api: httpx.AsyncClient
) -> None:
    # Emptying the admin definition is written, then refused (nobody would keep full
    # access): its savepoint rolls back, while the other item commits.
    admin = (await api.get("/api/v1/rbacdefinitions/admin")).json()
    version = admin["metadata"]["resourceVersion"]
    emptied = manifest("RbacDefinition", "admin", {"subjects": [], "bindings": []})
    items = [server("git"), emptied]
    waiter = asyncio.ensure_future(follow(api, "/api/v1/rbacdefinitions/admin", version, 0.5))
    await waiting(app)

    applied = await api.post("/api/v1/apply", json={"items": items})
    response = await waiter

    results = applied.json()["results"]
    assert [r["outcome"] for r in results] == ["created", None]
    assert results[1]["error"]["code"] == "in_use"
    assert response.status_code == 304


async def test_a_dry_run_during_the_wait_wakes_nobody(
    app: FastAPI, api: httpx.AsyncClient, dev: JSON
) -> None:
    waiter = asyncio.ensure_future(follow(api, "/api/v1/projects/dev", "1", 0.5))
    await waiting(app)

    dry = await put(api, project("dev", ["time"], toolPrefix="never"), dryRun="true")
    response = await waiter

    assert dry.status_code == 200
    assert response.status_code == 304


@pytest.mark.parametrize("value", ["-1", "61", "soon", "nan"])
async def test_a_bad_wait_is_refused_naming_wait_seconds(
    api: httpx.AsyncClient, dev: JSON, value: str
) -> None:
    response = await api.get(
        "/api/v1/projects/dev", params={"changedAfter": "1", "waitSeconds": value}
    )

    assert response.status_code == 422
    assert response.json()["code"] == "invalid_input"
    assert [e["path"] for e in response.json()["errors"]] == ["waitSeconds"]


async def test_a_user_without_view_is_refused_as_get_refuses_them(
    api: httpx.AsyncClient, dev: JSON
) -> None:
    token = await add_person(api, "alice")

    plain = await api.get("/api/v1/projects/dev", headers=bearer(token))
    with anyio.fail_after(BOUND):
        followed = await follow(api, "/api/v1/projects/dev", "1", LONG, headers=bearer(token))

    assert plain.status_code == followed.status_code == 403
    assert followed.json()["code"] == plain.json()["code"] == "permission_denied"


async def test_view_taken_away_during_the_wait_is_refused_when_it_ends(
    app: FastAPI, api: httpx.AsyncClient, dev: JSON
) -> None:
    token = await add_person(api, "alice")
    grant = {"subjects": ["user:alice"], "bindings": [{"role": "view", "resource": "projects"}]}
    await must_put(api, manifest("RbacDefinition", "viewers", grant))
    waiter = asyncio.ensure_future(
        follow(api, "/api/v1/projects/dev", "1", 0.5, headers=bearer(token))
    )
    await waiting(app)

    assert (await api.delete("/api/v1/rbacdefinitions/viewers")).status_code == 200
    response = await waiter

    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"


async def test_a_client_that_goes_away_ends_its_wait(settings: Settings) -> None:
    with serve_mcpd(settings) as live:
        async with httpx.AsyncClient(
            base_url=live.url, headers=bearer(live.token), trust_env=False
        ) as http:
            await must_put(http, server("time"), project("dev", ["time"]))
            waiter = asyncio.ensure_future(follow(http, "/api/v1/projects/dev", "1", LONG))
            await _waiters_become(http, 1)
            waiter.cancel()  # closes its connection
            await _waiters_become(http, 0)


async def _waiters_become(http: httpx.AsyncClient, count: int) -> None:
    with anyio.fail_after(BOUND):
        # From another process's view there is no event for it: poll, bounded.
        while await _waiters(http) != count:  # noqa: ASYNC110
            await asyncio.sleep(0.01)


async def _waiters(http: httpx.AsyncClient) -> float:
    metrics = (await http.get("/metrics")).text
    (line,) = (m for m in metrics.splitlines() if m.startswith("mcpd_object_waiters "))
    return float(line.split()[1])


# Replicas share a PostgreSQL; SQLite has one mcpd.
@pytest.mark.parametrize(
    "database", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
async def test_a_change_through_another_replica_wakes_the_waiter_at_once(
    app: FastAPI, api: httpx.AsyncClient, settings: Settings, dev: JSON, tmp_path: Path
) -> None:
    """Two mcpd on one database: the commit through the second one reaches the first one's
    waiter by LISTEN/NOTIFY, long before the wait ends."""
    (tmp_path / "other").mkdir()
    other_settings = settings.model_copy(update={"data_dir": tmp_path / "other"})
    other = create_app(other_settings)
    async with LifespanManager(other):
        transport = httpx.ASGITransport(app=other)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://other.test", headers=api.headers
        ) as other_api:
            response = await answered_during_the_wait(
                app,
                follow(api, "/api/v1/projects/dev", "1", LONG),
                put(other_api, project("dev", ["time"], toolPrefix="never")),
            )

    assert response.status_code == 200
    assert response.json()["metadata"]["resourceVersion"] == "2"


def test_a_notification_names_the_written_objects_or_everything() -> None:
    keys = {("Project", "dev"), ("Server", "time")}

    assert notify.keys_of(notify.payload_of(keys)) == sorted(keys)
    many = {("Server", f"s{i:05d}") for i in range(1000)}
    assert notify.payload_of(many) == notify.EVERYTHING
    assert notify.keys_of(notify.EVERYTHING) is None
    assert notify.channel_for("t_1") != notify.channel_for("t_2")
    assert notify.asyncpg_dsn("postgresql+asyncpg://u@h/db") == "postgresql://u@h/db"
