"""mcpd's OpenAI-compatible endpoint with the official ``openai`` SDK as its client: a live mcpd
(uvicorn on loopback, SQLite) whose Llms point at the scripted faulty backend (what was asked,
which member served, every failure on demand) and at the real llama.cpp server.

The SDK is built with ``max_retries=0`` so that each test sees exactly one answer; the
``x-should-retry`` header, which the SDK obeys when it retries, is asserted where it matters.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import openai
import pytest
from openai import AsyncOpenAI, AsyncStream
from openai.types.chat import ChatCompletionChunk

from tests.conftest import LiveMcpd
from tests.llm_server import LlmServer
from tests.mcpd.llm.faulty_backend import (
    ErrorEvent,
    Fail,
    FakeCall,
    FaultyBackend,
    Ok,
    Served,
    rate_limited,
    serve_backend,
)
from tests.mcpd.manifests import manifest, must_put
from tests.people import add_person_live, bearer

pytestmark = [pytest.mark.anyio, pytest.mark.parametrize("database", ["sqlite"], indirect=True)]

HI = [{"role": "user", "content": "Hi"}]
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}


@pytest.fixture
def ledger() -> list[Served]:
    return []


@pytest.fixture
async def a(ledger: list[Served]) -> AsyncIterator[FaultyBackend]:
    async with serve_backend(FaultyBackend("a", default=Ok("from a"), ledger=ledger)) as served:
        yield served


@pytest.fixture
async def b(ledger: list[Served]) -> AsyncIterator[FaultyBackend]:
    async with serve_backend(FaultyBackend("b", default=Ok("from b"), ledger=ledger)) as served:
        yield served


@pytest.fixture
async def admin(live_mcpd: LiveMcpd) -> AsyncIterator[httpx.AsyncClient]:
    """mcpd's REST API as the bootstrap admin."""
    async with httpx.AsyncClient(
        base_url=live_mcpd.url, headers=bearer(live_mcpd.token), trust_env=False
    ) as client:
        yield client


def sdk(live: LiveMcpd, token: str | None = None) -> AsyncOpenAI:
    return AsyncOpenAI(
        base_url=f"{live.url}/v1", api_key=token or live.token, max_retries=0, timeout=30
    )


@pytest.fixture
async def client(live_mcpd: LiveMcpd) -> AsyncIterator[AsyncOpenAI]:
    async with sdk(live_mcpd) as c:
        yield c


def llm(name: str, url: str, **spec: Any) -> dict[str, Any]:
    return manifest(
        "Llm", name, {"provider": "openai", "url": url, "model": f"model-{name}", **spec}
    )


def served(ledger: list[Served]) -> list[str]:
    return [s.backend for s in ledger]


# -- /v1/models ------------------------------------------------------------------------------


async def test_models_lists_every_llm_name_and_pool_key_for_the_admin(
    admin: httpx.AsyncClient, client: AsyncOpenAI, a: FaultyBackend, b: FaultyBackend
) -> None:
    await must_put(
        admin,
        llm("a", a.url, poolName="fast"),
        llm("b", b.url, poolName="fast"),
        llm("solo", a.url),
    )

    page = await client.models.list()

    assert [m.id for m in page.data] == ["a", "b", "solo", "fast"]
    assert {m.object for m in page.data} == {"model"}
    assert [m.owned_by for m in page.data] == ["openai", "openai", "openai", "mcpctl-pool"]
    assert all(m.created > 1_700_000_000 for m in page.data)


async def test_models_lists_only_what_a_user_may_run(
    admin: httpx.AsyncClient, live_mcpd: LiveMcpd, a: FaultyBackend, b: FaultyBackend
) -> None:
    await must_put(
        admin,
        llm("a", a.url, poolName="fast"),
        llm("b", b.url, poolName="fast"),
        llm("other", a.url),
    )
    token = add_person_live(live_mcpd, "bob")
    async with sdk(live_mcpd, token) as bob:
        before = [m.id for m in (await bob.models.list()).data]
        await must_put(admin, run_grant("bob", "b"))
        after = [m.id for m in (await bob.models.list()).data]

    assert before == []
    assert after == ["b", "fast"]  # run on a member is run on its pool


def run_grant(user: str, name: str) -> dict[str, Any]:
    binding = {"role": "run", "resource": "llms", "name": name}
    return manifest(
        "RbacDefinition", f"run-{name}", {"subjects": [f"user:{user}"], "bindings": [binding]}
    )


# -- non-streaming ---------------------------------------------------------------------------


