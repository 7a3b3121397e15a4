"""`POST /api/v1/agents/{name}/chat` in process, on both engines, with the scripted faulty LLM
backend (what the Llm was asked, which member served, failures on demand) and a real MCP
server (mcp-server-time, run by the process runtime) behind the agent's project.

The real LLM (llama.cpp) drives the same endpoint end to end in tests/cli/test_chat.py.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from mcpctl.mcpd.settings import Settings
from tests.conftest import LiveMcpd, state_of
from tests.mcpd.instances.running import TIME_SERVER, fixture_args
from tests.mcpd.instances.test_http_process import web_spec
from tests.mcpd.llm.faulty_backend import (
    Drop,
    FakeCall,
    FaultyBackend,
    Ok,
    Served,
    Stall,
    refused_url,
    serve_backend,
)
from tests.mcpd.manifests import manifest, must_put
from tests.people import add_person, bearer

pytestmark = pytest.mark.anyio

JSON = dict[str, Any]
CHAT = "/api/v1/agents/helper/chat"
SYSTEM = "You are a helpful agent."
NOW = FakeCall("time__get_current_time", '{"timezone": "Asia/Tokyo"}', id="call-1")


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "chat_max_tool_rounds": 2,
            "instance_backoff_initial_seconds": 0.01,
            "instance_backoff_max_seconds": 0.05,
        }
    )


@pytest.fixture
def ledger() -> list[Served]:
    return []


@pytest.fixture
async def llm(ledger: list[Served]) -> AsyncIterator[FaultyBackend]:
    async with serve_backend(FaultyBackend("a", default=Ok("It is noon."), ledger=ledger)) as b:
        yield b


def llm_object(name: str, url: str, **spec: Any) -> JSON:
    return manifest("Llm", name, {"provider": "openai", "url": url, "model": f"m-{name}", **spec})


def agent(**spec: Any) -> JSON:
    return manifest("Agent", "helper", {"llm": "gpt", "systemPrompt": SYSTEM, **spec})


@pytest.fixture
async def helper(api: httpx.AsyncClient, llm: FaultyBackend) -> FaultyBackend:
    """Agent ``helper`` on Llm ``gpt`` (the backend), with project ``clock`` (the time server)."""
    await must_put(
        api,
        llm_object("gpt", llm.url),
        manifest("Server", "time", {"command": TIME_SERVER, "args": ["--local-timezone", "UTC"]}),
        manifest("Project", "clock", {"servers": ["time"]}),
        agent(project="clock", defaultParams={"temperature": 0.2, "max_tokens": 50}),
    )
    return llm


def events_of(response: httpx.Response) -> list[tuple[str, JSON]]:
    """The server-sent events of a streamed chat answer."""
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/event-stream")
    out = []
    for block in response.text.split("\n\n"):
        if not block.strip():
            continue
        name, data = block.split("\n", 1)
        out.append((name.removeprefix("event: "), json.loads(data.removeprefix("data: "))))
    return out


def sent_messages(served: Served) -> list[JSON]:
    """The messages the Llm was sent, as (role, content) plus the calls' ids."""
    return [
        {k: v for k, v in m.items() if k in ("role", "content", "tool_call_id", "tool_calls")}
        for m in served.body["messages"]
    ]


async def stored(api: httpx.AsyncClient, thread: str) -> list[JSON]:
    response = await api.get(f"/api/v1/threads/{thread}")
    assert response.status_code == 200, response.text
    return [
        {k: m[k] for k in ("turnIndex", "role", "content", "toolCalls", "toolCallId")}
        for m in response.json()["messages"]
    ]


async def audit(app: FastAPI, api: httpx.AsyncClient, kind: str) -> list[JSON]:
    await state_of(app).audit.flush()
    response = await api.get("/api/v1/auditevents", params={"kind": kind})
    return list(response.json()["items"])[::-1]


# -- a turn ----------------------------------------------------------------------------------


