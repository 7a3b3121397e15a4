"""Relay sessions in memory (unit tests, no server): expiry, the cap, ownership and the
notification fan-out."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from mcpctl.domain.caller import Caller
from mcpctl.errors import Unavailable
from mcpctl.jsonrpc import protocol
from mcpctl.mcpd.relay.http import AnswerWatch
from mcpctl.mcpd.relay.sessions import SessionStore

pytestmark = pytest.mark.anyio

ALICE = Caller(user="alice")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_idle_sessions_expire_unless_busy() -> None:
    clock = Clock()
    store = SessionStore(idle_seconds=60, clock=clock)
    idle = store.create("time", ALICE, "d", "2025-11-25")
    listening = store.create("time", ALICE, "d", "2025-11-25")
    listening.listen()
    clock.now += 61

    assert store.sweep() == 1
    assert store.get(idle.id) is None
    assert store.get(listening.id) is listening


async def test_the_session_cap_refuses_new_sessions_with_unavailable() -> None:
    store = SessionStore(max_sessions=2)
    store.create("time", ALICE, "d", "2025-11-25")
    store.create("time", ALICE, "d", "2025-11-25")

    with pytest.raises(Unavailable) as caught:
        store.create("time", ALICE, "d", "2025-11-25")
    assert caught.value.retry_after == 60


async def test_a_session_is_owned_by_its_user_and_impersonator() -> None:
    store = SessionStore()
    session = store.create("time", ALICE, "d", "2025-11-25")

    assert session.owned_by(Caller(user="alice", request_id="r2"))
    assert not session.owned_by(Caller(user="bob"))
    assert not session.owned_by(Caller(user="alice", impersonated_by="admin"))


async def test_ending_a_session_cancels_its_calls_closes_its_stream_and_releases_uris() -> None:
    store = SessionStore()
    released: list[set[str]] = []
    store.on_release = lambda connection, uris: released.append(uris)
    keeper = store.create("time", ALICE, "d", "2025-11-25")
    leaver = store.create("time", ALICE, "d", "2025-11-25")
    keeper.resources.add("file:///shared")
    leaver.resources.update({"file:///shared", "file:///own"})
    stream = leaver.listen()
    call: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    leaver.requests[1] = call

    store.end(leaver)

    assert call.cancelled()
    assert stream.get_nowait() is None
    assert released == [{"file:///own"}]
    assert store.get(leaver.id) is None


async def test_notifications_fan_out_and_resource_updates_go_to_subscribers_only() -> None:
    store = SessionStore()
    one = store.create("time", ALICE, "d", "2025-11-25")
    two = store.create("time", ALICE, "d", "2025-11-25")
    other = store.create("git", ALICE, "d", "2025-11-25")
    queues = [one.listen(), two.listen(), other.listen()]
    one.resources.add("file:///a")
    hub = store.hub("time")

    hub.publish({"jsonrpc": "2.0", "method": "notifications/tools/list_changed"})
    hub.publish(
        {
            "jsonrpc": "2.0",
            "method": "notifications/resources/updated",
            "params": {"uri": "file:///a"},
        }
    )

    got = [[m["method"] for m in drain(q)] for q in queues]
    assert got == [
        ["notifications/tools/list_changed", "notifications/resources/updated"],
        ["notifications/tools/list_changed"],
        [],
    ]


def drain(queue: asyncio.Queue[Any]) -> list[Any]:
    return [queue.get_nowait() for _ in range(queue.qsize())]


@pytest.mark.parametrize(
    ("asked", "upstream", "answered"),
    [
        ("2025-06-18", "2025-11-25", "2025-06-18"),
        ("2025-11-25", "2025-06-18", "2025-06-18"),
        ("2026-07-28", "2025-11-25", "2025-11-25"),
        (None, "2025-11-25", "2025-11-25"),
    ],
)
def test_negotiation_never_answers_a_version_the_server_does_not_speak(
    asked: object, upstream: str, answered: str
) -> None:
    assert protocol.negotiate(asked, upstream) == answered


def test_the_answer_of_a_forwarded_call_is_found_in_an_sse_stream_split_anywhere() -> None:
    watch = AnswerWatch(7, "text/event-stream")
    stream = (
        b'event: message\ndata: {"jsonrpc":"2.0","method":"notifications/progress"}\n\n'
        b'event: message\ndata: {"jsonrpc":"2.0","id":7,"result":{"isError":true}}\n\n'
    )
    for i in range(0, len(stream), 5):
        watch.feed(stream[i : i + 5])

    assert watch.finish().code == "tool_error"
