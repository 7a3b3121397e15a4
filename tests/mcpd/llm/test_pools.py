"""Failover through the pool dispatcher against real HTTP backends: the scripted faulty backend
(tests/mcpd/llm/faulty_backend.py) for every failure a real server will not produce on
demand, and the real llama.cpp server for a pool of a dead member and a live one. Each test
asserts from the backends' ledger exactly which member was asked, in what order.

Llms are stored through mcpd's REST API (SQLite; the kind itself is tested on both engines in
tests/mcpd/test_llms.py). Members are addressed by the pinned name, which is tried first, so
the order is known without depending on the shuffle.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from mcpctl.domain.caller import SYSTEM
from mcpctl.domain.pools import CooldownPolicy
from mcpctl.errors import NotFound, PermissionDenied, RateLimited, Unavailable
from mcpctl.http11 import Origins
from mcpctl.mcpd.llm.messages import Message, Params, Request, TextDelta, collect
from mcpctl.mcpd.llm.pools import PoolDispatcher, PoolEvent, StreamFailed
from mcpctl.mcpd.services.secrets import SecretBehaviour
from tests.conftest import state_of
from tests.llm_server import LlmServer
from tests.mcpd.llm.conftest import TIMEOUTS
from tests.mcpd.llm.faulty_backend import (
    Drop,
    Fail,
    FaultyBackend,
    Ok,
    Served,
    rate_limited,
    refused_url,
    serve_backend,
)
from tests.mcpd.manifests import manifest, must_put, secret

pytestmark = [pytest.mark.anyio, pytest.mark.parametrize("database", ["sqlite"], indirect=True)]

HELLO = Request("ignored", [Message.user("Hi")])


@pytest.fixture
def ledger() -> list[Served]:
    return []


@pytest.fixture
async def a(ledger: list[Served]) -> AsyncIterator[FaultyBackend]:
    async with serve_backend(FaultyBackend("a", ledger=ledger)) as served:
        yield served


@pytest.fixture
async def b(ledger: list[Served]) -> AsyncIterator[FaultyBackend]:
    async with serve_backend(FaultyBackend("b", default=Ok("from b"), ledger=ledger)) as served:
        yield served


def dispatcher(app: FastAPI, http: Origins, policy: CooldownPolicy | None = None) -> PoolDispatcher:
    """A dispatcher on the app's database and secrets, with a seeded shuffle."""
    state = state_of(app)
    secrets = state.objects.behaviour("Secret")
    assert isinstance(secrets, SecretBehaviour)
    return PoolDispatcher(
        state.objects.uows,
        secrets,
        state.authz,
        http,
        policy=policy,
        timeouts=TIMEOUTS,
        rng=random.Random(5),
    )


def llm(name: str, url: str, **spec: Any) -> dict[str, Any]:
    return manifest(
        "Llm", name, {"provider": "openai", "url": url, "model": f"model-{name}", **spec}
    )


async def drain(events: AsyncIterator[PoolEvent]) -> list[PoolEvent]:
    return [event async for event in events]


def served(ledger: list[Served]) -> list[str]:
    return [s.backend for s in ledger]


async def test_connection_refused_fails_over_to_the_next_member(
    api: httpx.AsyncClient, app: FastAPI, http: Origins, b: FaultyBackend
) -> None:
    with refused_url() as dead:
        await must_put(api, llm("a", dead, poolName="p"), llm("b", b.url, poolName="p"))
        pools = dispatcher(app, http)

        done = await pools.complete("a", HELLO)

    assert (done.llm, done.pool) == ("b", "p")
    assert done.answer.message.content == "from b"
    assert [s.body["model"] for s in b.requests] == ["model-b"]
    members = (await api.get("/api/v1/llms/a/members")).json()["members"]
    assert members[0]["recentFailures"] == []  # the app's own dispatcher was not used


async def test_a_500_before_the_first_chunk_fails_over_and_the_stream_comes_from_the_next(
    api: httpx.AsyncClient,
    app: FastAPI,
    http: Origins,
    a: FaultyBackend,
    b: FaultyBackend,
    ledger: list[Served],
) -> None:
    a.then(Fail(500))
    await must_put(api, llm("a", a.url, poolName="p"), llm("b", b.url, poolName="p"))
    pools = dispatcher(app, http)

    stream = pools.stream("a", HELLO)
    async with aclosing(stream):
        events = await drain(stream)

    assert served(ledger) == ["a", "b"]
    assert all(s.stream for s in ledger)
    assert stream.served_by == "b"
    assert collect(e for e in events if not isinstance(e, StreamFailed)).message.content == (
        "from b"
    )


