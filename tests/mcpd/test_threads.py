"""Chat threads and messages on both engines: the storage API the chat endpoint writes through
(``ThreadStore``), racing writers on one thread, the cascade from the agent, and the REST routes
with their access rules."""

from __future__ import annotations

import asyncio
from typing import Any

import anyio
import asyncpg
import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from mcpctl.errors import InvalidInput, NotFound
from mcpctl.mcpd.app import create_app
from mcpctl.mcpd.llm.messages import Message, ToolCall
from mcpctl.mcpd.services.threads import NewMessage, ThreadStore, new_thread_id
from mcpctl.mcpd.settings import Settings
from tests.conftest import Database, admin_token_of, state_of
from tests.mcpd.manifests import manifest, must_put
from tests.mcpd.running import raw_rows, running
from tests.people import add_person, bearer

pytestmark = pytest.mark.anyio

JSON = dict[str, Any]
LLM = manifest("Llm", "gpt", {"provider": "openai", "url": "http://127.0.0.1:9/v1", "model": "m"})


@pytest.fixture
async def store(app: FastAPI, api: httpx.AsyncClient) -> ThreadStore:
    await must_put(api, LLM, manifest("Agent", "helper", {"llm": "gpt"}))
    return state_of(app).threads.store


def user(text: str) -> NewMessage:
    return NewMessage("user", text)


# -- storage -------------------------------------------------------------------------------


async def test_a_conversation_with_tool_calls_is_stored_and_read_back_in_order(
    store: ThreadStore,
) -> None:
    thread = await store.create_thread("helper", "alice", "What time is it?")
    call = ToolCall("call-1", "time__get_current_time", '{"timezone": "UTC"}')
    sent = [
        Message.system("You help."),
        Message.user("What time is it?"),
        Message.assistant("", [call]),
        Message.tool("call-1", '{"time": "12:00"}'),
        Message.assistant("It is noon."),
    ]

    stored = await store.append(thread.id, [NewMessage.of(m) for m in sent])
    read = await store.messages(thread.id)

    assert [m.turn_index for m in stored] == [0, 1, 2, 3, 4]
    assert read == stored
    assert [m.to_message() for m in read] == sent
    assert read[2].content is None
    assert read[2].tool_calls == (call,)
    assert read[3].tool_call_id == "call-1"


async def test_appends_continue_the_turn_indexes_and_move_last_turn_at(
    store: ThreadStore,
) -> None:
    thread = await store.create_thread("helper", "alice", "t")

    await store.append(thread.id, [user("one"), user("two")])
    more = await store.append(thread.id, [user("three")])
    again = await store.get_thread(thread.id)

    assert [m.turn_index for m in more] == [2]
    assert again.message_count == 3
    assert again.last_turn_at >= thread.last_turn_at
    assert again.last_turn_at == more[0].created_at


async def test_two_writers_racing_on_one_thread_both_land_in_order_and_nothing_is_lost(
    store: ThreadStore,
) -> None:
    thread = await store.create_thread("helper", "alice", "race")

    async def writer(tag: str) -> None:
        for i in range(20):
            await store.append(thread.id, [user(f"{tag}-{i}")])

    await asyncio.gather(writer("a"), writer("b"))

    messages = await store.messages(thread.id)
    assert [m.turn_index for m in messages] == list(range(40))
    texts = [m.content or "" for m in messages]
    assert sorted(texts) == sorted([f"a-{i}" for i in range(20)] + [f"b-{i}" for i in range(20)])
    for tag in ("a", "b"):
        assert [t for t in texts if t.startswith(tag)] == [f"{tag}-{i}" for i in range(20)]


async def test_concurrent_batches_each_get_consecutive_turn_indexes(store: ThreadStore) -> None:
    thread = await store.create_thread("helper", "alice", "batches")

    await asyncio.gather(
        *(store.append(thread.id, [user(f"{b}-{i}") for i in range(3)]) for b in range(10))
    )

    messages = await store.messages(thread.id)
    assert [m.turn_index for m in messages] == list(range(30))
    for start in range(0, 30, 3):
        batch = {(m.content or "").split("-")[0] for m in messages[start : start + 3]}
        assert len(batch) == 1, messages[start : start + 3]


async def lock_waits(conn: asyncpg.Connection) -> int:
    """How many other sessions of this database wait for a lock."""
    waiting = await conn.fetchval(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
    )
    return int(waiting)


