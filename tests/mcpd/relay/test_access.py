"""Who may use the relay, and what the audit trail keeps of it, on both engines: 401 without
a token, 403 without ``run`` on the server, 404 for an unknown server or session, one audit
event per ``tools/call`` without argument values or results."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager

from mcpctl.mcpd.app import create_app
from mcpctl.mcpd.settings import Settings
from tests.conftest import admin_token_of, serve_mcpd
from tests.mcpd.relay.conftest import (
    add_server,
    admin_client,
    connect,
    connect_error,
    relay_url,
    spec,
    text_of,
)
from tests.mcpd.test_rbac import grant
from tests.people import add_person

pytestmark = pytest.mark.anyio

INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-11-25",
        "capabilities": {},
        "clientInfo": {"name": "test", "version": "1"},
    },
}
ACCEPT = {"Accept": "application/json, text/event-stream"}


async def initialize(url: str, token: str | None) -> httpx.Response:
    headers = {**ACCEPT, **({"Authorization": f"Bearer {token}"} if token else {})}
    async with httpx.AsyncClient(trust_env=False) as http:
        return await http.post(url, json=INITIALIZE, headers=headers)


def refusal(response: httpx.Response) -> tuple[int, int, str]:
    """Status, JSON-RPC code and stable code of a refused request."""
    assert response.headers["content-type"] == "application/json"
    error = response.json()["error"]
    return response.status_code, error["code"], error["data"]["code"]


async def test_without_a_token_the_relay_answers_401_with_a_json_rpc_error(
    settings: Settings, tmp_path: Path
) -> None:
    with serve_mcpd(settings) as live:
        await add_server(live, "time", spec("time", tmp_path))
        missing = await initialize(relay_url(live, "time"), None)
        wrong = await initialize(relay_url(live, "time"), "mcpctl_not-a-token")

    assert refusal(missing) == (401, -32603, "unauthenticated")
    assert refusal(wrong) == (401, -32603, "unauthenticated")
    assert missing.headers["www-authenticate"].startswith("Bearer")
    assert "mcpctl login" in missing.json()["error"]["message"]


async def test_run_on_the_server_is_needed_and_enough(settings: Settings, tmp_path: Path) -> None:
    with serve_mcpd(settings) as live:
        await add_server(live, "time", spec("time", tmp_path))
        await add_server(live, "other", spec("time", tmp_path))
        async with admin_client(live) as api:
            token = await add_person(api, "alice")
            await grant(
                api,
                [
                    {"role": "view", "resource": "servers"},
                    {"role": "run", "resource": "servers", "name": "time"},
                ],
            )
        other = await initialize(relay_url(live, "other"), token)
        async with connect(live, "time", token) as client:
            result = await client.call_tool("get_current_time", {"timezone": "UTC"})
        raised = await connect_error(live, "other", token)

    assert refusal(other) == (403, -32603, "permission_denied")
    assert "may not run servers/other" in other.json()["error"]["message"]
    assert result.is_error is False
    assert "may not run servers/other" in raised.error.message


async def test_unknown_servers_are_404_and_so_are_unknown_sessions(
    settings: Settings, tmp_path: Path
) -> None:
    with serve_mcpd(settings) as live:
        await add_server(live, "time", spec("time", tmp_path))
        unknown = await initialize(relay_url(live, "nope"), live.token)
        async with httpx.AsyncClient(
            trust_env=False, headers={**ACCEPT, "Authorization": f"Bearer {live.token}"}
        ) as http:
            ping = {"jsonrpc": "2.0", "id": 2, "method": "ping"}
            stale = await http.post(
                relay_url(live, "time"), json=ping, headers={"Mcp-Session-Id": "0" * 32}
            )
            missing = await http.post(relay_url(live, "time"), json=ping)

    assert refusal(unknown) == (404, -32602, "not_found")
    assert stale.status_code == 404
    assert stale.json()["error"]["message"] == "Session terminated"
    assert missing.status_code == 400
    assert "Mcp-Session-Id" in missing.json()["error"]["message"]


async def test_a_session_is_its_users_only(settings: Settings, tmp_path: Path) -> None:
    with serve_mcpd(settings) as live:
        await add_server(live, "time", spec("time", tmp_path))
        async with admin_client(live) as api:
            token = await add_person(api, "alice")
            await grant(api, [{"role": "run", "resource": "servers"}])
        opened = await initialize(relay_url(live, "time"), live.token)
        session = opened.headers["mcp-session-id"]
        async with httpx.AsyncClient(trust_env=False, headers=ACCEPT) as http:
            ping = {"jsonrpc": "2.0", "id": 2, "method": "ping"}
            own = await http.post(
                relay_url(live, "time"),
                json=ping,
                headers={"Mcp-Session-Id": session, "Authorization": f"Bearer {live.token}"},
            )
            borrowed = await http.post(
                relay_url(live, "time"),
                json=ping,
                headers={"Mcp-Session-Id": session, "Authorization": f"Bearer {token}"},
            )

    assert own.status_code == 200
    assert borrowed.status_code == 404


async def audit_events(settings: Settings) -> list[dict[str, Any]]:
    """Every audit event, oldest first, read once mcpd has stopped (its shutdown writes what
    was queued)."""
    app = create_app(settings)
    async with (
        LifespanManager(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://mcpd.test",
            headers={"Authorization": f"Bearer {admin_token_of(settings)}"},
        ) as api,
    ):
        response = await api.get("/api/v1/auditevents", params={"limit": 500})
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items[::-1]


async def test_each_tool_call_is_audited_with_tool_duration_and_outcome_but_no_values(
    settings: Settings, tmp_path: Path
) -> None:
    with serve_mcpd(settings) as live:
        await add_server(live, "fixture", spec("fixture", tmp_path))
        async with admin_client(live) as api:
            token = await add_person(api, "alice")
            await grant(api, [{"role": "run", "resource": "servers", "name": "fixture"}])
        async with connect(live, "fixture", token) as client:
            echoed = await client.call_tool("echo", {"text": "secret-argument-value"})
            unknown = await client.call_tool("nope", {"text": "another-secret"})
            await client.list_tools()

    calls = [e for e in await audit_events(settings) if e["verb"] == "call"]

    assert text_of(echoed) == "secret-argument-value"
    assert unknown.is_error is True
    assert [(e["user"], e["kind"], e["name"], e["outcome"], e["code"]) for e in calls] == [
        ("alice", "Server", "fixture", "ok", None),
        ("alice", "Server", "fixture", "error", "tool_error"),
    ]
    assert [e["details"]["tool"] for e in calls] == ["echo", "nope"]
    assert all(e["details"]["durationMs"] >= 0 for e in calls)
    written = json.dumps(calls)
    assert "secret-argument-value" not in written
    assert "another-secret" not in written
    assert "unknown tool" not in written


async def test_the_request_id_is_honoured_echoed_and_recorded_in_the_call_event(
    settings: Settings, tmp_path: Path
) -> None:
    with serve_mcpd(settings) as live:
        await add_server(live, "fixture", spec("fixture", tmp_path))
        url = relay_url(live, "fixture")
        headers = {**ACCEPT, "Authorization": f"Bearer {live.token}"}
        async with httpx.AsyncClient(trust_env=False, headers=headers) as http:
            opened = await http.post(url, json=INITIALIZE, headers={"X-Request-Id": "init-1"})
            session = {
                "Mcp-Session-Id": opened.headers["mcp-session-id"],
                "X-Request-Id": "call-7",
            }
            call = {"name": "echo", "arguments": {"text": "hi"}}
            called = await http.post(
                url,
                json={"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": call},
                headers=session,
            )
            made = await http.post(url, json=INITIALIZE, headers={"X-Request-Id": "not plain"})
            refused = await http.post(url, json=INITIALIZE, headers={"Authorization": ""})

    calls = [e for e in await audit_events(settings) if e["verb"] == "call"]

    assert (opened.status_code, called.status_code) == (200, 200)
    assert opened.headers["x-request-id"] == "init-1"
    assert called.headers["x-request-id"] == "call-7"
    assert len(made.headers["x-request-id"]) == 32  # replaced, not trusted into logs
    assert refused.status_code == 401
    assert refused.headers["x-request-id"]
    assert [e["requestId"] for e in calls] == ["call-7"]