async def test_a_message_is_answered_in_a_new_thread_titled_from_it(
    app: FastAPI, api: httpx.AsyncClient, helper: FaultyBackend
) -> None:
    response = await api.post(CHAT, json={"message": "What time is it?", "stream": False})

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["answer"] == "It is noon."
    assert body["created"] is True
    assert body["llm"] == "gpt"
    assert body["finishReason"] == "stop"
    assert body["toolRounds"] == 0
    assert body["usage"]["completionTokens"] == 3
    thread = body["thread"]
    assert thread["title"] == "What time is it?"
    assert thread["agent"] == "helper"
    assert thread["owner"] == "admin"
    assert thread["messageCount"] == 2
    assert [(m["role"], m["content"]) for m in body["messages"]] == [
        ("user", "What time is it?"),
        ("assistant", "It is noon."),
    ]
    assert [(m["role"], m["content"]) for m in await stored(api, thread["id"])] == [
        ("user", "What time is it?"),
        ("assistant", "It is noon."),
    ]
    (asked,) = helper.requests
    assert sent_messages(asked) == [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": "What time is it?"},
    ]
    assert [t["function"]["name"] for t in asked.body["tools"]] == [
        "time__get_current_time",
        "time__convert_time",
    ]
    assert asked.body["model"] == "m-gpt"
    (turn,) = [e for e in await audit(app, api, "Agent") if e["verb"] == "chat"]
    assert (turn["user"], turn["name"], turn["outcome"]) == ("admin", "helper", "ok")
    assert turn["details"] == {"thread": thread["id"], "llm": "gpt", "toolRounds": 0}


async def test_params_merge_the_agents_defaults_under_the_calls_own(
    api: httpx.AsyncClient, helper: FaultyBackend
) -> None:
    response = await api.post(
        CHAT, json={"message": "Hi", "params": {"max_tokens": 10, "seed": 7}, "stream": False}
    )

    assert response.status_code == 200, response.text
    (asked,) = helper.requests
    assert (asked.body["temperature"], asked.body["max_tokens"], asked.body["seed"]) == (
        0.2,
        10,
        7,
    )


async def test_a_streamed_turn_sends_thread_deltas_and_done(
    api: httpx.AsyncClient, helper: FaultyBackend
) -> None:
    response = await api.post(CHAT, json={"message": "Hi"}, headers={"Accept": "text/event-stream"})

    events = events_of(response)
    names = [name for name, _ in events]
    assert names[0] == "thread"
    assert names[-1] == "done"
    assert set(names[1:-1]) == {"delta"}
    thread = events[0][1]
    assert thread["created"] is True
    assert response.headers["x-mcpctl-thread"] == thread["id"]
    assert "".join(d["text"] for n, d in events if n == "delta") == "It is noon."
    done = events[-1][1]
    assert done["answer"] == "It is noon."
    assert done["thread"] == thread["id"]
    assert [m["role"] for m in done["messages"]] == ["user", "assistant"]


async def test_the_next_message_in_a_thread_is_sent_with_its_history(
    api: httpx.AsyncClient, helper: FaultyBackend
) -> None:
    helper.then(Ok("First answer."), Ok("Second answer."))
    first = (await api.post(CHAT, json={"message": "One", "stream": False})).json()
    thread = first["thread"]["id"]

    second = await api.post(CHAT, json={"message": "Two", "thread": thread, "stream": False})

    assert second.status_code == 200, second.text
    assert second.json()["created"] is False
    assert second.json()["thread"]["messageCount"] == 4
    assert sent_messages(helper.requests[1]) == [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": "One"},
        {"role": "assistant", "content": "First answer."},
        {"role": "user", "content": "Two"},
    ]
    assert [m["turnIndex"] for m in await stored(api, thread)] == [0, 1, 2, 3]