async def test_a_completion_comes_back_as_the_openai_api_shapes_it(
    admin: httpx.AsyncClient, client: AsyncOpenAI, a: FaultyBackend
) -> None:
    await must_put(admin, llm("a", a.url, poolName="fast"))

    answer = await client.chat.completions.create(
        model="fast",
        messages=[{"role": "system", "content": "Be brief."}, *HI],
        temperature=0.3,
        top_p=0.9,
        max_completion_tokens=7,
        stop=["###"],
        seed=4,
    )

    assert answer.id.startswith("chatcmpl-")
    assert answer.object == "chat.completion"
    assert answer.model == "fast"  # what the caller asked for, not the backend's model
    assert answer.choices[0].message.content == "from a"
    assert answer.choices[0].finish_reason == "stop"
    assert answer.usage is not None
    assert (answer.usage.prompt_tokens, answer.usage.completion_tokens) == (11, 2)
    (asked,) = a.requests
    assert asked.body["model"] == "model-a"
    assert asked.body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
    ]
    assert {k: asked.body[k] for k in ("temperature", "top_p", "max_tokens", "stop", "seed")} == {
        "temperature": 0.3,
        "top_p": 0.9,
        "max_tokens": 7,
        "stop": ["###"],
        "seed": 4,
    }


async def test_a_tool_call_and_its_result_round_trip_through_the_endpoint(
    admin: httpx.AsyncClient, client: AsyncOpenAI, a: FaultyBackend
) -> None:
    a.then(Ok("", tool_calls=(FakeCall("get_weather", '{"city": "Paris"}', "call_1"),)))
    await must_put(admin, llm("a", a.url))

    forced = await client.chat.completions.create(
        model="a",
        messages=HI,
        tools=[WEATHER],  # type: ignore[list-item]
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
    )
    message = forced.choices[0].message
    (call,) = message.tool_calls or []
    again = await client.chat.completions.create(
        model="a",
        messages=[
            *HI,
            message.model_dump(exclude_none=True),  # type: ignore[list-item]
            {"role": "tool", "tool_call_id": call.id, "content": "sunny"},
        ],
    )

    assert forced.choices[0].finish_reason == "tool_calls"
    assert message.content is None
    assert (call.id, call.function.name, call.function.arguments) == (  # type: ignore[union-attr]
        "call_1",
        "get_weather",
        '{"city": "Paris"}',
    )
    assert a.requests[0].body["tool_choice"] == {
        "type": "function",
        "function": {"name": "get_weather"},
    }
    assert a.requests[0].body["tools"][0]["function"]["name"] == "get_weather"
    assert a.requests[1].body["messages"][1:] == [
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
    ]
    assert again.choices[0].message.content == "from a"


# -- streaming -------------------------------------------------------------------------------


async def test_a_stream_has_one_id_a_role_delta_content_deltas_a_finish_and_a_usage_chunk(
    admin: httpx.AsyncClient, client: AsyncOpenAI, a: FaultyBackend
) -> None:
    a.then(Ok("one two three"))
    await must_put(admin, llm("a", a.url))

    stream = await client.chat.completions.create(
        model="a", messages=HI, stream=True, stream_options={"include_usage": True}
    )
    chunks = [chunk async for chunk in stream]

    assert len({c.id for c in chunks}) == 1
    assert chunks[0].id.startswith("chatcmpl-")
    assert {c.object for c in chunks} == {"chat.completion.chunk"}
    assert {c.model for c in chunks} == {"a"}
    assert chunks[0].choices[0].delta.role == "assistant"
    texts = [c.choices[0].delta.content for c in chunks if c.choices]
    assert "".join(t or "" for t in texts) == "one two three"
    assert texts[1:4] == ["one", " two", " three"]
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.total_tokens == 14
    assert all(c.usage is None for c in chunks[:-1])


async def test_a_stream_without_include_usage_ends_with_the_finish_chunk_and_done(
    admin: httpx.AsyncClient, live_mcpd: LiveMcpd, a: FaultyBackend
) -> None:
    await must_put(admin, llm("a", a.url))
    async with httpx.AsyncClient(trust_env=False) as http:
        response = await http.post(
            f"{live_mcpd.url}/v1/chat/completions",
            json={"model": "a", "messages": HI, "stream": True},
            headers=bearer(live_mcpd.token),
        )

    events = [line for line in response.text.split("\n\n") if line]
    assert response.headers["content-type"] == "text/event-stream"
    assert events[-1] == "data: [DONE]"
    last = json.loads(events[-2].removeprefix("data: "))
    assert last["choices"][0]["finish_reason"] == "stop"
    assert "usage" not in last