@pytest.mark.parametrize(
    "database", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
async def test_an_append_that_collides_on_a_turn_index_goes_again_after_the_winner(
    store: ThreadStore, database: Database
) -> None:
    thread = await store.create_thread("helper", "alice", "collide")
    await store.append(thread.id, [user("first")])
    # Another writer takes turn 1 without touching the thread row, and holds it uncommitted:
    # the append reads turn 1 as free, waits on the unique index, loses, and goes again.
    conn = await asyncpg.connect(database.url, server_settings={"search_path": database.schema})
    try:
        tx = conn.transaction()
        await tx.start()
        await conn.execute(
            "INSERT INTO chat_messages (thread_id, turn_index, role, content, created_at) "
            "VALUES ($1, 1, 'user', 'winner', now())",
            thread.id,
        )
        appending = asyncio.create_task(store.append(thread.id, [user("loser")]))
        with anyio.fail_after(10):
            # PostgreSQL has no event for it: poll (bounded) until the append waits on the index.
            while not await lock_waits(conn):  # noqa: ASYNC110
                await asyncio.sleep(0.01)
        assert not appending.done()
        await tx.commit()
        with anyio.fail_after(10):
            (stored,) = await appending
    finally:
        await conn.close()

    assert stored.turn_index == 2
    assert [m.content for m in await store.messages(thread.id)] == ["first", "winner", "loser"]


@pytest.mark.parametrize(
    ("message", "path"),
    [
        (NewMessage("user", "x", tool_calls=(ToolCall("c", "f", "{}"),)), "messages[1].toolCalls"),
        (NewMessage("tool", "x"), "messages[1].toolCallId"),
        (NewMessage("user", "x", tool_call_id="c"), "messages[1].toolCallId"),
        (NewMessage("robot", "x"), "messages[1].role"),  # type: ignore[arg-type]
    ],
)
async def test_a_malformed_message_is_refused_naming_it_and_nothing_is_stored(
    store: ThreadStore, message: NewMessage, path: str
) -> None:
    thread = await store.create_thread("helper", "alice", "t")

    with pytest.raises(InvalidInput) as refused:
        await store.append(thread.id, [user("fine"), message])

    assert refused.value.details["errors"][0]["path"] == path
    assert await store.messages(thread.id) == []


async def test_unknown_agents_and_threads_are_not_found(store: ThreadStore) -> None:
    with pytest.raises(NotFound, match="agent/nobody not found"):
        await store.create_thread("nobody", "alice", "t")
    with pytest.raises(NotFound):
        await store.append("nothread", [user("x")])
    with pytest.raises(NotFound):
        await store.get_thread("nothread")


async def test_thread_ids_sort_by_creation_and_titles_are_cut(store: ThreadStore) -> None:
    first = await store.create_thread("helper", "alice", "x" * 300)
    second = await store.create_thread("helper", "alice", "y")

    assert len(first.id) == 26
    assert first.id < second.id
    assert first.title == "x" * 200
    assert [t.id for t in await store.list_threads("helper")] == [second.id, first.id]


def test_a_thread_id_starts_with_its_time() -> None:
    from datetime import UTC, datetime, timedelta

    now = datetime(2026, 1, 1, tzinfo=UTC)

    assert new_thread_id(now)[:10] < new_thread_id(now + timedelta(milliseconds=1))[:10]


# -- cascade and persistence ---------------------------------------------------------------


async def test_deleting_an_agent_deletes_its_threads_and_their_messages(
    store: ThreadStore, api: httpx.AsyncClient, settings: Settings
) -> None:
    await must_put(api, manifest("Agent", "other", {"llm": "gpt"}))
    doomed = await store.create_thread("helper", "alice", "t")
    kept = await store.create_thread("other", "alice", "t")
    await store.append(doomed.id, [user("a"), user("b")])
    await store.append(kept.id, [user("c")])

    assert (await api.delete("/api/v1/agents/helper")).status_code == 200

    assert [t.id for t in await store.list_threads()] == [kept.id]
    rows = await raw_rows(settings, "SELECT thread_id FROM chat_messages")
    assert rows == [(kept.id,)]


async def test_threads_are_read_back_after_a_restart(settings: Settings) -> None:
    application = create_app(settings)
    async with LifespanManager(application):
        api = httpx.AsyncClient(transport=httpx.ASGITransport(app=application), base_url="http://t")
        async with api:
            headers = {"Authorization": f"Bearer {admin_token_of(settings)}"}
            api.headers.update(headers)
            await must_put(api, LLM, manifest("Agent", "helper", {"llm": "gpt"}))
        store = state_of(application).threads.store
        thread = await store.create_thread("helper", "admin", "kept")
        await store.append(thread.id, [user("remember me")])

    async with running(settings) as api:
        response = await api.get(f"/api/v1/threads/{thread.id}")

    assert response.status_code == 200
    assert [m["content"] for m in response.json()["messages"]] == ["remember me"]


# -- REST and access -----------------------------------------------------------------------


async def test_get_threads_and_one_thread_with_its_messages(
    store: ThreadStore, api: httpx.AsyncClient
) -> None:
    await must_put(api, manifest("Agent", "other", {"llm": "gpt"}))
    thread = await store.create_thread("helper", "admin", "Time")
    await store.create_thread("other", "admin", "Elsewhere")
    call = ToolCall("c1", "time__now", "{}")
    await store.append(
        thread.id,
        [
            user("time?"),
            NewMessage("assistant", None, (call,)),
            NewMessage("tool", "12:00", (), "c1"),
        ],
    )

    listed = await api.get("/api/v1/threads", params={"agent": "helper"})
    one = await api.get(f"/api/v1/threads/{thread.id}")

    assert listed.status_code == 200
    (item,) = listed.json()["items"]
    assert (item["id"], item["agent"], item["owner"], item["title"], item["messageCount"]) == (
        thread.id,
        "helper",
        "admin",
        "Time",
        3,
    )
    body = one.json()
    assert body["kind"] == "ChatThread"
    assert [(m["turnIndex"], m["role"], m["content"]) for m in body["messages"]] == [
        (0, "user", "time?"),
        (1, "assistant", None),
        (2, "tool", "12:00"),
    ]
    assert body["messages"][1]["toolCalls"] == [
        {"id": "c1", "name": "time__now", "arguments": "{}"}
    ]
    assert body["messages"][2]["toolCallId"] == "c1"


async def test_owners_see_and_delete_their_own_threads_only(
    app: FastAPI, store: ThreadStore, api: httpx.AsyncClient
) -> None:
    alice = await add_person(api, "alice")
    bob = await add_person(api, "bob")
    mine = await store.create_thread("helper", "alice", "mine")
    theirs = await store.create_thread("helper", "bob", "theirs")

    listed = await api.get("/api/v1/threads", headers=bearer(alice))
    read_own = await api.get(f"/api/v1/threads/{mine.id}", headers=bearer(alice))
    read_other = await api.get(f"/api/v1/threads/{theirs.id}", headers=bearer(alice))
    probe = await api.get("/api/v1/threads/nosuchthread", headers=bearer(alice))
    others = await api.get("/api/v1/threads", params={"owner": "bob"}, headers=bearer(alice))
    delete_other = await api.delete(f"/api/v1/threads/{theirs.id}", headers=bearer(alice))
    delete_own = await api.delete(f"/api/v1/threads/{mine.id}", headers=bearer(alice))
    admin_sees = await api.get("/api/v1/threads")

    assert [t["id"] for t in listed.json()["items"]] == [mine.id]
    assert read_own.status_code == 200
    assert (read_other.status_code, read_other.json()["code"]) == (403, "permission_denied")
    assert probe.status_code == 403
    assert others.status_code == 403
    assert delete_other.status_code == 403
    assert delete_own.status_code == 200
    assert [t["id"] for t in admin_sees.json()["items"]] == [theirs.id]
    assert (await api.get(f"/api/v1/threads/{mine.id}")).status_code == 404
    assert (await api.get("/api/v1/threads", headers=bearer(bob))).json()["items"][0]["id"] == (
        theirs.id
    )
    await state_of(app).audit.flush()
    audit = (await api.get("/api/v1/auditevents", params={"kind": "ChatThread"})).json()
    assert ("delete", mine.id, "ok") in [
        (e["verb"], e["name"], e["outcome"]) for e in audit["items"]
    ]


async def test_view_on_threads_lets_a_user_read_everyones(
    store: ThreadStore, api: httpx.AsyncClient
) -> None:
    carol = await add_person(api, "carol")
    theirs = await store.create_thread("helper", "bob", "theirs")
    await must_put(
        api,
        manifest(
            "RbacDefinition",
            "thread-readers",
            {"subjects": ["user:carol"], "bindings": [{"role": "view", "resource": "threads"}]},
        ),
    )

    listed = await api.get("/api/v1/threads", headers=bearer(carol))
    read = await api.get(f"/api/v1/threads/{theirs.id}", headers=bearer(carol))
    deleted = await api.delete(f"/api/v1/threads/{theirs.id}", headers=bearer(carol))

    assert [t["id"] for t in listed.json()["items"]] == [theirs.id]
    assert read.status_code == 200
    assert deleted.status_code == 403


async def test_an_unknown_thread_is_404_for_the_admin(api: httpx.AsyncClient) -> None:
    for response in (
        await api.get("/api/v1/threads/nothread"),
        await api.delete("/api/v1/threads/nothread"),
    ):
        assert (response.status_code, response.json()["code"]) == (404, "not_found")