async def test_a_401_is_not_retried_and_the_caller_sees_it_mapped(
    api: httpx.AsyncClient,
    app: FastAPI,
    http: Origins,
    a: FaultyBackend,
    b: FaultyBackend,
    ledger: list[Served],
) -> None:
    a.then(Fail(401, "invalid api key"))
    await must_put(api, llm("a", a.url, poolName="p"), llm("b", b.url, poolName="p"))
    pools = dispatcher(app, http)

    with pytest.raises(PermissionDenied) as refused:
        await pools.complete("a", HELLO)

    assert served(ledger) == ["a"]
    assert refused.value.details == {"llm": "a", "pool": "p", "backendStatus": 401}
    assert "invalid api key" in refused.value.message
    assert (await pools.complete("a", HELLO)).llm == "a"  # a refusal does not cool it down


async def test_a_429_fails_over_and_cools_the_member_down_for_its_retry_after(
    api: httpx.AsyncClient,
    app: FastAPI,
    http: Origins,
    a: FaultyBackend,
    b: FaultyBackend,
    ledger: list[Served],
) -> None:
    a.then(rate_limited("30"))
    await must_put(api, llm("a", a.url, poolName="p"), llm("b", b.url, poolName="p"))
    pools = dispatcher(app, http)

    first = await pools.complete("a", HELLO)
    second = await pools.complete("a", HELLO)
    pool = await pools.members(SYSTEM, "a")

    assert (first.llm, second.llm) == ("b", "b")
    assert served(ledger) == ["a", "b", "b"]  # a was skipped while cooling down
    a_member = pool["members"][0]
    assert a_member["name"] == "a"
    assert a_member["coolingDownUntil"] is not None
    assert a_member["recentFailures"][0]["error"] == "HTTP 429: rate limited"


async def test_a_stream_that_drops_after_the_first_chunk_ends_with_an_error_event_unretried(
    api: httpx.AsyncClient,
    app: FastAPI,
    http: Origins,
    a: FaultyBackend,
    b: FaultyBackend,
    ledger: list[Served],
) -> None:
    a.then(Drop(after=1, answer=Ok("one two three")))
    await must_put(api, llm("a", a.url, poolName="p"), llm("b", b.url, poolName="p"))
    pools = dispatcher(app, http)

    stream = pools.stream("a", HELLO)
    async with aclosing(stream):
        events = await drain(stream)

    assert served(ledger) == ["a"]
    assert events[0] == TextDelta("one")
    assert isinstance(events[-1], StreamFailed)
    assert isinstance(events[-1].error, Unavailable)
    assert events[-1].llm == "a"
    assert stream.served_by == "a"


async def test_a_pinned_inactive_llm_is_served_by_a_sibling(
    api: httpx.AsyncClient,
    app: FastAPI,
    http: Origins,
    a: FaultyBackend,
    b: FaultyBackend,
    ledger: list[Served],
) -> None:
    await must_put(
        api,
        llm("a", a.url, poolName="p", status="inactive"),
        llm("b", b.url, poolName="p"),
    )

    done = await dispatcher(app, http).complete("a", HELLO)

    assert done.llm == "b"
    assert served(ledger) == ["b"]


async def test_a_pool_whose_members_are_all_inactive_is_unavailable_naming_pool_and_pin(
    api: httpx.AsyncClient, app: FastAPI, http: Origins, a: FaultyBackend
) -> None:
    await must_put(
        api,
        llm("a", a.url, poolName="p", status="inactive"),
        llm("b", a.url, poolName="p", status="inactive"),
    )
    pools = dispatcher(app, http)

    with pytest.raises(Unavailable) as by_name:
        await pools.complete("a", HELLO)
    with pytest.raises(Unavailable) as by_key:
        await pools.complete("p", HELLO)

    assert by_name.value.message == "No active Llm in pool 'p' (pinned: a)"
    assert by_key.value.message == "No active Llm in pool 'p'"
    assert a.requests == []


async def test_an_unknown_word_is_not_found(app: FastAPI, http: Origins) -> None:
    with pytest.raises(NotFound):
        await dispatcher(app, http).complete("nothing", HELLO)


