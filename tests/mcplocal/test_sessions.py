"""mcplocal's own streamable-HTTP transport: sessions, streams, subscriptions, and the rules
of the transport a client can break."""

from __future__ import annotations

import sys
from pathlib import Path

import anyio
import httpx
import mcp_types as types
import pytest

from mcpctl.mcplocal.clients import ClientSessions
from tests.conftest import LiveMcpd
from tests.mcplocal.conftest import (
    Mcplocal,
    apply_project,
    connect,
    define_servers,
    serve_mcplocal,
    text_of,
    wait_listening,
)

pytestmark = pytest.mark.anyio

WATCHED = Path(__file__).with_name("watched_server.py")
URI = "watched://counter"
UPDATED = "notifications/resources/updated"
ACCEPT = {"Accept": "application/json, text/event-stream"}


def hello(version: str = "2025-06-18") -> dict[str, object]:
    params = {"protocolVersion": version, "capabilities": {}, "clientInfo": {"name": "t"}}
    return {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": params}


def ping(request_id: int = 2) -> dict[str, object]:
    return {"jsonrpc": "2.0", "id": request_id, "method": "ping"}


# Subscriptions are of the handshake era (2026-07-28 replaces them with listen), which is
# what this test is about.
@pytest.mark.filterwarnings("ignore::mcp.shared.exceptions.MCPDeprecationWarning")
async def test_resource_updates_reach_the_sessions_that_subscribed_and_only_them(
    live_mcpd: LiveMcpd, mcplocal: Mcplocal
) -> None:
    define_servers(live_mcpd, watched={"command": sys.executable, "args": [str(WATCHED)]})
    apply_project(live_mcpd, "work", ["watched"])
    url = mcplocal.url("work")
    async with connect(url) as (watcher, seen), connect(url) as (other, unseen):
        await watcher.subscribe_resource(URI)
        await wait_listening(mcplocal, "work")
        touched = await other.call_tool("watched__touch", {})
        assert "told the subscribers" in text_of(touched)
        await seen.wait_for(UPDATED, 0, 5)
        assert UPDATED not in unseen.counts

        await watcher.unsubscribe_resource(URI)
        touched = await other.call_tool("watched__touch", {})
        assert "nobody subscribed" in text_of(touched)  # the server heard the last one leave
        assert seen.counts[UPDATED] == 1


async def test_a_session_lives_from_initialize_to_delete(
    live_mcpd: LiveMcpd, mcplocal: Mcplocal
) -> None:
    apply_project(live_mcpd, "work", [])
    async with httpx.AsyncClient(base_url=mcplocal.base, headers=ACCEPT) as http:
        path = "/projects/work/mcp"
        no_session = await http.post(path, json=ping())
        assert no_session.status_code == 400
        assert "initialize" in no_session.json()["error"]["message"]

        opened = await http.post(path, json=hello())
        assert opened.status_code == 200
        assert opened.json()["result"]["protocolVersion"] == "2025-06-18"
        assert opened.json()["result"]["capabilities"]["resources"]["subscribe"] is True
        session = {"Mcp-Session-Id": opened.headers["mcp-session-id"]}

        # Any version of the handshake era is accepted on a request, another one is not.
        older = {**session, "MCP-Protocol-Version": "2025-03-26"}
        assert (await http.post(path, json=ping(), headers=older)).json()["result"] == {}
        future = {**session, "MCP-Protocol-Version": "1999-01-01"}
        assert (await http.post(path, json=ping(), headers=future)).status_code == 400

        batch = await http.post(path, json=[ping(3), ping(4)], headers=session)
        assert batch.status_code == 400
        wrong_type = await http.post(
            path, content=b"ping", headers={**session, "Content-Type": "text/plain"}
        )
        assert wrong_type.status_code == 415
        unknown = await http.post(
            path, json={"jsonrpc": "2.0", "id": 5, "method": "no/such"}, headers=session
        )
        assert unknown.json()["error"]["code"] == -32601

        assert (await http.delete(path, headers=session)).status_code == 200
        gone = await http.post(path, json=ping(), headers=session)
        assert gone.status_code == 404
        assert (await http.delete(path, headers=session)).status_code == 404


async def test_a_session_has_one_event_stream_and_delete_ends_it(
    live_mcpd: LiveMcpd, mcplocal: Mcplocal
) -> None:
    apply_project(live_mcpd, "work", [])
    path = "/projects/work/mcp"
    async with httpx.AsyncClient(base_url=mcplocal.base, headers=ACCEPT, timeout=10) as http:
        opened = await http.post(path, json=hello())
        session = {"Mcp-Session-Id": opened.headers["mcp-session-id"]}
        stream_headers = {**session, "Accept": "text/event-stream"}
        async with http.stream("GET", path, headers=stream_headers) as stream:
            assert stream.status_code == 200
            await wait_listening(mcplocal, "work")
            second = await http.get(path, headers=stream_headers)
            assert second.status_code == 409
            assert (await http.delete(path, headers=session)).status_code == 200
            with anyio.fail_after(5):
                assert await stream.aread() == b""  # the stream ended with the session
        assert (await http.get(path, headers={**stream_headers, "Accept": "x/y"})).status_code in (
            404,
            406,
        )


def test_sessions_idle_without_a_stream_are_dropped() -> None:
    sessions = ClientSessions(idle_seconds=0, sweep_every=0)
    idle = sessions.open("2025-06-18")
    listening = sessions.open("2025-06-18")
    listening.outlet = lambda data: None
    newest = sessions.open("2025-06-18")  # opening one sweeps the others
    assert sessions.get(idle.id) is None
    assert idle.closed
    assert sessions.get(listening.id) is listening
    assert sessions.get(newest.id) is newest


def test_past_the_cap_the_idlest_session_goes() -> None:
    sessions = ClientSessions(max_sessions=3)
    oldest, *rest = [sessions.open("2025-06-18") for _ in range(3)]
    newest = sessions.open("2025-06-18")
    assert sessions.get(oldest.id) is None
    assert [sessions.get(s.id) for s in [*rest, newest]] == [*rest, newest]


async def test_a_request_id_that_is_neither_string_nor_integer_is_refused(
    live_mcpd: LiveMcpd, mcplocal: Mcplocal
) -> None:
    apply_project(live_mcpd, "work", [])
    async with httpx.AsyncClient(base_url=mcplocal.base, headers=ACCEPT) as http:
        path = "/projects/work/mcp"
        opened = await http.post(path, json=hello())
        session = {"Mcp-Session-Id": opened.headers["mcp-session-id"]}
        odd = {"jsonrpc": "2.0", "id": {"a": 1}, "method": "ping"}
        refused = await http.post(path, json=odd, headers=session)
        assert refused.status_code == 400
        assert "id must be a string or an integer" in refused.json()["error"]["message"]


def relay_posts(mcpd: LiveMcpd) -> float:
    """How many POSTs mcpd's relay endpoint has answered (its request metrics)."""
    auth = {"Authorization": f"Bearer {mcpd.token}"}
    metrics = httpx.get(f"{mcpd.url}/metrics", headers=auth, trust_env=False).text
    prefix = 'mcpd_http_requests_total{method="POST",route="/api/v1/servers/{name}/mcp"'
    return sum(
        float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines() if line.startswith(prefix)
    )


async def test_calls_to_a_relay_session_go_over_its_channel_not_one_post_each(
    live_mcpd: LiveMcpd, mcplocal: Mcplocal
) -> None:
    define_servers(live_mcpd, watched={"command": sys.executable, "args": [str(WATCHED)]})
    apply_project(live_mcpd, "work", ["watched"])
    async with connect(mcplocal.url("work")) as (client, _):
        await wait_listening(mcplocal, "work")
        await client.call_tool("watched__touch", {})
        before = relay_posts(live_mcpd)
        for _ in range(10):
            touched = await client.call_tool("watched__touch", {})
        after = relay_posts(live_mcpd)

    assert "nobody subscribed" in text_of(touched)
    assert before >= 2  # initialize and notifications/initialized were plain POSTs
    assert after == before


class Logs:
    """The log messages a client received."""

    def __init__(self) -> None:
        self.items: list[types.LoggingMessageNotificationParams] = []
        self._changed = anyio.Event()

    async def __call__(self, params: types.LoggingMessageNotificationParams) -> None:
        self.items.append(params)
        changed, self._changed = self._changed, anyio.Event()
        changed.set()

    async def wait_for(self, count: int) -> None:
        with anyio.fail_after(10):
            while len(self.items) < count:
                await self._changed.wait()


# logging/setLevel is of the handshake era (2026-07-28 deprecates it), which is what this is about.
@pytest.mark.filterwarnings("ignore::mcp.shared.exceptions.MCPDeprecationWarning")
async def test_server_log_messages_reach_each_session_at_its_level_named_by_server(
    live_mcpd: LiveMcpd, mcplocal: Mcplocal
) -> None:
    define_servers(live_mcpd, watched={"command": sys.executable, "args": [str(WATCHED)]})
    apply_project(live_mcpd, "work", ["watched"])
    url = mcplocal.url("work")
    everything, errors = Logs(), Logs()
    async with (
        connect(url, logging_callback=everything) as (chatty, _),
        connect(url, logging_callback=errors) as (quiet, _),
    ):
        await quiet.set_logging_level("error")
        await wait_listening(mcplocal, "work")
        logged = await chatty.call_tool("watched__log", {})
        await everything.wait_for(3)
        await errors.wait_for(1)
        await anyio.sleep(0.2)  # nothing more comes

    assert text_of(logged) == "logged"
    assert [(m.level, m.data) for m in everything.items] == [
        ("debug", "a debug message"),
        ("info", "a info message"),
        ("error", "a error message"),
    ]
    assert {m.logger for m in everything.items} == {"watched/watched-logger"}
    assert [(m.level, m.logger) for m in errors.items] == [("error", "watched/watched-logger")]


@pytest.mark.parametrize(
    ("answers", "expected"), [("json", "application/json"), ("sse", "text/event-stream")]
)
async def test_answers_sets_how_requests_are_answered(
    live_mcpd: LiveMcpd, time_server: str, answers: str, expected: str
) -> None:
    apply_project(live_mcpd, "work", ["time"])
    async with serve_mcplocal(live_mcpd, answers=answers) as served, httpx.AsyncClient() as http:
        url = served.url("work")
        opened = await http.post(url, json=hello(), headers=ACCEPT)
        session = {**ACCEPT, "Mcp-Session-Id": opened.headers["mcp-session-id"]}
        pinged = await http.post(url, json=ping(), headers=session)
        json_only = await http.post(
            url, json=ping(3), headers={**session, "Accept": "application/json"}
        )

    assert pinged.headers["content-type"] == expected
    assert '"result":{}' in pinged.text
    assert json_only.headers["content-type"] == "application/json"  # what the client takes