async def test_a_forced_streamed_tool_call_is_assembled_by_the_sdk(
    admin: httpx.AsyncClient, client: AsyncOpenAI, a: FaultyBackend
) -> None:
    arguments = '{"city": "Paris, France"}'
    a.then(Ok("", tool_calls=(FakeCall("get_weather", arguments, "call_w"),)))
    await must_put(admin, llm("a", a.url))

    async with client.chat.completions.stream(
        model="a",
        messages=HI,
        tools=[WEATHER],  # type: ignore[list-item]
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
    ) as stream:
        deltas = [e async for e in stream if e.type == "tool_calls.function.arguments.delta"]
        final = await stream.get_final_completion()

    assert len(deltas) == 3  # the backend streamed the arguments in three pieces
    (call,) = final.choices[0].message.tool_calls or []
    assert (call.id, call.function.name, call.function.arguments) == (
        "call_w",
        "get_weather",
        arguments,
    )
    assert final.choices[0].finish_reason == "tool_calls"
    assert a.requests[0].stream


# -- failover --------------------------------------------------------------------------------


async def test_a_500_before_the_answer_fails_over_to_the_next_member(
    admin: httpx.AsyncClient,
    client: AsyncOpenAI,
    a: FaultyBackend,
    b: FaultyBackend,
    ledger: list[Served],
) -> None:
    a.then(Fail(500), Fail(503))
    await must_put(admin, llm("a", a.url, poolName="p"), llm("b", b.url, poolName="p"))

    whole = await client.chat.completions.create(model="a", messages=HI)
    stream = await client.chat.completions.create(model="a", messages=HI, stream=True)
    text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])

    assert served(ledger) == ["a", "b", "a", "b"]  # a is pinned: asked first each time
    assert whole.choices[0].message.content == "from b"
    assert text == "from b"


async def test_an_error_after_the_stream_started_ends_it_with_an_error_event(
    admin: httpx.AsyncClient,
    client: AsyncOpenAI,
    a: FaultyBackend,
    b: FaultyBackend,
    ledger: list[Served],
) -> None:
    a.then(ErrorEvent(after=1, answer=Ok("partial answer here")))
    await must_put(admin, llm("a", a.url, poolName="p"), llm("b", b.url, poolName="p"))

    stream = await client.chat.completions.create(model="a", messages=HI, stream=True)
    seen: list[str] = []
    with pytest.raises(openai.APIError) as caught:
        await read_into(seen, stream)

    assert "".join(seen) == "partial"
    assert "the answer broke off" in caught.value.message
    assert isinstance(caught.value.body, dict)
    assert caught.value.body["type"] == "server_error"
    assert served(ledger) == ["a"]  # committed to a: never retried on b


async def read_into(seen: list[str], stream: AsyncStream[ChatCompletionChunk]) -> None:
    async for chunk in stream:
        seen.append(chunk.choices[0].delta.content or "")


# -- errors before the answer ----------------------------------------------------------------


async def test_bad_input_is_a_400_naming_the_field(
    admin: httpx.AsyncClient, client: AsyncOpenAI, a: FaultyBackend
) -> None:
    await must_put(admin, llm("a", a.url))

    with pytest.raises(openai.BadRequestError) as no_messages:
        await client.chat.completions.create(model="a", messages=[])
    with pytest.raises(openai.BadRequestError) as bad_role:
        await client.chat.completions.create(
            model="a",
            messages=[*HI, {"role": "robot", "content": "x"}],  # type: ignore[list-item]
        )
    with pytest.raises(openai.BadRequestError) as bad_temperature:
        await client.chat.completions.create(model="a", messages=HI, temperature="hot")  # type: ignore[arg-type]

    assert no_messages.value.param == "messages"
    assert no_messages.value.type == "invalid_request_error"
    assert no_messages.value.response.headers["x-should-retry"] == "false"
    assert bad_role.value.param == "messages[1].role"
    assert bad_temperature.value.param == "temperature"
    assert a.requests == []


async def test_an_unknown_model_and_an_unknown_agent_are_404_model_not_found(
    admin: httpx.AsyncClient, client: AsyncOpenAI, live_mcpd: LiveMcpd, a: FaultyBackend
) -> None:
    await must_put(admin, llm("a", a.url))
    async with sdk(live_mcpd, add_person_live(live_mcpd, "bob")) as bob:
        with pytest.raises(openai.NotFoundError) as unknown_to_bob:
            await bob.chat.completions.create(model="nope", messages=HI)

    with pytest.raises(openai.NotFoundError) as unknown:
        await client.chat.completions.create(model="nope", messages=HI)
    with pytest.raises(openai.NotFoundError) as agent:
        await client.chat.completions.create(model="agent:helper", messages=HI)

    assert unknown.value.code == "model_not_found"
    assert unknown_to_bob.value.code == "model_not_found"
    assert agent.value.code == "model_not_found"
    assert "no agent is called 'helper'" in agent.value.message
    assert a.requests == []