async def test_a_personality_adds_its_prompts_to_the_system_block(
    api: httpx.AsyncClient, helper: FaultyBackend
) -> None:
    await must_put(
        api,
        manifest("Prompt", "terse", {"content": "Answer in one word."}),
        manifest(
            "Personality", "helper.short", {"agent": "helper", "prompts": [{"name": "terse"}]}
        ),
    )

    response = await api.post(CHAT, json={"message": "Hi", "personality": "short", "stream": False})

    assert response.status_code == 200, response.text
    assert response.json()["personality"] == "short"
    assert helper.requests[0].body["messages"][0] == {
        "role": "system",
        "content": f"{SYSTEM}\n\nAnswer in one word.",
    }


# -- tools -----------------------------------------------------------------------------------


async def test_a_tool_call_runs_the_real_tool_and_every_message_is_stored_in_order(
    app: FastAPI, api: httpx.AsyncClient, helper: FaultyBackend
) -> None:
    helper.then(Ok("", (NOW,)), Ok("It is late in Tokyo."))

    response = await api.post(CHAT, json={"message": "Time in Tokyo?", "stream": True})

    events = events_of(response)
    assert [n for n, _ in events if n != "delta"] == ["thread", "tool_call", "tool_result", "done"]
    call, result = events[1][1], events[2][1]
    assert call == {"id": "call-1", "name": NOW.name, "arguments": NOW.arguments}
    assert result["id"] == "call-1"
    assert result["isError"] is False
    assert json.loads(result["content"])["timezone"] == "Asia/Tokyo"
    assert events[-1][1]["toolRounds"] == 1
    # The tool's result went back to the Llm, after the call it answers.
    second = sent_messages(helper.requests[1])
    assert second[-2]["tool_calls"][0]["id"] == "call-1"
    assert second[-1] == {"role": "tool", "content": result["content"], "tool_call_id": "call-1"}
    thread = events[0][1]["id"]
    assert await stored(api, thread) == [
        {"turnIndex": 0, "role": "user", "content": "Time in Tokyo?", "toolCalls": None,
         "toolCallId": None},
        {"turnIndex": 1, "role": "assistant", "content": None, "toolCallId": None,
         "toolCalls": [{"id": "call-1", "name": NOW.name, "arguments": NOW.arguments}]},
        {"turnIndex": 2, "role": "tool", "content": result["content"], "toolCalls": None,
         "toolCallId": "call-1"},
        {"turnIndex": 3, "role": "assistant", "content": "It is late in Tokyo.",
         "toolCalls": None, "toolCallId": None},
    ]  # fmt: skip
    (audited,) = [e for e in await audit(app, api, "Server") if e["verb"] == "call"]
    assert (audited["name"], audited["outcome"]) == ("time", "ok")
    assert audited["details"]["tool"] == "get_current_time"


async def test_a_tool_of_a_server_speaking_http_is_called_in_a_session_of_mcpds_own(
    app: FastAPI, api: httpx.AsyncClient, llm: FaultyBackend
) -> None:
    await must_put(
        api,
        llm_object("gpt", llm.url),
        manifest("Server", "web", web_spec()),
        manifest("Project", "site", {"servers": ["web"], "toolPrefix": "never"}),
        agent(project="site"),
    )
    llm.then(Ok("", (FakeCall("echo", '{"text": "through chat"}', id="c1"),)), Ok("Echoed."))

    response = await api.post(CHAT, json={"message": "Echo it", "stream": True})

    (result,) = [d for n, d in events_of(response) if n == "tool_result"]
    assert (result["content"], result["isError"]) == ("through chat", False)
    offered = [t["function"]["name"] for t in llm.requests[0].body["tools"]]
    assert sorted(offered) == ["echo", "getenv", "pid"]  # toolPrefix: never
    (audited,) = [e for e in await audit(app, api, "Server") if e["verb"] == "call"]
    assert (audited["name"], audited["details"]["tool"]) == ("web", "echo")


