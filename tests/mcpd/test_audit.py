"""The audit trail: what is recorded, what never is, how it is queried, pruned and flushed."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from prometheus_client import CollectorRegistry
from sqlalchemy.ext.asyncio import AsyncEngine

from mcpctl.errors import InvalidInput
from mcpctl.mcpd.app import create_app
from mcpctl.mcpd.db.engine import create_engine
from mcpctl.mcpd.db.uow import UnitOfWork, UnitOfWorkFactory
from mcpctl.mcpd.services.audit import AuditEvent, AuditLog, parse_since
from mcpctl.mcpd.settings import Settings
from tests.conftest import admin_token_of, state_of
from tests.mcpd.manifests import JSON, project, put, secret, server
from tests.mcpd.running import raw_rows
from tests.people import add_person

pytestmark = pytest.mark.anyio

AUDIT = "/api/v1/auditevents"


async def events(app: FastAPI, api: httpx.AsyncClient, **params: Any) -> list[JSON]:
    """Every event written so far, oldest first."""
    await state_of(app).audit.flush()
    response = await api.get(AUDIT, params=params)
    assert response.status_code == 200, response.text
    items: list[JSON] = response.json()["items"]
    return items[::-1]


def brief(items: list[JSON]) -> list[tuple[Any, ...]]:
    return [(e["verb"], e["kind"], e["name"], e["outcome"], e["code"]) for e in items]


async def person(app: FastAPI, api: httpx.AsyncClient, name: str) -> tuple[str, int]:
    """A token of a new user who is not an admin (and so may do nothing today), and how many
    events there are once they exist (making them is audited too: the apply, the login)."""
    token = await add_person(api, name)
    return token, len(await events(app, api))


def as_token(api: httpx.AsyncClient, token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {"Authorization": ""}


async def test_create_apply_and_delete_are_recorded_with_their_outcomes(
    app: FastAPI, api: httpx.AsyncClient
) -> None:
    assert (await api.post("/api/v1/servers", json=server("a"))).status_code == 201
    await put(api, server("a", description="changed"))
    await put(api, server("a", description="changed"))
    assert (await api.delete("/api/v1/servers/a")).status_code == 200

    items = await events(app, api)

    assert brief(items) == [
        ("create", "Server", "a", "ok", None),
        ("apply", "Server", "a", "ok", None),
        ("apply", "Server", "a", "ok", None),
        ("delete", "Server", "a", "ok", None),
    ]
    assert [e["details"].get("outcome") for e in items] == [
        "created",
        "configured",
        "unchanged",
        None,
    ]
    assert {e["user"] for e in items} == {"admin"}
    assert all(e["requestId"] and e["client"] for e in items)


async def test_failed_mutations_record_the_problem_code(
    app: FastAPI, api: httpx.AsyncClient
) -> None:
    await put(api, server("a"))
    await put(api, project("p", ["a"]))
    stale = server("a", description="x")
    stale["metadata"]["resourceVersion"] = "99"

    assert (await api.delete("/api/v1/servers/a")).status_code == 409
    assert (await put(api, stale)).status_code == 409
    assert (await api.delete("/api/v1/servers/missing")).status_code == 404
    assert (await put(api, server("b", transport="bogus"))).status_code == 422

    assert brief((await events(app, api))[2:]) == [
        ("delete", "Server", "a", "error", "in_use"),
        ("apply", "Server", "a", "error", "version_conflict"),
        ("delete", "Server", "missing", "error", "not_found"),
        ("apply", "Server", "b", "error", "invalid_input"),
    ]


async def test_each_object_of_a_bulk_apply_is_recorded_on_its_own(
    app: FastAPI, api: httpx.AsyncClient
) -> None:
    items = [server("good"), project("broken", ["missing"]), {"kind": "Bogus"}]

    response = await api.post("/api/v1/apply", json={"items": items})

    assert response.status_code == 200
    assert brief(await events(app, api)) == [
        ("apply", "Server", "good", "ok", None),
        ("apply", "Project", "broken", "error", "invalid_input"),
        ("apply", "Bogus", "", "error", "invalid_input"),
    ]


async def test_dry_runs_are_recorded_and_marked(app: FastAPI, api: httpx.AsyncClient) -> None:
    await put(api, server("a"), dryRun="true")
    await api.post("/api/v1/apply", json={"items": [server("b")]}, params={"dryRun": "true"})
    await put(api, server("c"))
    await api.delete("/api/v1/servers/c", params={"dryRun": "true"})

    items = await events(app, api)

    assert [(e["verb"], e["name"], e["details"]) for e in items] == [
        ("apply", "a", {"outcome": "created", "dryRun": True}),
        ("apply", "b", {"outcome": "created", "dryRun": True}),
        ("apply", "c", {"outcome": "created"}),
        ("delete", "c", {"dryRun": True}),
    ]


async def test_denied_requests_are_recorded_with_the_user_and_change_nothing(
    app: FastAPI, api: httpx.AsyncClient
) -> None:
    token, made = await person(app, api, "bob")
    headers = as_token(api, token)

    denied = await api.put("/api/v1/servers/a", json=server("a"), headers=headers)
    listed = await api.get("/api/v1/servers", headers=headers)
    audit = await api.get(AUDIT, headers=headers)

    assert (denied.status_code, listed.status_code, audit.status_code) == (403, 403, 403)
    assert (await api.get("/api/v1/servers/a")).status_code == 404
    items = (await events(app, api))[made:]
    assert [(e["user"], *brief([e])[0]) for e in items] == [
        ("bob", "create", "Server", "a", "denied", "permission_denied"),
        ("bob", "view", "Server", None, "denied", "permission_denied"),
        ("bob", "run", "audit", None, "denied", "permission_denied"),
    ]


async def test_unauthenticated_requests_are_recorded_as_anonymous(
    app: FastAPI, api: httpx.AsyncClient
) -> None:
    missing = await api.delete("/api/v1/servers/a", headers={"Authorization": ""})
    wrong = await api.get("/api/v1/servers", headers=as_token(api, "mcpctl_not-a-token"))

    assert (missing.status_code, wrong.status_code) == (401, 401)
    items = await events(app, api)
    assert [(e["user"], *brief([e])[0], e["details"]) for e in items] == [
        (
            "anonymous",
            "authenticate",
            "auth",
            None,
            "denied",
            "unauthenticated",
            {"request": "DELETE /api/v1/servers/a"},
        ),
        (
            "anonymous",
            "authenticate",
            "auth",
            None,
            "denied",
            "unauthenticated",
            {"request": "GET /api/v1/servers"},
        ),
    ]


async def test_revealing_secret_values_is_recorded_but_no_value_or_token_ever_is(
    app: FastAPI, api: httpx.AsyncClient, settings: Settings
) -> None:
    bob, made = await person(app, api, "bob")
    marker = f"marker-{uuid.uuid4().hex}"
    await put(api, secret("db", {"PASSWORD": marker}))
    await api.post("/api/v1/apply", json={"items": [secret("db2", {"K": marker})]})
    await api.get("/api/v1/secrets/db", params={"showValues": "true"})
    await api.get("/api/v1/secrets", params={"showValues": "true"})
    await api.get("/api/v1/secrets/db")
    await put(api, secret("db", {"PASSWORD": marker + "-x"}), dryRun="true")
    await api.get("/api/v1/secrets/db", params={"showValues": "true"}, headers=as_token(api, bob))

    items = (await events(app, api))[made:]

    assert [(e["user"], e["verb"], e["name"], e["outcome"]) for e in items] == [
        ("admin", "apply", "db", "ok"),
        ("admin", "apply", "db2", "ok"),
        ("admin", "reveal", "db", "ok"),
        ("admin", "reveal", None, "ok"),
        ("admin", "apply", "db", "ok"),
        ("bob", "view", "db", "denied"),
    ]
    dump = repr(await raw_rows(settings, "SELECT * FROM audit_events"))
    assert marker not in dump
    assert admin_token_of(settings) not in dump
    assert bob not in dump


async def test_request_id_is_honoured_echoed_and_recorded(
    app: FastAPI, api: httpx.AsyncClient
) -> None:
    given = await api.put(
        "/api/v1/servers/a", json=server("a"), headers={"X-Request-Id": "trace-42"}
    )
    made = await put(api, server("b"))
    garbage = await api.put(
        "/api/v1/servers/c", json=server("c"), headers={"X-Request-Id": "bad id\twith spaces"}
    )
    not_found = await api.get("/nowhere")

    assert given.headers["X-Request-Id"] == "trace-42"
    assert made.headers["X-Request-Id"]
    assert garbage.headers["X-Request-Id"] not in ("", "bad id\twith spaces")
    assert not_found.headers["X-Request-Id"]
    items = await events(app, api)
    assert [e["requestId"] for e in items] == [
        "trace-42",
        made.headers["X-Request-Id"],
        garbage.headers["X-Request-Id"],
    ]


def at(minutes_ago: int, actor: str = "admin", kind: str = "Server", name: str = "x") -> AuditEvent:
    return AuditEvent(
        actor=actor,
        verb="apply",
        kind=kind,
        name=name,
        outcome="ok",
        time=datetime.now(UTC) - timedelta(minutes=minutes_ago),
    )


async def test_the_query_is_newest_first_and_pages_with_a_continue_token(
    app: FastAPI, api: httpx.AsyncClient
) -> None:
    for minutes in range(7, 0, -1):
        state_of(app).audit.record(at(minutes, name=f"s{minutes}"))
    await state_of(app).audit.flush()

    names: list[str] = []
    token = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 3}
        if token:
            params["continue"] = token
        body = (await api.get(AUDIT, params=params)).json()
        names += [e["name"] for e in body["items"]]
        pages += 1
        token = body["metadata"].get("continue")
        if not token:
            break

    assert names == [f"s{m}" for m in range(1, 8)]
    assert pages == 3


async def test_the_query_filters_by_user_kind_and_since(
    app: FastAPI, api: httpx.AsyncClient
) -> None:
    audit = state_of(app).audit
    audit.record(at(120, actor="alice", name="old"))
    audit.record(at(30, actor="alice", name="recent"))
    audit.record(at(20, actor="bob", kind="Project", name="proj"))
    audit.record(at(10, actor="bob", kind="Secret", name="sec"))
    await audit.flush()

    def names(items: list[JSON]) -> list[str]:
        return [e["name"] for e in items]

    assert names(await events(app, api, user="alice")) == ["old", "recent"]
    assert names(await events(app, api, kind="projects")) == ["proj"]
    assert names(await events(app, api, kind="Secret")) == ["sec"]
    assert names(await events(app, api, since="1h")) == ["recent", "proj", "sec"]
    assert names(await events(app, api, since="25m", user="bob")) == ["proj", "sec"]
    since = (datetime.now(UTC) - timedelta(minutes=15)).isoformat().replace("+00:00", "Z")
    assert names(await events(app, api, since=since)) == ["sec"]


async def test_bad_query_parameters_are_422_naming_them(api: httpx.AsyncClient) -> None:
    for params, path in (
        ({"since": "yesterday"}, "since"),
        ({"continue": "garbage"}, "continue"),
        ({"limit": "501"}, "limit"),
    ):
        response = await api.get(AUDIT, params=params)
        assert response.status_code == 422, params
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["code"] == "invalid_input"
        assert [e["path"] for e in response.json()["errors"]] == [path]


@pytest.mark.parametrize(
    ("text", "back"),
    [
        ("90s", timedelta(seconds=90)),
        ("15m", timedelta(minutes=15)),
        ("1h", timedelta(hours=1)),
        ("7d", timedelta(days=7)),
        ("1h30m", timedelta(minutes=90)),
    ],
)
def test_since_takes_durations_back_from_now(text: str, back: timedelta) -> None:
    now = datetime(2026, 1, 2, tzinfo=UTC)

    assert parse_since(text, now) == now - back


def test_since_takes_rfc_3339_times_and_refuses_anything_else() -> None:
    now = datetime(2026, 1, 2, tzinfo=UTC)

    assert parse_since("2026-01-01T10:00:00Z", now) == datetime(2026, 1, 1, 10, tzinfo=UTC)
    assert parse_since("2026-01-01T12:00:00+02:00", now) == datetime(2026, 1, 1, 10, tzinfo=UTC)
    with pytest.raises(InvalidInput) as caught:
        parse_since("1w", now)
    assert caught.value.details["errors"][0]["path"] == "since"


async def test_the_retention_sweep_deletes_only_events_older_than_the_period(
    app: FastAPI, api: httpx.AsyncClient
) -> None:
    audit = state_of(app).audit
    now = datetime.now(UTC)
    for days, name in ((200, "ancient"), (91, "old"), (89, "kept"), (0, "new")):
        event = at(0, name=name)
        audit.record(AuditEvent(**{**event.__dict__, "time": now - timedelta(days=days)}))
    await audit.flush()

    deleted = await audit.sweep(now)

    assert deleted == 2
    assert [e["name"] for e in await events(app, api)] == ["kept", "new"]


async def test_queued_events_are_written_on_a_clean_shutdown(settings: Settings) -> None:
    app = create_app(settings)
    async with LifespanManager(app):
        audit = state_of(app).audit
        for i in range(1234):
            audit.record(at(0, name=f"s{i}"))

    rows = await raw_rows(settings, "SELECT count(*) FROM audit_events WHERE verb = 'apply'")
    assert rows == [(1234,)]


class CountingUows(UnitOfWorkFactory):
    """The real unit-of-work factory, counting the write transactions it hands out."""

    def __init__(self, engine: AsyncEngine) -> None:
        super().__init__(engine)
        self.writes = 0

    def write(self) -> UnitOfWork:
        self.writes += 1
        return super().write()


async def test_a_steady_stream_of_events_is_written_in_few_transactions(
    app: FastAPI, settings: Settings
) -> None:
    uows = CountingUows(state_of(app).engine)
    audit = AuditLog(uows, batch_size=500, interval=0.1, retention=None)
    audit.start()
    loop = asyncio.get_running_loop()
    started = loop.time()
    try:
        for i in range(600):
            # A paced stream, as relayed calls make them: some arrive while a batch is written.
            audit.record(at(0, actor="stream", name=f"s{i}"))
            await asyncio.sleep(0.0005)
    finally:
        await audit.close()
    elapsed = loop.time() - started

    rows = await raw_rows(settings, "SELECT count(*) FROM audit_events WHERE actor = 'stream'")
    assert rows == [(600,)]
    assert audit.dropped == 0
    # One batch per interval and the last one at close, not one per write's duration.
    assert uows.writes <= elapsed / 0.1 + 2, (uows.writes, elapsed)


async def test_a_full_queue_drops_counts_and_never_blocks(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'unused.db'}")
    registry = CollectorRegistry()
    try:
        audit = AuditLog(UnitOfWorkFactory(engine), registry=registry, max_queue=2)
        for i in range(5):
            audit.record(at(0, name=f"s{i}"))
    finally:
        await engine.dispose()

    assert audit.dropped == 3
    assert registry.get_sample_value("mcpd_audit_events_dropped_total") == 3


async def test_a_backup_and_a_restore_each_leave_one_event_and_no_secret(
    app: FastAPI, api: httpx.AsyncClient
) -> None:
    marker = f"marker-{uuid.uuid4().hex}"
    await put(api, secret("vault", {"token": marker}))
    backup = await api.post("/api/v1/backup", json={"passphrase": "correct horse"})
    wrong = await api.post(
        "/api/v1/restore", json={"passphrase": "wrong horse!", "backup": backup.json()}
    )
    right = await api.post(
        "/api/v1/restore", json={"passphrase": "correct horse", "backup": backup.json()}
    )
    assert (backup.status_code, wrong.status_code, right.status_code) == (200, 422, 200)

    trail = [e for e in await events(app, api) if e["verb"] in ("backup", "restore")]

    assert [(e["verb"], e["outcome"], e["code"]) for e in trail] == [
        ("backup", "ok", None),
        ("restore", "error", "invalid_input"),
        ("restore", "ok", None),
    ]
    assert trail[0]["details"] == {"users": 1, "objects": 3}  # the secret, user and rbac admin
    rows = await raw_rows(state_of(app).settings, "SELECT * FROM audit_events")
    assert marker not in repr(rows)
