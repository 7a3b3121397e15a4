"""`mcpctl get audit` against a live mcpd."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from mcpctl.mcpd.db.engine import create_engine
from mcpctl.mcpd.db.tables import AuditEventRow
from tests.cli.conftest import Mcpctl
from tests.cli.samples import lines, ok
from tests.conftest import LiveMcpd


def seed(live: LiveMcpd, *events: dict[str, Any]) -> None:
    """Write audit events straight into mcpd's database (no waiting for its batch writer)."""

    async def insert() -> None:
        settings = live.settings
        engine = create_engine(settings.effective_database_url(), schema=settings.database_schema)
        try:
            async with engine.begin() as conn:
                await conn.execute(sa.insert(AuditEventRow), list(events))
        finally:
            await engine.dispose()

    asyncio.run(insert())


def event(
    minutes_ago: int, actor: str, verb: str, kind: str, name: str | None, **more: Any
) -> dict[str, Any]:
    return {
        "time": datetime.now(UTC) - timedelta(minutes=minutes_ago),
        "actor": actor,
        "verb": verb,
        "kind": kind,
        "name": name,
        "outcome": "ok",
        "code": None,
        "request_id": "r1",
        "client": "127.0.0.1",
        "impersonated_by": None,
        "details": {},
        **more,
    }


@pytest.fixture
def trail(mcpctl: Mcpctl, live_mcpd: LiveMcpd) -> None:
    seed(
        live_mcpd,
        event(120, "alice", "apply", "Server", "old"),
        event(30, "alice", "delete", "Server", "gone", outcome="error", code="in_use"),
        event(10, "bob", "create", "Project", "dev", outcome="denied", code="permission_denied"),
        event(5, "bob", "apply", "Server", "web", impersonated_by="admin"),
    )


def test_get_audit_prints_the_newest_events_first_in_a_table(mcpctl: Mcpctl, trail: None) -> None:
    rows = [line.split() for line in lines(ok(mcpctl("get", "audit")))]

    assert rows[0] == ["TIME", "USER", "VERB", "KIND", "NAME", "OUTCOME", "CODE"]
    assert [r[1:] for r in rows[1:]] == [
        ["bob", "(impersonated", "by", "admin)", "apply", "Server", "web", "ok"],
        ["bob", "create", "Project", "dev", "denied", "permission_denied"],
        ["alice", "delete", "Server", "gone", "error", "in_use"],
        ["alice", "apply", "Server", "old", "ok"],
    ]


def test_get_audit_filters_by_since_user_and_kind(mcpctl: Mcpctl, trail: None) -> None:
    def names(*args: str) -> list[str]:
        result = ok(mcpctl("get", "auditevents", "-o", "json", *args))
        return [e["name"] for e in json.loads(result.stdout)["items"]]

    assert names("--since", "1h") == ["web", "dev", "gone"]
    assert names("--user", "alice") == ["gone", "old"]
    assert names("--kind", "servers", "--since", "1h") == ["web", "gone"]


def test_get_audit_yaml_lists_the_events(mcpctl: Mcpctl, trail: None) -> None:
    result = ok(mcpctl("get", "audit", "-o", "yaml", "--user", "bob"))

    assert "kind: AuditEventList" in result.stdout
    assert "requestId: r1" in result.stdout


def test_get_audit_with_a_bad_since_exits_3_naming_it(mcpctl: Mcpctl) -> None:
    result = mcpctl("get", "audit", "--since", "yesterday")

    assert result.exit_code == 3
    assert result.stderr.startswith("error: since:")


def test_audit_filters_on_other_kinds_are_a_usage_error(mcpctl: Mcpctl) -> None:
    result = mcpctl("get", "servers", "--since", "1h")

    assert result.exit_code == 2


def test_get_audit_says_when_there_is_nothing_to_show(mcpctl: Mcpctl) -> None:
    result = mcpctl("get", "audit", "--user", "nobody")

    assert result.exit_code == 0
    assert result.stdout == ""
    assert "No audit events found." in result.stderr
