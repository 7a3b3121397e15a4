"""An upstream's session that the server forgot is opened again, and ``logging/setLevel``
reaches the servers: against a real SDK server over streamable HTTP, served in this test.

The server's app is wrapped so that the test can make it forget mcplocal's session once: the
next POST naming a session names one the server never issued, so the SDK's own session
manager answers it 404 (``Session not found``), as a server or mcpd's relay does after a
restart.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio
import mcp_types as types
import pytest
import uvicorn
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel.server import Server
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mcpctl.mcplocal.aggregate import Aggregator
from mcpctl.mcplocal.projects import ProjectView
from mcpctl.mcplocal.upstreams import (
    HttpPools,
    Kind,
    SessionLost,
    Timeouts,
    UpstreamTarget,
    may_resend,
)
from tests.ready_server import ReadyServer

pytestmark = pytest.mark.anyio

SESSION = b"mcp-session-id"


@dataclass
class Counter:
    """What the server saw: the tool calls it ran and the logging levels it was set to."""

    calls: int = 0
    levels: list[str] = field(default_factory=list)
    forget_next: bool = False
    offer_channel: bool = False  # claim a relay channel (x-mcpctl-channel) it does not have
    channel_refusals: list[int] = field(default_factory=list)

    def server(self) -> Server[Any]:
        async def list_tools(
            ctx: ServerRequestContext[Any, Any], params: types.PaginatedRequestParams | None
        ) -> types.ListToolsResult:
            schema = {"type": "object", "properties": {}}
            return types.ListToolsResult(tools=[types.Tool(name="count", input_schema=schema)])

        async def call_tool(
            ctx: ServerRequestContext[Any, Any], params: types.CallToolRequestParams
        ) -> types.CallToolResult:
            self.calls += 1
            text = types.TextContent(type="text", text=f"call {self.calls}")
            return types.CallToolResult(content=[text])

        async def set_level(
            ctx: ServerRequestContext[Any, Any], params: types.SetLevelRequestParams
        ) -> types.EmptyResult:
            self.levels.append(params.level)
            return types.EmptyResult()

        server: Server[Any] = Server("counter", on_list_tools=list_tools, on_call_tool=call_tool)
        server.add_request_handler("logging/setLevel", types.SetLevelRequestParams, set_level)
        return server

    def forgetful(self, app: ASGIApp) -> ASGIApp:
        async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
            if self.forget_next and scope["type"] == "http" and scope["method"] == "POST":
                headers = [(k, v) for k, v in scope["headers"] if k != SESSION]
                if len(headers) != len(scope["headers"]):
                    self.forget_next = False
                    scope = {**scope, "headers": [*headers, (SESSION, b"forgotten")]}
            if not self.offer_channel or scope["type"] != "http":
                await app(scope, receive, send)
                return
            ndjson = (b"content-type", b"application/x-ndjson") in scope["headers"]

            async def offering(message: Message) -> None:
                if message["type"] == "http.response.start":
                    extra = [(b"x-mcpctl-channel", b"ndjson")]
                    message = {**message, "headers": [*message.get("headers", []), *extra]}
                    if ndjson:
                        self.channel_refusals.append(message["status"])
                await send(message)

            await app(scope, receive, offering)

        return wrapped


@asynccontextmanager
async def serve(counter: Counter) -> AsyncIterator[str]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    app = counter.forgetful(counter.server().streamable_http_app())
    server = ReadyServer(uvicorn.Config(app, log_level="warning", lifespan="on"))
    async with anyio.create_task_group() as tg:
        tg.start_soon(lambda: server.serve(sockets=[sock]))
        with anyio.fail_after(30):
            await server.ready.wait()
        try:
            yield f"http://127.0.0.1:{port}/mcp"
        finally:
            server.should_exit = True
    sock.close()


@asynccontextmanager
async def aggregator(url: str) -> AsyncIterator[Aggregator]:
    async def changed(kinds: frozenset[Kind]) -> None:
        pass

    pools = HttpPools(15.0)
    async with anyio.create_task_group() as tg:
        agg = Aggregator(
            "p",
            locator=lambda server: UpstreamTarget(url),
            timeouts=Timeouts(connect=15.0),
            list_wait=15.0,
            tg=tg,
            on_change=changed,
            pools=pools,
        )
        await agg.set_project(ProjectView("p", ("counter",)))
        try:
            await agg.settle()
            yield agg
        finally:
            await agg.aclose()
            await pools.aclose()


def call(name: str) -> dict[str, Any]:
    return {"name": name, "arguments": {}}


def text(result: dict[str, Any]) -> list[dict[str, Any]]:
    content: list[dict[str, Any]] = result["content"]
    return content


async def test_a_call_on_a_session_the_server_forgot_is_sent_once_on_a_new_session() -> None:
    counter = Counter()
    async with serve(counter) as url, aggregator(url) as agg:
        first = await agg.call_tool(call("counter__count"), None)
        assert text(first) == [{"type": "text", "text": "call 1"}]

        counter.forget_next = True
        again = await agg.call_tool(call("counter__count"), None)
        assert not counter.forget_next  # the call did meet the forgotten session
        assert text(again) == [{"type": "text", "text": "call 2"}]
        assert counter.calls == 2  # run once: the 404 proved the first try was not


def test_only_a_tool_call_the_server_may_have_received_is_not_sent_again() -> None:
    terminated = SessionLost("the server no longer knows the session", unprocessed=True)
    broken = SessionLost("the connection broke", unprocessed=False)
    assert may_resend("tools/call", terminated)
    assert not may_resend("tools/call", broken)
    assert may_resend("resources/read", broken)


async def test_logging_set_level_reaches_every_server_that_offers_logging() -> None:
    counter = Counter()
    async with serve(counter) as url, aggregator(url) as agg:
        await agg.set_logging_level("debug")
        assert counter.levels == ["debug"]

        counter.forget_next = True  # sent again on a new session, as other requests are
        await agg.set_logging_level("error")
        assert counter.levels == ["debug", "error"]


async def test_a_server_that_offers_a_channel_it_cannot_open_gets_plain_requests() -> None:
    counter = Counter(offer_channel=True)
    async with serve(counter) as url, aggregator(url) as agg:
        first = await agg.call_tool(call("counter__count"), None)
        second = await agg.call_tool(call("counter__count"), None)

    assert len(counter.channel_refusals) == 1
    assert counter.channel_refusals[0] >= 400
    assert [text(first), text(second)] == [
        [{"type": "text", "text": "call 1"}],
        [{"type": "text", "text": "call 2"}],
    ]
