"""A server's requests of its client (sampling, elicitation, roots) through mcplocal and the
relay's channel, to the real MCP SDK client, for servers whose spec opts in to them:
``@modelcontextprotocol/server-everything`` (its sampling, elicitation and roots tools) and
the stdio fixture (for the cases a real server does not make on demand)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from mcp import Client, StdioServerParameters

from tests.conftest import LiveMcpd
from tests.mcpd.instances.running import fixture_args
from tests.mcpd.relay.test_client_requests import ALL, Answers
from tests.mcplocal.conftest import (
    Mcplocal,
    apply_project,
    connect,
    define_servers,
    everything_spec,
    text_of,
)
from tests.mcplocal.test_cli import MCPLOCAL, env_for
from tests.mcplocal.test_sessions import relay_posts

pytestmark = pytest.mark.anyio

FEATURES = ["sampling", "elicitation", "roots"]
WAIT = 30.0


@pytest.fixture
def asker(live_mcpd: LiveMcpd) -> str:
    argv = fixture_args()
    define_servers(
        live_mcpd, asker={"command": argv[0], "args": argv[1:], "clientFeatures": FEATURES}
    )
    apply_project(live_mcpd, "asks", ["asker"])
    return "asks"


async def ask(client: Client, methods: list[str], tool: str = "asker__ask") -> dict[str, Any]:
    with anyio.fail_after(WAIT):
        result = await client.call_tool(tool, {"methods": methods})
    answers: dict[str, Any] = json.loads(text_of(result))
    return answers


async def test_server_everything_samples_elicits_and_lists_roots_of_the_client(
    live_mcpd: LiveMcpd, mcplocal: Mcplocal
) -> None:
    define_servers(live_mcpd, everything={**everything_spec(), "clientFeatures": FEATURES})
    apply_project(live_mcpd, "demo", ["everything"], toolPrefix="never")
    answers = Answers()
    async with connect(mcplocal.url("demo"), **answers.callbacks()) as (client, _):
        with anyio.fail_after(WAIT):
            names = {tool.name for tool in (await client.list_tools()).tools}
            sampled = await client.call_tool("trigger-sampling-request", {"prompt": "2+2?"})
            elicited = await client.call_tool("trigger-elicitation-request", {})
            rooted = await client.call_tool("get-roots-list", {})

    # server-everything offers these tools only to a client that declared the capability.
    assert {"trigger-sampling-request", "trigger-elicitation-request", "get-roots-list"} <= names
    assert '"text": "4"' in text_of(sampled)
    assert "Ada" in text_of(elicited)
    assert "file:///work" in text_of(rooted)
    prompts = [a for a in answers.asked if hasattr(a, "max_tokens")]
    assert prompts
    assert "2+2?" in prompts[0].messages[0].content.text


async def test_the_fixtures_requests_come_back_through_the_channel(
    live_mcpd: LiveMcpd, mcplocal: Mcplocal, asker: str
) -> None:
    answers = Answers()
    async with connect(mcplocal.url(asker), **answers.callbacks()) as (client, _):
        await client.call_tool("asker__client", {})
        before = relay_posts(live_mcpd)
        got = await ask(client, ALL)
        after = relay_posts(live_mcpd)

    assert after == before  # the requests and their answers took the channel, no POST
    assert got["sampling/createMessage"]["result"]["content"]["text"] == "4"
    assert got["elicitation/create"]["result"] == {"action": "accept", "content": {"name": "Ada"}}
    assert got["roots/list"]["result"]["roots"] == [{"uri": "file:///work", "name": "work"}]


async def test_mcplocal_asks_only_what_its_client_declared(mcplocal: Mcplocal, asker: str) -> None:
    answers = Answers()
    async with connect(mcplocal.url(asker), list_roots_callback=answers.roots) as (client, _):
        got = await ask(client, ALL)

    assert got["roots/list"]["result"]["roots"][0]["uri"] == "file:///work"
    assert got["sampling/createMessage"]["error"] == {
        "code": -32601,
        "message": "sampling/createMessage: the client did not declare the sampling capability",
    }


async def test_calls_of_two_clients_in_flight_leave_the_request_untied(
    mcplocal: Mcplocal, asker: str
) -> None:
    answers = Answers()
    async with (
        connect(mcplocal.url(asker), **answers.callbacks()) as (first, _),
        connect(mcplocal.url(asker), **answers.callbacks()) as (second, _),
        anyio.create_task_group() as tg,
    ):
        tg.start_soon(lambda: first.call_tool("asker__hang", {}))
        await anyio.sleep(0.5)  # the hanging call is in flight upstream
        got = await ask(second, ["sampling/createMessage"])
        tg.cancel_scope.cancel()

    assert answers.asked == []
    error = got["sampling/createMessage"]["error"]
    assert "cannot be tied to one client: 2 client sessions" in error["message"]


async def test_mcplocal_stdio_passes_the_requests_to_its_client(
    live_mcpd: LiveMcpd, asker: str, tmp_path: Path
) -> None:
    answers = Answers()
    params = StdioServerParameters(
        command=str(MCPLOCAL),
        args=["stdio", "--project", asker],
        env=env_for(live_mcpd, tmp_path),
    )
    async with Client(params, mode="legacy", cache=None, **answers.callbacks()) as client:
        got = await ask(client, ALL)

    assert got["sampling/createMessage"]["result"]["content"]["text"] == "4"
    assert got["elicitation/create"]["result"]["content"] == {"name": "Ada"}
    assert got["roots/list"]["result"]["roots"][0]["uri"] == "file:///work"


def call(request_id: int, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
    params = {"name": tool, "arguments": arguments}
    return {"jsonrpc": "2.0", "id": request_id, "method": "tools/call", "params": params}


async def test_an_answer_turns_into_an_sse_stream_only_when_the_server_asks_first(
    mcplocal: Mcplocal, asker: str
) -> None:
    """On the wire: JSON while nothing precedes the answer; the server's request on the
    call's own SSE stream, the client's answer POSTed (202), then the result on that stream."""
    hello = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-11-25",
            "capabilities": {"roots": {}},
            "clientInfo": {"name": "raw"},
        },
    }
    accept = {"Accept": "application/json, text/event-stream"}
    url = mcplocal.url(asker)
    async with httpx.AsyncClient(trust_env=False, timeout=WAIT) as http:
        opened = await http.post(url, json=hello, headers=accept)
        session = {**accept, "Mcp-Session-Id": opened.headers["mcp-session-id"]}
        plain = await http.post(url, json=call(2, "asker__echo", {"text": "hi"}), headers=session)
        methods = {"methods": ["roots/list"]}
        async with http.stream(
            "POST", url, json=call(3, "asker__ask", methods), headers=session
        ) as asked:
            events = asked.aiter_lines()
            request = await next_message(events)
            roots = {"roots": [{"uri": "file:///raw"}]}
            answer = {"jsonrpc": "2.0", "id": request["id"], "result": roots}
            answered = await http.post(url, json=answer, headers=session)
            result = await next_message(events)

    assert plain.headers["content-type"] == "application/json"
    assert plain.json()["result"]["content"][0]["text"] == "hi"
    assert asked.headers["content-type"] == "text/event-stream"
    assert request == {
        "jsonrpc": "2.0",
        "id": "mcplocal-1",
        "method": "roots/list",
        "params": {},
    }
    assert answered.status_code == 202
    assert result["id"] == 3
    got = json.loads(result["result"]["content"][0]["text"])
    assert got["roots/list"]["result"] == roots


async def next_message(lines: AsyncIterator[str]) -> dict[str, Any]:
    """The next JSON-RPC message of an SSE stream."""
    async for line in lines:
        if line.startswith("data: "):
            message: dict[str, Any] = json.loads(line[len("data: ") :])
            return message
    raise AssertionError("the stream ended")
