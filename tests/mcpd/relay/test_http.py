"""Servers that speak streamable HTTP themselves (here ``runtime: external`` pointing at
server-everything's own HTTP mode): the relay forwards requests and answers as they are."""

from __future__ import annotations

import os
import selectors
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from mcpctl.mcpd.settings import Settings
from tests.conftest import Database, LiveMcpd, serve_mcpd
from tests.mcpd.relay.conftest import add_server, connect, everything_spec, relay_url, text_of
from tests.mcpd.relay.test_access import audit_events
from tests.mcpd.relay.test_client_requests import Answers

pytestmark = pytest.mark.anyio


@pytest.fixture
def database(tmp_path: Path) -> Database:
    return Database("sqlite", f"sqlite:///{tmp_path / 'mcpd.db'}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def everything_http() -> Iterator[str]:
    """server-everything listening for streamable HTTP on a loopback port; its URL."""
    node = everything_spec()
    port = free_port()
    proc = subprocess.Popen(
        [node["command"], node["args"][0], "streamableHttp"],
        env={**os.environ, "PORT": str(port)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    assert proc.stderr is not None
    deadline = time.monotonic() + 30
    seen = b""
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stderr, selectors.EVENT_READ)
        while b"listening on port" not in seen.lower() and time.monotonic() < deadline:
            if sel.select(timeout=deadline - time.monotonic()):
                line = proc.stderr.readline()
                if not line:
                    break
                seen += line
    try:
        assert b"listening on port" in seen.lower(), seen.decode(errors="replace")
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        proc.kill()
        proc.wait(timeout=10)
        proc.stderr.close()


def external(url: str) -> dict[str, object]:
    return {
        "runtime": "external",
        "transport": "http",
        "url": url,
        "headers": [{"name": "X-Mcpctl-Test", "value": "yes"}],
    }


async def test_tools_prompts_and_progress_pass_through(
    live_mcpd: LiveMcpd, everything_http: str
) -> None:
    await add_server(live_mcpd, "remote", external(everything_http))
    seen: list[float] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append(progress)

    async with connect(live_mcpd, "remote") as client:
        info = client.server_info
        tools = await client.list_tools()
        echoed = await client.call_tool("echo", {"message": "through the relay"})
        prompts = await client.list_prompts()
        long = await client.call_tool(
            "trigger-long-running-operation",
            {"duration": 0.3, "steps": 3},
            progress_callback=on_progress,
        )

    assert info is not None
    assert info.name == "mcp-servers/everything"
    assert "echo" in {t.name for t in tools.tools}
    assert "through the relay" in text_of(echoed)
    assert prompts.prompts
    assert seen == [1, 2, 3]
    assert "completed" in text_of(long)


async def test_the_clients_token_is_checked_and_never_forwarded(
    live_mcpd: LiveMcpd, everything_http: str
) -> None:
    await add_server(live_mcpd, "remote", external(everything_http))
    body = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-11-25",
            "capabilities": {},
            "clientInfo": {"name": "t"},
        },
    }
    accept = {"Accept": "application/json, text/event-stream"}
    async with httpx.AsyncClient(trust_env=False) as http:
        refused = await http.post(relay_url(live_mcpd, "remote"), json=body, headers=accept)

    assert refused.status_code == 401


async def test_an_unreachable_server_is_503(live_mcpd: LiveMcpd) -> None:
    await add_server(live_mcpd, "gone", external(f"http://127.0.0.1:{free_port()}/mcp"))
    body = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
    headers = {
        "Accept": "application/json, text/event-stream",
        "Authorization": f"Bearer {live_mcpd.token}",
    }
    async with httpx.AsyncClient(trust_env=False) as http:
        response = await http.post(relay_url(live_mcpd, "gone"), json=body, headers=headers)

    assert response.status_code == 503
    assert "cannot be reached" in response.json()["error"]["message"]


async def test_tool_calls_to_http_servers_are_audited_too(
    settings: Settings, everything_http: str
) -> None:
    with serve_mcpd(settings) as live:
        await add_server(live, "remote", external(everything_http))
        async with connect(live, "remote") as client:
            await client.call_tool("echo", {"message": "do-not-record-me"})

    calls = [e for e in await audit_events(settings) if e["verb"] == "call"]

    assert [(e["name"], e["outcome"], e["details"]["tool"]) for e in calls] == [
        ("remote", "ok", "echo")
    ]
    assert "do-not-record-me" not in str(calls)


async def test_an_http_server_learns_only_the_client_features_its_spec_opts_in_to(
    live_mcpd: LiveMcpd, everything_http: str
) -> None:
    """server-everything offers its sampling and roots tools only to a client that declared
    the capability: the relay's filtered ``initialize`` decides which it sees."""
    answers = Answers()
    await add_server(live_mcpd, "plain", external(everything_http))
    await add_server(
        live_mcpd, "sampler", {**external(everything_http), "clientFeatures": ["sampling"]}
    )
    async with connect(live_mcpd, "plain", **answers.callbacks()) as client:
        plain = {t.name for t in (await client.list_tools()).tools}
    async with connect(live_mcpd, "sampler", **answers.callbacks()) as client:
        offered = {t.name for t in (await client.list_tools()).tools}
        sampled = await client.call_tool("trigger-sampling-request", {"prompt": "2+2?"})

    assert "echo" in plain
    assert not plain & {"trigger-sampling-request", "get-roots-list", "trigger-elicitation-request"}
    assert "trigger-sampling-request" in offered
    assert not offered & {"get-roots-list", "trigger-elicitation-request"}
    assert '"text": "4"' in text_of(sampled)
