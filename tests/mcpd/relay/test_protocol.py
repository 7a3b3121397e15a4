"""The relay's streamable-HTTP transport: sessions, versions and malformed messages."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import Database, LiveMcpd
from tests.mcpd.relay.conftest import connect

pytestmark = pytest.mark.anyio

ACCEPT = "application/json, text/event-stream"
TIME = "/api/v1/servers/time/mcp"


@pytest.fixture
def database(tmp_path: Path) -> Database:
    return Database("sqlite", f"sqlite:///{tmp_path / 'mcpd.db'}")


@pytest.fixture
async def http(servers: LiveMcpd) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"Authorization": f"Bearer {servers.token}", "Accept": ACCEPT}
    async with httpx.AsyncClient(base_url=servers.url, headers=headers, trust_env=False) as client:
        yield client


def initialize(version: str = "2025-11-25") -> dict[str, Any]:
    params = {"protocolVersion": version, "capabilities": {}, "clientInfo": {"name": "t"}}
    return {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": params}


PING = {"jsonrpc": "2.0", "id": 2, "method": "ping"}


async def open_session(http: httpx.AsyncClient, version: str = "2025-11-25") -> str:
    response = await http.post(TIME, json=initialize(version))
    assert response.status_code == 200, response.text
    return response.headers["mcp-session-id"]


async def test_the_sdk_clients_auto_mode_falls_back_to_the_handshake(servers: LiveMcpd) -> None:
    async with connect(servers, "time", mode="auto") as client:
        version = client.protocol_version
        tools = await client.list_tools()

    assert version == "2025-11-25"
    assert tools.tools


async def test_a_2026_request_is_refused_with_the_versions_we_speak(
    http: httpx.AsyncClient,
) -> None:
    discover = {"jsonrpc": "2.0", "id": 1, "method": "server/discover", "params": {}}
    response = await http.post(TIME, json=discover, headers={"MCP-Protocol-Version": "2026-07-28"})

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == -32022
    assert error["data"]["supported"][-1] == "2025-11-25"


@pytest.mark.parametrize(
    ("asked", "answered"),
    [("2025-11-25", "2025-11-25"), ("2025-03-26", "2025-03-26"), ("1999-01-01", "2025-11-25")],
)
async def test_initialize_negotiates_the_protocol_version(
    http: httpx.AsyncClient, asked: str, answered: str
) -> None:
    response = await http.post(TIME, json=initialize(asked))

    assert response.json()["result"]["protocolVersion"] == answered
    assert response.json()["result"]["serverInfo"]["name"] == "mcp-time"


async def test_delete_ends_the_session(http: httpx.AsyncClient) -> None:
    session = await open_session(http)
    headers = {"Mcp-Session-Id": session}

    before = await http.post(TIME, json=PING, headers=headers)
    deleted = await http.delete(TIME, headers=headers)
    after = await http.post(TIME, json=PING, headers=headers)

    assert before.json() == {"jsonrpc": "2.0", "id": 2, "result": {}}
    assert deleted.status_code == 200
    assert after.status_code == 404
    assert after.json()["error"]["message"] == "Session terminated"


async def test_the_protocol_version_header_must_be_the_sessions(http: httpx.AsyncClient) -> None:
    session = await open_session(http, "2025-06-18")

    same = await http.post(
        TIME, json=PING, headers={"Mcp-Session-Id": session, "MCP-Protocol-Version": "2025-06-18"}
    )
    other = await http.post(
        TIME, json=PING, headers={"Mcp-Session-Id": session, "MCP-Protocol-Version": "2025-11-25"}
    )

    assert same.status_code == 200
    assert other.status_code == 400
    assert "MCP-Protocol-Version" in other.json()["error"]["message"]


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"{not json", -32700),
        (b'[{"jsonrpc": "2.0", "id": 1, "method": "ping"}]', -32600),
        (b'{"id": 1, "method": "ping"}', -32600),
    ],
)
async def test_malformed_messages_are_400_with_a_json_rpc_error(
    http: httpx.AsyncClient, body: bytes, code: int
) -> None:
    session = await open_session(http)

    response = await http.post(
        TIME,
        content=body,
        headers={"Mcp-Session-Id": session, "Content-Type": "application/json"},
    )

    assert response.status_code == 400
    assert response.json()["error"]["code"] == code


async def test_get_needs_a_session_and_other_methods_are_405(http: httpx.AsyncClient) -> None:
    get = await http.get(TIME)
    put = await http.put(TIME, json=PING)

    assert get.status_code == 400
    assert put.status_code == 405


async def test_notifications_and_responses_are_accepted_with_202(http: httpx.AsyncClient) -> None:
    session = await open_session(http)
    headers = {"Mcp-Session-Id": session}

    note = await http.post(
        TIME, json={"jsonrpc": "2.0", "method": "notifications/initialized"}, headers=headers
    )
    reply = await http.post(TIME, json={"jsonrpc": "2.0", "id": "x", "result": {}}, headers=headers)

    assert (note.status_code, reply.status_code) == (202, 202)


async def test_relay_requests_are_counted_under_the_route_template(
    servers: LiveMcpd, http: httpx.AsyncClient
) -> None:
    session = await open_session(http)
    for _ in range(3):
        response = await http.post(TIME, json=PING, headers={"Mcp-Session-Id": session})
        assert response.status_code == 200
    await http.post(TIME, json=PING)  # no session: 400

    metrics = (await http.get("/metrics")).text

    route = 'route="/api/v1/servers/{name}/mcp"'
    assert f'mcpd_http_requests_total{{method="POST",{route},status="200"}} 4.0' in metrics
    assert f'mcpd_http_requests_total{{method="POST",{route},status="400"}} 1.0' in metrics
    assert f'mcpd_http_request_duration_seconds_count{{method="POST",{route}}} 5.0' in metrics