async def test_a_server_that_dies_mid_call_is_an_error_result_and_the_turn_goes_on(
    app: FastAPI, api: httpx.AsyncClient, llm: FaultyBackend
) -> None:
    argv = fixture_args()
    await must_put(
        api,
        llm_object("gpt", llm.url),
        manifest("Server", "fixture", {"command": argv[0], "args": argv[1:]}),
        manifest("Server", "broken", {"command": "/nonexistent/mcp-server"}),
        manifest("Project", "faults", {"servers": ["broken", "fixture"]}),
        agent(project="faults"),
    )
    llm.then(Ok("", (FakeCall("fixture__crash", '{"code": 3}', id="c1"),)), Ok("It broke."))

    response = await api.post(CHAT, json={"message": "Crash it", "stream": False})

    assert response.status_code == 200, response.text
    body = response.json()
    offered = {t["function"]["name"] for t in llm.requests[0].body["tools"]}
    assert "fixture__crash" in offered
    assert not any(name.startswith("broken__") for name in offered)  # it cannot start
    result = body["messages"][2]
    assert result["role"] == "tool"
    assert result["content"].startswith("error: ")
    assert body["answer"] == "It broke."
    (audited,) = [e for e in await audit(app, api, "Server") if e["verb"] == "call"]
    assert (audited["name"], audited["outcome"]) == ("fixture", "error")


async def test_a_tool_choice_forces_a_call_on_the_first_request_only(
    api: httpx.AsyncClient, helper: FaultyBackend
) -> None:
    helper.then(Ok("", (NOW,)), Ok("Done."))

    response = await api.post(
        CHAT, json={"message": "Now?", "toolChoice": NOW.name, "stream": False}
    )

    assert response.status_code == 200, response.text
    first, second = helper.requests
    assert first.body["tool_choice"] == {"type": "function", "function": {"name": NOW.name}}
    assert "tool_choice" not in second.body


async def test_an_unknown_tool_and_bad_arguments_are_error_results_and_nothing_runs(
    app: FastAPI, api: httpx.AsyncClient, helper: FaultyBackend
) -> None:
    calls = (FakeCall("time__nope", "{}", id="c1"), FakeCall(NOW.name, "[1]", id="c2"))
    helper.then(Ok("", calls), Ok("Sorry."))

    response = await api.post(CHAT, json={"message": "Now?", "stream": True})

    results = [d for n, d in events_of(response) if n == "tool_result"]
    assert [r["isError"] for r in results] == [True, True]
    assert results[0]["content"].startswith("error: there is no tool 'time__nope'")
    assert results[1]["content"].startswith("error: not run: ")
    assert "not a JSON object" in results[1]["content"]
    assert [e for e in await audit(app, api, "Server") if e["verb"] == "call"] == []


async def test_the_tool_rounds_are_bounded_then_the_model_must_answer(
    api: httpx.AsyncClient, helper: FaultyBackend
) -> None:
    helper.default = Ok("", (NOW,))

    response = await api.post(CHAT, json={"message": "Loop", "stream": False})

    assert response.status_code == 200, response.text
    body = response.json()
    assert len(helper.requests) == 3  # MCPD_CHAT_MAX_TOOL_ROUNDS=2, then one to answer
    assert [r.body.get("tool_choice") for r in helper.requests] == [None, None, "none"]
    assert body["toolRounds"] == 2
    last = body["messages"][-1]
    assert last["role"] == "tool"
    assert last["content"] == "error: not run: the limit of 2 tool rounds per message was reached"
    roles = [m["role"] for m in await stored(api, body["thread"]["id"])]
    assert roles == ["user", "assistant", "tool", "assistant", "tool", "assistant", "tool"]


# -- failover and failures -------------------------------------------------------------------


async def test_a_member_that_is_down_is_skipped_and_a_sibling_answers(
    api: httpx.AsyncClient, helper: FaultyBackend
) -> None:
    with refused_url() as down:
        await must_put(
            api,
            llm_object("gpt", down, poolName="pool"),
            llm_object("spare", helper.url, poolName="pool"),
        )
        response = await api.post(CHAT, json={"message": "Hi", "stream": False})

    assert response.status_code == 200, response.text
    assert response.json()["llm"] == "spare"
    assert response.json()["answer"] == "It is noon."


