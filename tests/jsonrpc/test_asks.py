"""Handing a server's requests of its client to the one session in flight (jsonrpc/asks.py)."""

from __future__ import annotations

import asyncio

import pytest

from mcpctl.jsonrpc import asks
from mcpctl.jsonrpc.asks import Asks, InFlight, Tie, Untied
from mcpctl.jsonrpc.protocol import JsonObject

pytestmark = pytest.mark.anyio

SAMPLING: JsonObject = {"sampling": {}}


def tie_of(session: object, outlet: asks.Outlet | None = None, **caps: JsonObject) -> Tie:
    return Tie(session, Asks("t"), caps or SAMPLING, outlet)


def test_no_request_in_flight_ties_nothing() -> None:
    with pytest.raises(Untied, match="no client request is in flight"):
        InFlight().choose("sampling/createMessage")


def test_requests_of_two_sessions_tie_nothing() -> None:
    flight = InFlight()
    flight.enter(tie_of("a"))
    flight.enter(tie_of("b"))

    with pytest.raises(Untied, match="cannot be tied to one client: 2 client sessions"):
        flight.choose("roots/list")


def test_a_request_in_flight_for_nobody_makes_it_ambiguous_too() -> None:
    flight = InFlight()
    flight.enter(None)  # e.g. mcpd's own call to the server
    flight.enter(tie_of("a"))

    with pytest.raises(Untied, match="2 client sessions"):
        flight.choose("sampling/createMessage")
    flight.leave(None)
    assert flight.choose("sampling/createMessage").session == "a"


def test_the_newest_request_with_its_own_stream_is_chosen_among_one_sessions() -> None:
    flight = InFlight()
    first, second, third = tie_of("a", print), tie_of("a", print), tie_of("a")
    for tie in (first, second, third):
        flight.enter(tie)

    assert flight.choose("roots/list") is second
    flight.leave(second)
    assert flight.choose("roots/list") is first
    flight.leave(first)
    assert flight.choose("roots/list") is third


async def test_what_a_session_was_asked_is_cancelled_when_its_last_request_ends() -> None:
    flight = InFlight()
    one, two = tie_of("a"), tie_of("a")
    flight.enter(one)
    flight.enter(two)
    ended: list[str] = []

    async def asked() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            ended.append("cancelled")
            raise

    flight.spawn(one, asked())
    await asyncio.sleep(0)
    flight.leave(one)
    await asyncio.sleep(0)
    assert ended == []  # the session still has a request in flight
    flight.leave(two)
    await asyncio.sleep(0)
    assert ended == ["cancelled"]


def test_only_a_declared_capability_may_be_asked() -> None:
    caps: JsonObject = {"sampling": {}, "elicitation": {"form": {}}}

    assert asks.unsupported("sampling/createMessage", {}, caps) is None
    assert asks.unsupported("elicitation/create", {"mode": "form"}, caps) is None
    assert asks.unsupported("elicitation/create", {"mode": "url"}, caps) == (
        "elicitation/create: the client does not support URL elicitation"
    )
    assert asks.unsupported("roots/list", {}, caps) == (
        "roots/list: the client did not declare the roots capability"
    )
    assert asks.unsupported("tools/list", {}, caps) is not None


def test_declared_names_only_known_features() -> None:
    assert asks.declared(["roots", "sampling"]) == {"sampling": {}, "roots": {}}
    assert asks.declared(None) == {}
    assert asks.declared(asks.FEATURE_NAMES)["elicitation"] == {"form": {}, "url": {}}


async def test_relay_asks_with_an_id_of_ours_and_answers_under_the_servers() -> None:
    sent: list[JsonObject] = []
    tie = Tie("a", Asks("mcpd"), SAMPLING, sent.append)
    request: JsonObject = {"jsonrpc": "2.0", "id": 7, "method": "sampling/createMessage"}
    relayed = asyncio.ensure_future(asks.relay(tie, {**request, "params": {"maxTokens": 1}}))
    await asyncio.sleep(0)

    assert sent == [{**request, "id": "mcpd-1", "params": {"maxTokens": 1}}]
    assert not tie.asks.answered({"jsonrpc": "2.0", "id": "mcpd-9", "result": {}})
    assert tie.asks.answered({"jsonrpc": "2.0", "id": "mcpd-1", "result": {"role": "x"}})
    assert await relayed == {"jsonrpc": "2.0", "id": 7, "result": {"role": "x"}}


async def test_relay_passes_the_clients_error_back() -> None:
    sent: list[JsonObject] = []
    tie = Tie("a", Asks("m"), SAMPLING, sent.append)
    relayed = asyncio.ensure_future(
        asks.relay(tie, {"jsonrpc": "2.0", "id": "s1", "method": "sampling/createMessage"})
    )
    await asyncio.sleep(0)
    tie.asks.answered({"jsonrpc": "2.0", "id": "m-1", "error": {"code": -1, "message": "no"}})

    assert await relayed == {"jsonrpc": "2.0", "id": "s1", "error": {"code": -1, "message": "no"}}


async def test_relay_refuses_without_the_capability_or_a_stream() -> None:
    request: JsonObject = {"jsonrpc": "2.0", "id": 1, "method": "roots/list"}

    no_roots = await asks.relay(tie_of("a", print), request)
    nowhere = await asks.relay(Tie("a", Asks("m"), {"roots": {}}), request)

    assert no_roots["error"]["code"] == -32601
    assert "did not declare the roots capability" in no_roots["error"]["message"]
    assert nowhere["error"]["message"] == (
        "roots/list: the client has no open stream to receive the request on"
    )


async def test_a_relay_cancelled_before_the_answer_tells_the_server_so() -> None:
    tie = tie_of("a", lambda _: None)
    relayed = asyncio.ensure_future(
        asks.relay(tie, {"jsonrpc": "2.0", "id": 3, "method": "sampling/createMessage"})
    )
    await asyncio.sleep(0)
    relayed.cancel()

    answer = await relayed
    assert answer["error"]["code"] == -32800
    assert "the client request it belonged to ended first" in answer["error"]["message"]
