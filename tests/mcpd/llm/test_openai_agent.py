"""``model: agent:NAME`` on the OpenAI-compatible endpoint, with the official ``openai`` SDK as
the client of a live mcpd whose agent talks to the scripted faulty backend: the agent's system
block and params reach the backend, its project's tools are not added, and nothing is stored
unless ``X-Mcpctl-Thread`` asks for it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import openai
import pytest
from openai import AsyncOpenAI

from tests.conftest import LiveMcpd
from tests.mcpd.instances.running import TIME_SERVER
from tests.mcpd.llm.faulty_backend import Drop, FakeCall, FaultyBackend, Ok, serve_backend
from tests.mcpd.manifests import manifest, must_put
from tests.people import add_person_live, bearer

pytestmark = [pytest.mark.anyio, pytest.mark.parametrize("database", ["sqlite"], indirect=True)]

SYSTEM = "You are a helpful agent."
HI: Any = [{"role": "user", "content": "Hi"}]
THREAD = "X-Mcpctl-Thread"


@pytest.fixture
async def backend() -> AsyncIterator[FaultyBackend]:
    async with serve_backend(FaultyBackend("a", default=Ok("Hello."))) as served:
        yield served


@pytest.fixture
async def admin(live_mcpd: LiveMcpd) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=live_mcpd.url, headers=bearer(live_mcpd.token), trust_env=False
    ) as client:
        yield client


@pytest.fixture
async def client(live_mcpd: LiveMcpd) -> AsyncIterator[AsyncOpenAI]:
    async with sdk(live_mcpd) as c:
        yield c


def sdk(live: LiveMcpd, token: str | None = None) -> AsyncOpenAI:
    return AsyncOpenAI(
        base_url=f"{live.url}/v1", api_key=token or live.token, max_retries=0, timeout=30
    )


@pytest.fixture
async def helper(admin: httpx.AsyncClient, backend: FaultyBackend) -> FaultyBackend:
    await must_put(
        admin,
        manifest("Llm", "gpt", {"provider": "openai", "url": backend.url, "model": "m"}),
        manifest("Server", "time", {"command": TIME_SERVER}),
        manifest("Project", "clock", {"servers": ["time"]}),
        manifest("Prompt", "terse", {"content": "Answer in one word."}),
        manifest(
            "Agent",
            "helper",
            {
                "llm": "gpt",
                "project": "clock",
                "systemPrompt": SYSTEM,
                "defaultParams": {"temperature": 0.3, "max_tokens": 40},
            },
        ),
        manifest(
            "Personality", "helper.short", {"agent": "helper", "prompts": [{"name": "terse"}]}
        ),
    )
    return backend


async def threads(admin: httpx.AsyncClient) -> list[dict[str, Any]]:
    return list((await admin.get("/api/v1/threads")).json()["items"])


async def messages(admin: httpx.AsyncClient, thread: str) -> list[tuple[str, str | None]]:
    body = (await admin.get(f"/api/v1/threads/{thread}")).json()
    return [(m["role"], m["content"]) for m in body["messages"]]


async def test_the_agents_system_block_and_params_reach_its_llm_and_nothing_is_stored(
    admin: httpx.AsyncClient, client: AsyncOpenAI, helper: FaultyBackend
) -> None:
    answer = await client.chat.completions.with_raw_response.create(
        model="agent:helper",
        messages=[{"role": "system", "content": "Be kind."}, *HI],
        max_tokens=5,
    )

    completion = answer.parse()
    assert completion.model == "agent:helper"
    assert completion.choices[0].message.content == "Hello."
    assert THREAD.lower() not in answer.headers
    (asked,) = helper.requests
    assert asked.body["messages"] == [
        {"role": "system", "content": SYSTEM},
        {"role": "system", "content": "Be kind."},
        {"role": "user", "content": "Hi"},
    ]
    assert (asked.body["temperature"], asked.body["max_tokens"]) == (0.3, 5)
    assert "tools" not in asked.body  # the project's tools are not offered here
    assert await threads(admin) == []


async def test_the_personality_header_chooses_the_personality(
    client: AsyncOpenAI, helper: FaultyBackend
) -> None:
    await client.chat.completions.create(
        model="agent:helper", messages=HI, extra_headers={"X-Mcpctl-Personality": "short"}
    )

    assert helper.requests[0].body["messages"][0] == {
        "role": "system",
        "content": f"{SYSTEM}\n\nAnswer in one word.",
    }


async def test_a_thread_header_stores_the_exchange_and_a_later_request_goes_on_in_it(
    admin: httpx.AsyncClient, client: AsyncOpenAI, helper: FaultyBackend
) -> None:
    helper.then(Ok("First."), Ok("Second."))
    first = await client.chat.completions.with_raw_response.create(
        model="agent:helper", messages=HI, extra_headers={THREAD: "new"}
    )
    thread = first.headers[THREAD]

    conversation: Any = [*HI, {"role": "assistant", "content": "First."}]
    conversation.append({"role": "user", "content": "More"})
    stream = await client.chat.completions.with_raw_response.create(
        model="agent:helper", messages=conversation, stream=True, extra_headers={THREAD: thread}
    )
    chunks = [c async for c in stream.parse()]

    assert stream.headers[THREAD] == thread
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Second."
    (listed,) = await threads(admin)
    assert (listed["id"], listed["title"], listed["agent"]) == (thread, "Hi", "helper")
    assert await messages(admin, thread) == [
        ("user", "Hi"),
        ("assistant", "First."),
        ("user", "More"),
        ("assistant", "Second."),
    ]


async def test_a_tool_call_answer_and_its_results_are_stored_as_the_client_sends_them(
    admin: httpx.AsyncClient, client: AsyncOpenAI, helper: FaultyBackend
) -> None:
    helper.then(Ok("", (FakeCall("lookup", '{"q": "x"}', id="c1"),)), Ok("Found."))
    tools: Any = [{"type": "function", "function": {"name": "lookup", "parameters": {}}}]
    first = await client.chat.completions.with_raw_response.create(
        model="agent:helper", messages=HI, tools=tools, extra_headers={THREAD: "new"}
    )
    thread = first.headers[THREAD]
    call = first.parse().choices[0].message
    conversation: Any = [*HI, call.model_dump(exclude_none=True)]
    conversation.append({"role": "tool", "tool_call_id": "c1", "content": "x is 42"})

    await client.chat.completions.create(
        model="agent:helper", messages=conversation, tools=tools, extra_headers={THREAD: thread}
    )

    assert helper.requests[0].body["tools"][0]["function"]["name"] == "lookup"
    assert await messages(admin, thread) == [
        ("user", "Hi"),
        ("assistant", None),
        ("tool", "x is 42"),
        ("assistant", "Found."),
    ]


async def test_a_broken_stream_is_not_stored(
    admin: httpx.AsyncClient, client: AsyncOpenAI, helper: FaultyBackend
) -> None:
    helper.then(Drop(after=1))
    stream = await client.chat.completions.with_raw_response.create(
        model="agent:helper", messages=HI, stream=True, extra_headers={THREAD: "new"}
    )
    thread = stream.headers[THREAD]

    with pytest.raises(openai.APIError):
        async for _ in stream.parse():
            pass

    assert await messages(admin, thread) == [("user", "Hi")]


async def test_an_unknown_agent_is_404_and_a_user_without_run_on_it_403(
    live_mcpd: LiveMcpd, client: AsyncOpenAI, helper: FaultyBackend
) -> None:
    with pytest.raises(openai.NotFoundError) as unknown:
        await client.chat.completions.create(model="agent:nobody", messages=HI)
    async with sdk(live_mcpd, add_person_live(live_mcpd, "bob")) as bob:
        with pytest.raises(openai.PermissionDeniedError) as refused:
            await bob.chat.completions.create(model="agent:helper", messages=HI)

    assert unknown.value.code == "model_not_found"
    assert unknown.value.param == "model"
    assert "no agent is called 'nobody'" in unknown.value.message
    assert "may not run agents/helper" in refused.value.message
    assert helper.requests == []


async def test_another_users_thread_and_a_thread_with_no_user_message_are_refused(
    live_mcpd: LiveMcpd, admin: httpx.AsyncClient, client: AsyncOpenAI, helper: FaultyBackend
) -> None:
    token = add_person_live(live_mcpd, "bob")
    grant = {"role": "run", "resource": "agents", "name": "helper"}
    await must_put(
        admin, manifest("RbacDefinition", "bob", {"subjects": ["user:bob"], "bindings": [grant]})
    )
    mine = await client.chat.completions.with_raw_response.create(
        model="agent:helper", messages=HI, extra_headers={THREAD: "new"}
    )
    async with sdk(live_mcpd, token) as bob:
        with pytest.raises(openai.NotFoundError) as borrowed:
            await bob.chat.completions.create(
                model="agent:helper", messages=HI, extra_headers={THREAD: mine.headers[THREAD]}
            )
    with pytest.raises(openai.BadRequestError) as untitled:
        await client.chat.completions.create(
            model="agent:helper",
            messages=[{"role": "system", "content": "x"}],
            extra_headers={THREAD: "new"},
        )

    assert borrowed.value.param == THREAD
    assert untitled.value.param == "messages"
    assert len(helper.requests) == 1


async def test_a_request_that_fails_before_the_answer_stores_nothing(
    admin: httpx.AsyncClient, client: AsyncOpenAI, helper: FaultyBackend
) -> None:
    await must_put(
        admin,
        manifest(
            "Llm",
            "gpt",
            {"provider": "openai", "url": helper.url, "model": "m", "status": "inactive"},
        ),
    )

    with pytest.raises(openai.InternalServerError) as whole:
        await client.chat.completions.create(
            model="agent:helper", messages=HI, extra_headers={THREAD: "new"}
        )
    with pytest.raises(openai.InternalServerError):
        await client.chat.completions.create(
            model="agent:helper", messages=HI, stream=True, extra_headers={THREAD: "new"}
        )

    assert whole.value.message.endswith("No active Llm in pool 'gpt' (pinned: gpt)")
    assert THREAD.lower() not in whole.value.response.headers
    assert await threads(admin) == []


async def test_models_lists_the_agents_the_caller_may_run(
    live_mcpd: LiveMcpd, client: AsyncOpenAI, helper: FaultyBackend
) -> None:
    listed = [m.id for m in (await client.models.list()).data]
    async with sdk(live_mcpd, add_person_live(live_mcpd, "bob")) as bob:
        unlisted = [m.id async for m in bob.models.list()]

    assert "agent:helper" in listed
    assert "gpt" in listed
    assert unlisted == []