async def test_a_stream_that_breaks_ends_with_an_error_and_the_partial_answer_is_not_stored(
    api: httpx.AsyncClient, helper: FaultyBackend
) -> None:
    helper.then(Drop(after=1, answer=Ok("Half of an answer.")), Ok("Whole."))

    broken = events_of(await api.post(CHAT, json={"message": "One", "stream": True}))
    thread = broken[0][1]["id"]
    again = await api.post(CHAT, json={"message": "Two", "thread": thread, "stream": False})

    assert [n for n, _ in broken] == ["thread", "delta", "error"]
    assert broken[1][1] == {"text": "Half"}
    error = broken[2][1]
    assert (error["code"], error["status"], error["thread"]) == ("unavailable", 503, thread)
    assert "broke off" in error["detail"]
    assert again.status_code == 200, again.text
    assert [(m["role"], m["content"]) for m in await stored(api, thread)] == [
        ("user", "One"),
        ("user", "Two"),
        ("assistant", "Whole."),
    ]


async def test_no_active_llm_is_an_error_event_or_a_503_naming_the_thread(
    api: httpx.AsyncClient, helper: FaultyBackend
) -> None:
    await must_put(api, llm_object("gpt", helper.url, status="inactive"))

    streamed = events_of(await api.post(CHAT, json={"message": "Hi", "stream": True}))
    whole = await api.post(CHAT, json={"message": "Hi", "stream": False})

    assert [n for n, _ in streamed] == ["thread", "error"]
    assert streamed[1][1]["detail"] == "No active Llm in pool 'gpt' (pinned: gpt)"
    assert whole.status_code == 503
    assert whole.headers["content-type"] == "application/problem+json"
    assert whole.json()["code"] == "unavailable"
    assert [(m["role"], m["content"]) for m in await stored(api, whole.json()["thread"])] == [
        ("user", "Hi")
    ]
    assert helper.requests == []


# -- refusals --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"message": ""}, 422, "message"),
        ({"message": " \n "}, 422, "message"),
        ({"message": "Hi", "params": {"temperature": "hot"}}, 422, "params.temperature"),
        ({"message": "Hi", "extra": 1}, 422, "extra"),
        ({"message": "Hi", "toolChoice": "time__nope"}, 422, "toolChoice"),
        ({"message": "Hi", "personality": "nope"}, 404, None),
        ({"message": "Hi", "thread": "nope"}, 404, "thread"),
    ],
)
async def test_bad_requests_are_refused_before_anything_is_stored(
    api: httpx.AsyncClient,
    helper: FaultyBackend,
    body: JSON,
    status: int,
    field: str | None,
) -> None:
    response = await api.post(CHAT, json=body)

    assert response.status_code == status, response.text
    problem = response.json()
    if status == 422 and field in ("message", "params.temperature", "extra"):
        assert field in [e["path"] for e in problem["errors"]]
    elif field is not None:
        assert problem["param"] == field
    assert (await api.get("/api/v1/threads")).json()["items"] == []
    assert helper.requests == []


async def test_an_unknown_agent_is_404(api: httpx.AsyncClient) -> None:
    response = await api.post("/api/v1/agents/nobody/chat", json={"message": "Hi"})

    assert response.status_code == 404
    assert response.json()["detail"] == "agent/nobody not found"


async def test_a_thread_of_another_agent_is_422(
    api: httpx.AsyncClient, helper: FaultyBackend
) -> None:
    await must_put(api, manifest("Agent", "other", {"llm": "gpt"}))
    other = (await api.post("/api/v1/agents/other/chat", json={"message": "Hi"})).json()

    response = await api.post(CHAT, json={"message": "Hi", "thread": other["thread"]["id"]})

    assert response.status_code == 422
    assert response.json()["param"] == "thread"
    assert "is a thread with agent 'other'" in response.json()["detail"]


def run_grant(name: str, *bindings: JSON) -> JSON:
    return manifest("RbacDefinition", name, {"subjects": ["user:bob"], "bindings": list(bindings)})


