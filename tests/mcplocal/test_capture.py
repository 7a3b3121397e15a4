"""Capture: every JSON-RPC message per session, bounded, with timings, served locally."""

from __future__ import annotations

import httpx
import pytest

from mcpctl.mcplocal.capture import CaptureStore
from tests.conftest import LiveMcpd
from tests.mcplocal.conftest import Mcplocal, apply_project, connect

pytestmark = pytest.mark.anyio


async def test_the_messages_of_a_session_are_served_in_order_with_response_times(
    live_mcpd: LiveMcpd, mcplocal: Mcplocal, time_server: str
) -> None:
    apply_project(live_mcpd, "work", ["time"])
    async with connect(mcplocal.url("work")) as (client, _):
        await client.list_tools()
        await client.call_tool("time__get_current_time", {"timezone": "UTC"})

    async with httpx.AsyncClient(base_url=mcplocal.base) as http:
        listed = (await http.get("/sessions")).json()["items"]
        assert len(listed) == 1
        session = listed[0]
        assert session["project"] == "work"
        assert session["closed"]
        page = (await http.get(f"/sessions/{session['id']}/messages")).json()

        items = page["items"]
        flow = [(m["direction"], m["message"].get("method", "response")) for m in items]
        assert flow == [
            ("in", "initialize"),
            ("out", "response"),
            ("in", "notifications/initialized"),
            ("in", "tools/list"),
            ("out", "response"),
            ("in", "tools/call"),
            ("out", "response"),
        ]
        assert [m["seq"] for m in items] == list(range(1, 8))
        responses = [m for m in items if m["direction"] == "out"]
        assert all(m["ms"] is not None and m["ms"] >= 0 for m in responses)
        call = items[-1]["message"]["result"]
        assert "UTC" in call["content"][0]["text"]

        later = (await http.get(f"/sessions/{session['id']}/messages?since=5")).json()
        assert [m["seq"] for m in later["items"]] == [6, 7]

        missing = await http.get("/sessions/nope/messages")
        assert missing.status_code == 404
        assert missing.json()["code"] == "not_found"
        bad = await http.get(f"/sessions/{session['id']}/messages?since=soon")
        assert bad.status_code == 422
        assert bad.json()["code"] == "invalid_input"


async def test_a_session_keeps_its_latest_messages_and_counts_the_dropped() -> None:
    store = CaptureStore(per_session=3, max_sessions=2, clock=lambda: 100.0)
    for i in range(5):
        store.record("s1", "work", "in", {"jsonrpc": "2.0", "method": f"m{i}"}, 100.0)
    kept = store.messages("s1")
    assert kept is not None
    assert [m["message"]["method"] for m in kept] == ["m2", "m3", "m4"]
    assert store.sessions()[0]["dropped"] == 2


async def test_the_oldest_session_is_dropped_past_the_limit_and_batches_are_split() -> None:
    store = CaptureStore(per_session=10, max_sessions=2)
    batch = [{"jsonrpc": "2.0", "id": 1, "method": "a"}, {"jsonrpc": "2.0", "id": 2, "method": "b"}]
    store.record("s1", "p", "in", batch, 1.0)
    store.record("s2", "p", "in", {"jsonrpc": "2.0", "id": 1, "method": "a"}, 1.0)
    store.record("s2", "p", "out", {"jsonrpc": "2.0", "id": 1, "result": {}}, 1.25)
    store.record("s3", "p", "in", {"jsonrpc": "2.0", "method": "x"}, 2.0)
    assert store.messages("s1") is None
    assert [s["id"] for s in store.sessions()] == ["s3", "s2"]
    s2 = store.messages("s2")
    assert s2 is not None
    assert s2[1]["ms"] == 250.0