async def test_a_user_without_run_on_the_llm_is_refused_with_403(
    admin: httpx.AsyncClient, live_mcpd: LiveMcpd, a: FaultyBackend, b: FaultyBackend
) -> None:
    await must_put(admin, llm("a", a.url, poolName="p"), llm("b", b.url, poolName="p"))
    token = add_person_live(live_mcpd, "bob")
    await must_put(admin, run_grant("bob", "b"))

    async with sdk(live_mcpd, token) as bob:
        with pytest.raises(openai.PermissionDeniedError) as refused:
            await bob.chat.completions.create(model="a", messages=HI)
        by_pool = await bob.chat.completions.create(model="p", messages=HI)

    assert refused.value.status_code == 403
    assert refused.value.type == "permission_error"
    assert "may not run llms/a" in refused.value.message
    assert by_pool.choices[0].message.content in ("from a", "from b")
    assert len(a.requests) + len(b.requests) == 1


async def test_a_bad_token_is_a_401(live_mcpd: LiveMcpd) -> None:
    async with sdk(live_mcpd, "not-a-token") as stranger:
        with pytest.raises(openai.AuthenticationError) as refused:
            await stranger.models.list()

    assert refused.value.code == "invalid_api_key"


async def test_a_pool_with_no_active_member_is_a_503_not_worth_retrying(
    admin: httpx.AsyncClient, client: AsyncOpenAI, a: FaultyBackend
) -> None:
    await must_put(admin, llm("a", a.url, status="inactive"))

    with pytest.raises(openai.InternalServerError) as caught:
        await client.chat.completions.create(model="a", messages=HI, stream=True)

    assert caught.value.status_code == 503
    assert caught.value.body == {
        "message": "No active Llm in pool 'a' (pinned: a)",
        "type": "server_error",
        "param": None,
        "code": "unavailable",
    }
    assert caught.value.response.headers["x-should-retry"] == "false"
    assert a.requests == []


async def test_a_pool_whose_members_all_answer_429_is_a_429_worth_retrying(
    admin: httpx.AsyncClient,
    client: AsyncOpenAI,
    a: FaultyBackend,
    b: FaultyBackend,
    ledger: list[Served],
) -> None:
    a.then(rate_limited("3"))
    b.then(rate_limited("2"))
    await must_put(admin, llm("a", a.url, poolName="p"), llm("b", b.url, poolName="p"))

    with pytest.raises(openai.RateLimitError) as caught:
        await client.chat.completions.create(model="a", messages=HI)

    assert served(ledger) == ["a", "b"]
    assert caught.value.code == "rate_limit_exceeded"
    assert caught.value.response.headers["x-should-retry"] == "true"
    assert caught.value.response.headers["retry-after"] == "2"


# -- the real LLM server ---------------------------------------------------------------------


@pytest.mark.slow
async def test_the_real_llm_answers_whole_streamed_and_with_a_forced_tool_call(
    admin: httpx.AsyncClient, client: AsyncOpenAI, llm_server: LlmServer
) -> None:
    await must_put(admin, llm("llama", llm_server.url, model=llm_server.model))
    short: dict[str, Any] = {"temperature": 0.0, "seed": 1, "max_tokens": 24}

    whole = await client.chat.completions.create(model="llama", messages=HI, **short)
    stream = await client.chat.completions.create(model="llama", messages=HI, stream=True, **short)
    chunks = [c async for c in stream]
    async with client.chat.completions.stream(
        model="llama",
        messages=[{"role": "user", "content": "What is the weather in Paris?"}],
        tools=[WEATHER],  # type: ignore[list-item]
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
        temperature=0.0,
        max_tokens=64,
    ) as tool_stream:
        final = await tool_stream.get_final_completion()

    assert whole.choices[0].message.content
    assert whole.choices[0].finish_reason in ("stop", "length")
    assert whole.model == "llama"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content  # temperature 0, same seed
    assert len({c.id for c in chunks}) == 1
    (call,) = final.choices[0].message.tool_calls or []
    assert call.function.name == "get_weather"
    assert isinstance(json.loads(call.function.arguments)["city"], str)
    assert final.choices[0].finish_reason == "tool_calls"
