"""A relay session's channel (mcpd/relay/channel.py) against a live mcpd and the stdio
fixture server, with the client end mcplocal uses (mcplocal/channel.py)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from mcpctl.jsonrpc.protocol import JsonObject
from mcpctl.mcpd.settings import Settings
from mcpctl.mcplocal.channel import Channel, ChannelClosed, ChannelRefused, _Pending
from tests.conftest import LiveMcpd, serve_mcpd
from tests.mcpd.relay.conftest import add_server, admin_client, relay_url, spec
from tests.mcpd.relay.test_access import ACCEPT, INITIALIZE, audit_events
from tests.mcpd.test_rbac import grant
from tests.people import add_person

pytestmark = pytest.mark.anyio

WAIT = 30.0


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"rbac_cache_seconds": 0.0})


async def open_session(live: LiveMcpd, token: str) -> tuple[dict[str, str], httpx.Response]:
    """A relay session on the fixture server: the headers that name it, and the answer."""
    headers = {**ACCEPT, "Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(trust_env=False) as http:
        opened = await http.post(relay_url(live, "fixture"), json=INITIALIZE, headers=headers)
    assert opened.status_code == 200, opened.text
    return {**headers, "Mcp-Session-Id": opened.headers["mcp-session-id"]}, opened


@asynccontextmanager
async def channel_of(live: LiveMcpd, token: str | None = None) -> AsyncIterator[Channel]:
    headers, _ = await open_session(live, token or live.token)
    channel = await Channel.open(relay_url(live, "fixture"), headers, connect_timeout=WAIT)
    try:
        yield channel
    finally:
        channel.close()


def call(request_id: int, tool: str, **arguments: Any) -> JsonObject:
    params = {"name": tool, "arguments": arguments}
    return {"jsonrpc": "2.0", "id": request_id, "method": "tools/call", "params": params}


async def answer_of(channel: Channel, message: JsonObject) -> JsonObject:
    async with asyncio.timeout(WAIT):
        return await channel.request(message).answer


@pytest.fixture
async def live(settings: Settings, tmp_path: Path) -> AsyncIterator[LiveMcpd]:
    with serve_mcpd(settings) as live:
        await add_server(live, "fixture", spec("fixture", tmp_path))
        yield live


async def test_a_relay_session_offers_a_channel_that_answers_concurrent_requests(
    live: LiveMcpd,
) -> None:
    _, opened = await open_session(live, live.token)
    async with channel_of(live) as channel:
        answers = await asyncio.gather(
            *(answer_of(channel, call(i, "echo", text=f"hello {i}")) for i in range(20))
        )
        pong = await answer_of(channel, {"jsonrpc": "2.0", "id": "p", "method": "ping"})

    assert opened.headers["x-mcpctl-channel"] == "ndjson"
    assert [a["id"] for a in answers] == list(range(20))
    assert [a["result"]["content"][0]["text"] for a in answers] == [f"hello {i}" for i in range(20)]
    assert pong == {"jsonrpc": "2.0", "id": "p", "result": {}}


async def test_progress_comes_before_the_answer_with_the_clients_token(live: LiveMcpd) -> None:
    async with channel_of(live) as channel:
        message = call(7, "progress", steps=3)
        message["params"]["_meta"] = {"progressToken": "tok"}
        pending = channel.request(message, progress=True)
        async with asyncio.timeout(WAIT):
            answer = await pending.answer
        assert pending.events is not None
        events = [pending.events.get_nowait() for _ in range(pending.events.qsize())]

    assert answer["result"]["content"][0]["text"] == "3 steps"
    assert [e["params"]["progress"] for e in events] == [1, 2, 3]
    assert {e["params"]["progressToken"] for e in events} == {"tok"}


async def test_cancelling_a_request_answers_it_cancelled(live: LiveMcpd) -> None:
    async with channel_of(live) as channel:
        pending = channel.request(call(1, "hang"))
        await asyncio.sleep(0.2)
        cancelled = {"requestId": 1, "reason": "changed my mind"}
        channel.send({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": cancelled})
        async with asyncio.timeout(WAIT):
            answer = await pending.answer
        after = await answer_of(channel, call(2, "echo", text="still open"))

    assert answer["error"]["code"] == -32800
    assert after["result"]["content"][0]["text"] == "still open"


async def test_the_servers_notifications_arrive_on_the_channel(live: LiveMcpd) -> None:
    async with channel_of(live) as channel:
        answer = await answer_of(channel, call(1, "ask"))
        async with asyncio.timeout(WAIT):
            note = await channel.notifications.get()

    assert note is not None
    assert note["method"] == "notifications/tools/list_changed"
    assert "result" in answer


async def test_a_malformed_line_is_answered_and_the_channel_goes_on(live: LiveMcpd) -> None:
    async with channel_of(live) as channel:
        # The parse error has no id to match: wait for it as the answer to id None.
        error = _Pending(asyncio.get_running_loop())
        channel._pending[None] = error
        line = b"{not json\n"
        channel._write(b"%x\r\n%b\r\n" % (len(line), line))
        async with asyncio.timeout(WAIT):
            refused = await error.answer
        after = await answer_of(channel, call(2, "echo", text="fine"))

    assert refused["error"]["code"] == -32700
    assert after["result"]["content"][0]["text"] == "fine"


async def test_each_request_is_authorized_and_each_call_audited(
    settings: Settings, live: LiveMcpd
) -> None:
    async with admin_client(live) as api:
        token = await add_person(api, "alice")
        await grant(api, [{"role": "run", "resource": "servers", "name": "fixture"}])
    async with channel_of(live, token) as channel:
        allowed = await answer_of(channel, call(1, "echo", text="secret-value"))
        async with admin_client(live) as api:
            await grant(api, [{"role": "view", "resource": "servers"}])
        refused = await answer_of(channel, call(2, "echo", text="again"))

    calls = [e for e in await audit_events(settings) if e["verb"] == "call"]

    assert allowed["result"]["content"][0]["text"] == "secret-value"
    assert refused["error"]["data"]["code"] == "permission_denied"
    assert [(e["user"], e["name"], e["details"]["tool"], e["outcome"]) for e in calls] == [
        ("alice", "fixture", "echo", "ok")
    ]
    assert "secret-value" not in str(calls)


async def test_ending_the_session_ends_its_channel(live: LiveMcpd) -> None:
    headers, _ = await open_session(live, live.token)
    channel = await Channel.open(relay_url(live, "fixture"), headers, connect_timeout=WAIT)
    async with httpx.AsyncClient(trust_env=False) as http:
        ended = await http.delete(relay_url(live, "fixture"), headers=headers)
    async with asyncio.timeout(WAIT):
        why = await channel.closed

    assert ended.status_code == 200
    assert why == "the server ended the channel"
    with pytest.raises(ChannelClosed):
        channel.request(call(1, "echo", text="late"))


async def test_no_channel_without_a_relay_session(live: LiveMcpd) -> None:
    headers = {**ACCEPT, "Authorization": f"Bearer {live.token}"}
    stale = {**headers, "Mcp-Session-Id": "0" * 32}
    with pytest.raises(ChannelRefused, match="HTTP 400"):
        await Channel.open(relay_url(live, "fixture"), headers, connect_timeout=WAIT)
    with pytest.raises(ChannelRefused, match="HTTP 404"):
        await Channel.open(relay_url(live, "fixture"), stale, connect_timeout=WAIT)
