"""A server's requests of its client (sampling, elicitation, roots) through the relay, for a
Server whose spec opts in to them (``clientFeatures``), with the real MCP SDK client."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio
import mcp_types as types
import pytest
from mcp.client.session import ClientRequestContext

from tests.conftest import Database, LiveMcpd
from tests.mcpd.relay.conftest import WAIT, add_server, connect, spec, text_of
from tests.mcpd.relay.test_calls import wait_for_log

pytestmark = pytest.mark.anyio

ALL = ["sampling/createMessage", "elicitation/create", "roots/list"]


@pytest.fixture
def database(tmp_path: Path) -> Database:
    return Database("sqlite", f"sqlite:///{tmp_path / 'mcpd.db'}")


@pytest.fixture
async def asker(live_mcpd: LiveMcpd, tmp_path: Path) -> LiveMcpd:
    """Server ``asker``: the stdio fixture, opted in to every client feature."""
    features = ["sampling", "elicitation", "roots"]
    await add_server(live_mcpd, "asker", {**spec("fixture", tmp_path), "clientFeatures": features})
    return live_mcpd


class Answers:
    """The client's side of the server's requests: what it was asked, and what it answers."""

    def __init__(self) -> None:
        self.asked: list[Any] = []

    async def sampling(
        self, context: ClientRequestContext, params: types.CreateMessageRequestParams
    ) -> types.CreateMessageResult:
        self.asked.append(params)
        return types.CreateMessageResult(
            role="assistant", model="test", content=types.TextContent(type="text", text="4")
        )

    async def elicitation(
        self, context: ClientRequestContext, params: types.ElicitRequestParams
    ) -> types.ElicitResult:
        self.asked.append(params)
        return types.ElicitResult(action="accept", content={"name": "Ada"})

    async def roots(self, context: ClientRequestContext) -> types.ListRootsResult:
        self.asked.append("roots")
        return types.ListRootsResult(roots=[types.Root(uri="file:///work", name="work")])

    def callbacks(self) -> dict[str, Any]:
        return {
            "sampling_callback": self.sampling,
            "elicitation_callback": self.elicitation,
            "list_roots_callback": self.roots,
        }


async def ask(client: Any, methods: list[str]) -> dict[str, Any]:
    with anyio.fail_after(WAIT):
        result = await client.call_tool("ask", {"methods": methods})
    answers: dict[str, Any] = json.loads(text_of(result))
    return answers


async def test_the_server_is_initialized_with_the_features_its_spec_opts_in_to(
    asker: LiveMcpd,
) -> None:
    async with connect(asker, "asker") as client:
        declared = json.loads(text_of(await client.call_tool("client", {})))

    assert declared == {"sampling": {}, "elicitation": {"form": {}, "url": {}}, "roots": {}}


async def test_sampling_elicitation_and_roots_reach_the_calling_client_and_come_back(
    asker: LiveMcpd,
) -> None:
    answers = Answers()
    async with connect(asker, "asker", **answers.callbacks()) as client:
        got = await ask(client, ALL)

    assert got["sampling/createMessage"]["result"]["content"]["text"] == "4"
    assert got["elicitation/create"]["result"] == {"action": "accept", "content": {"name": "Ada"}}
    assert got["roots/list"]["result"]["roots"] == [{"uri": "file:///work", "name": "work"}]
    sampled, elicited, rooted = answers.asked
    assert sampled.max_tokens == 10
    assert sampled.messages[0].content.text == "2+2?"
    assert elicited.message == "Your name?"
    assert rooted == "roots"


async def test_a_client_without_the_capability_is_not_asked(asker: LiveMcpd) -> None:
    answers = Answers()
    async with connect(asker, "asker", sampling_callback=answers.sampling) as client:
        got = await ask(client, ALL)

    assert got["sampling/createMessage"]["result"]["content"]["text"] == "4"
    for method, feature in (("elicitation/create", "elicitation"), ("roots/list", "roots")):
        assert got[method]["error"] == {
            "code": -32601,
            "message": f"{method}: the client did not declare the {feature} capability",
        }


async def test_a_server_not_opted_in_still_gets_no_client_features(servers: LiveMcpd) -> None:
    answers = Answers()
    async with connect(servers, "fixture", **answers.callbacks()) as client:
        declared = json.loads(text_of(await client.call_tool("client", {})))
        got = await ask(client, ALL)

    assert declared == {}
    assert answers.asked == []
    for method in ALL:
        assert got[method]["error"]["code"] == -32601
        assert "not supported by the shared connection" in got[method]["error"]["message"]


async def test_opting_in_later_restarts_the_server_with_the_features_declared(
    servers: LiveMcpd, tmp_path: Path
) -> None:
    async with connect(servers, "fixture") as client:
        before = json.loads(text_of(await client.call_tool("client", {})))
    await add_server(servers, "fixture", {**spec("fixture", tmp_path), "clientFeatures": ["roots"]})
    async with connect(servers, "fixture") as client:
        after = json.loads(text_of(await client.call_tool("client", {})))

    assert (before, after) == ({}, {"roots": {}})


async def test_a_call_cancelled_while_the_client_is_asked_tells_the_server(
    asker: LiveMcpd,
) -> None:
    """The client cancels its tool call while its sampling callback still runs: the server's
    sampling request is answered -32800 at once, not left waiting."""
    asked = anyio.Event()

    async def never(
        context: ClientRequestContext, params: types.CreateMessageRequestParams
    ) -> types.CreateMessageResult:
        asked.set()
        await anyio.sleep_forever()
        raise AssertionError("unreachable")

    async with connect(asker, "asker", sampling_callback=never) as client:
        with anyio.fail_after(WAIT):
            async with anyio.create_task_group() as tg:
                methods = {"methods": ["sampling/createMessage"]}
                tg.start_soon(lambda: client.call_tool("ask", methods))
                await asked.wait()
                tg.cancel_scope.cancel()  # the SDK client sends notifications/cancelled
        line = await wait_for_log(asker, "asker", "answered sampling/createMessage")

    answer = json.loads(line.split(": ", 1)[1])
    assert answer["error"]["code"] == -32800
    assert "the client request it belonged to ended first" in answer["error"]["message"]