async def test_repeated_failures_cool_a_member_down_and_a_pool_all_cooling_is_unavailable(
    api: httpx.AsyncClient,
    app: FastAPI,
    http: Origins,
    a: FaultyBackend,
    ledger: list[Served],
) -> None:
    a.then(Fail(503), Fail(502))
    await must_put(api, llm("a", a.url))
    pools = dispatcher(app, http, CooldownPolicy(allowed_fails=2, window=60, cooldown=60))

    with pytest.raises(Unavailable) as first:
        await pools.complete("a", HELLO)
    with pytest.raises(Unavailable):
        await pools.complete("a", HELLO)
    with pytest.raises(Unavailable) as cooling:
        await pools.complete("a", HELLO)

    assert served(ledger) == ["a", "a"]
    assert first.value.details["attempts"] == [{"llm": "a", "error": "HTTP 503: injected failure"}]
    assert "cooling down" in cooling.value.message
    assert cooling.value.retry_after is not None
    assert 0 < cooling.value.retry_after <= 60


async def test_every_member_rate_limited_is_rate_limited_with_the_shortest_retry_after(
    api: httpx.AsyncClient, app: FastAPI, http: Origins, a: FaultyBackend
) -> None:
    a.then(rate_limited("7"), rate_limited("3"))
    await must_put(api, llm("a", a.url, poolName="p"), llm("b", a.url, poolName="p"))

    with pytest.raises(RateLimited) as limited:
        await dispatcher(app, http).complete("p", HELLO)

    assert limited.value.retry_after == 3.0
    assert len(a.requests) == 2


async def test_the_api_key_is_read_from_its_secret_at_call_time(
    api: httpx.AsyncClient, app: FastAPI, http: Origins, a: FaultyBackend
) -> None:
    await must_put(api, secret("openai", {"key": "sk-one"}))
    await must_put(api, llm("a", a.url, apiKey={"name": "openai", "key": "key"}))
    pools = dispatcher(app, http)

    await pools.complete("a", HELLO)
    await must_put(api, secret("openai", {"key": "sk-two"}))
    await pools.complete("a", HELLO)

    assert [s.headers["authorization"] for s in a.requests] == [
        "Bearer sk-one",
        "Bearer sk-two",
    ]


async def test_the_llms_default_params_apply_and_the_requests_own_win(
    api: httpx.AsyncClient, app: FastAPI, http: Origins, a: FaultyBackend
) -> None:
    await must_put(api, llm("a", a.url, defaultParams={"temperature": 0.5, "max_tokens": 9}))

    await dispatcher(app, http).complete(
        "a", Request("x", [Message.user("Hi")], params=Params(temperature=0.1))
    )

    body = a.requests[0].body
    assert (body["model"], body["temperature"], body["max_tokens"]) == ("model-a", 0.1, 9)


async def test_the_apps_dispatcher_shows_in_flight_and_failures_in_members(
    api: httpx.AsyncClient, app: FastAPI, a: FaultyBackend, b: FaultyBackend
) -> None:
    a.then(Fail(503))
    await must_put(api, llm("a", a.url, poolName="p"), llm("b", b.url, poolName="p"))
    pools = state_of(app).pools

    stream = pools.stream("a", HELLO)
    async with aclosing(stream):
        first = await anext(stream)
        during = (await api.get("/api/v1/llms/a/members")).json()["members"]
    after = (await api.get("/api/v1/llms/b/members")).json()["members"]

    assert first == TextDelta("from")
    assert [(m["name"], m["inFlight"]) for m in during] == [("a", 0), ("b", 1)]
    assert during[0]["recentFailures"][0]["error"] == "HTTP 503: injected failure"
    assert [m["inFlight"] for m in after] == [0, 0]


@pytest.mark.slow
async def test_a_pool_of_a_dead_member_and_the_real_llama_server_is_answered_by_the_real_one(
    api: httpx.AsyncClient, app: FastAPI, http: Origins, llm_server: LlmServer
) -> None:
    with refused_url() as dead:
        await must_put(
            api,
            llm("dead", dead, poolName="local"),
            manifest(
                "Llm",
                "llama",
                {
                    "provider": "openai",
                    "url": llm_server.url,
                    "model": llm_server.model,
                    "poolName": "local",
                    "defaultParams": {"temperature": 0, "max_tokens": 8, "seed": 1},
                },
            ),
        )
        pools = dispatcher(app, http)

        done = await pools.complete("dead", HELLO)
        stream = pools.stream("dead", HELLO)
        async with aclosing(stream):
            events = await drain(stream)

    assert done.llm == "llama"
    assert done.answer.finish_reason in ("stop", "length")
    assert stream.served_by == "llama"
    assert not any(isinstance(e, StreamFailed) for e in events)
    assert collect(e for e in events if not isinstance(e, StreamFailed)).finish_reason in (
        "stop",
        "length",
    )