RUN_HELPER = {"role": "run", "resource": "agents", "name": "helper"}


async def test_without_run_on_the_agent_a_chat_is_403(
    app: FastAPI, api: httpx.AsyncClient, helper: FaultyBackend
) -> None:
    token = await add_person(api, "bob")
    await must_put(api, run_grant("view", {"role": "view", "resource": "agents"}))

    response = await api.post(CHAT, json={"message": "Hi"}, headers=bearer(token))

    assert response.status_code == 403
    assert response.json()["detail"] == "user 'bob' may not run agents/helper"
    assert helper.requests == []
    denied = [e for e in await audit(app, api, "Agent") if e["outcome"] == "denied"]
    assert [(e["user"], e["verb"], e["name"]) for e in denied] == [("bob", "run", "helper")]


async def test_a_tool_whose_server_the_caller_may_not_run_is_refused_in_its_result(
    app: FastAPI, api: httpx.AsyncClient, helper: FaultyBackend
) -> None:
    token = await add_person(api, "bob")
    await must_put(api, run_grant("chat", RUN_HELPER))
    helper.then(Ok("", (NOW,)), Ok("I may not."))

    response = await api.post(CHAT, json={"message": "Now?"}, headers=bearer(token) | {
        "Accept": "text/event-stream"})  # fmt: skip

    (result,) = [d for n, d in events_of(response) if n == "tool_result"]
    assert result["isError"] is True
    assert result["content"] == "error: not run: user 'bob' may not run servers/time"
    assert helper.requests[1].body["messages"][-1]["content"] == result["content"]
    server_events = await audit(app, api, "Server")
    assert [e["verb"] for e in server_events if e["verb"] == "call"] == []
    denied = [(e["user"], e["verb"], e["name"], e["outcome"]) for e in server_events]
    assert ("bob", "run", "time", "denied") in denied


async def test_another_users_thread_is_404_to_them_and_403_to_who_may_view_threads(
    api: httpx.AsyncClient, helper: FaultyBackend
) -> None:
    token = await add_person(api, "bob")
    await must_put(api, run_grant("chat", RUN_HELPER))
    bobs = await api.post(CHAT, json={"message": "Mine", "stream": False}, headers=bearer(token))
    admins = (await api.post(CHAT, json={"message": "Admin's", "stream": False})).json()
    thread = bobs.json()["thread"]["id"]

    by_bob = await api.post(
        CHAT, json={"message": "Hi", "thread": admins["thread"]["id"]}, headers=bearer(token)
    )
    by_admin = await api.post(CHAT, json={"message": "Hi", "thread": thread})

    assert by_bob.status_code == 404
    assert by_bob.json()["detail"] == f"thread {admins['thread']['id']!r} not found"
    assert by_admin.status_code == 403
    assert "only its owner may continue it" in by_admin.json()["detail"]
    assert len(await stored(api, thread)) == 2


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
async def test_a_client_that_goes_away_stops_the_turn_and_the_llms_answer(
    live_mcpd: LiveMcpd, llm: FaultyBackend
) -> None:
    async with httpx.AsyncClient(
        base_url=live_mcpd.url, headers=bearer(live_mcpd.token), trust_env=False, timeout=30
    ) as live:
        await must_put(live, llm_object("gpt", llm.url), agent())
        llm.then(Stall(seconds=None, after=1, answer=Ok("Never finished.")))
        async with live.stream("POST", CHAT, json={"message": "Hi", "stream": True}) as response:
            lines = response.aiter_lines()
            assert await anext(lines) == "event: thread"
            async for line in lines:
                if line.startswith("event: delta"):
                    break
        await llm.wait_departure(1)
        listed = (await live.get("/api/v1/threads")).json()["items"]
        stored = (await live.get(f"/api/v1/threads/{listed[0]['id']}")).json()["messages"]

    assert [(m["role"], m["content"]) for m in stored] == [("user", "Hi")]
