"""The relay against a live mcpd (uvicorn on a loopback port) with real MCP servers run by the
process runtime, and the real MCP SDK client over HTTP.

Servers: ``mcp-server-time`` and ``mcp-server-git`` (PyPI, in the venv),
``@modelcontextprotocol/server-everything`` (npm, installed by scripts/node-tools; without
Node or the package its tests skip loudly, in CI they fail) and the stdio fixture of
tests/mcpd/instances for faults (a crash mid-call, a call that hangs, list_changed).

Most modules run on SQLite only (the relay keeps nothing in the database); the tests of
tokens, permissions and audit rows run on both engines.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import httpx2
import mcp_types as types
import pytest
from mcp import Client
from mcp.client.session import IncomingMessage
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from mcpctl.mcpd.settings import Settings
from tests.conftest import IN_CI, LiveMcpd
from tests.mcpd.instances.running import GIT_SERVER, TIME_SERVER, fixture_args
from tests.mcpd.manifests import manifest, put

ROOT = Path(__file__).resolve().parents[3]
EVERYTHING = ROOT / ".tools/node/node_modules/@modelcontextprotocol/server-everything/dist/index.js"
WAIT = 30.0


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "instance_backoff_initial_seconds": 0.01,
            "instance_backoff_max_seconds": 0.05,
            "instance_stop_grace_seconds": 2.0,
        }
    )


def everything_spec() -> dict[str, Any]:
    node = shutil.which("node")
    problem = None
    if node is None:
        problem = "node is not installed"
    elif not EVERYTHING.exists():
        problem = f"{EVERYTHING.relative_to(ROOT)} is missing; run scripts/node-tools"
    if problem is not None:
        if IN_CI:
            pytest.fail(f"CI must run the Node-based relay tests: {problem}")
        pytest.skip(f"!!! SKIPPING NODE-BASED RELAY TEST: {problem}")
    return {"command": node, "args": [str(EVERYTHING), "stdio"]}


def git_repo(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    for args in (["init", "-q"], ["commit", "-q", "--allow-empty", "-m", "first commit"]):
        subprocess.run(
            ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
            cwd=path,
            check=True,
        )
    return path


def spec(kind: str, tmp: Path) -> dict[str, Any]:
    """The Server spec of a real server by kind: time, git, fixture or everything."""
    if kind == "time":
        return {"command": TIME_SERVER, "args": ["--local-timezone", "UTC"]}
    if kind == "git":
        return {"command": GIT_SERVER, "args": ["--repository", str(git_repo(tmp / "repo"))]}
    if kind == "fixture":
        argv = fixture_args()
        return {"command": argv[0], "args": argv[1:]}
    return everything_spec()


@asynccontextmanager
async def admin_client(live: LiveMcpd) -> AsyncIterator[httpx.AsyncClient]:
    """The REST API of the live mcpd, as the bootstrap admin."""
    async with httpx.AsyncClient(
        base_url=live.url, headers={"Authorization": f"Bearer {live.token}"}, trust_env=False
    ) as client:
        yield client


async def add_server(live: LiveMcpd, name: str, spec: dict[str, Any]) -> None:
    async with admin_client(live) as api:
        response = await put(api, manifest("Server", name, spec))
        assert response.is_success, response.text


@pytest.fixture
async def servers(live_mcpd: LiveMcpd, tmp_path: Path) -> LiveMcpd:
    """The live mcpd with the Python servers (and the fixture) defined by their kind's name."""
    for name in ("time", "git", "fixture"):
        await add_server(live_mcpd, name, spec(name, tmp_path))
    return live_mcpd


def relay_url(live: LiveMcpd, server: str) -> str:
    return f"{live.url}/api/v1/servers/{server}/mcp"


class Notifications:
    """What the server sent a client outside of responses, to wait on with a bound."""

    def __init__(self) -> None:
        self.messages: list[Any] = []
        self._changed = anyio.Event()

    async def __call__(self, message: IncomingMessage) -> None:
        if isinstance(message, Exception):
            return
        self.messages.append(message)
        changed, self._changed = self._changed, anyio.Event()
        changed.set()

    def count(self, kind: type[Any]) -> int:
        return sum(1 for m in self.messages if isinstance(m, kind))

    async def wait_for(self, kind: type[Any], after: int = 0) -> None:
        await self.wait_until(lambda: self.count(kind) > after)

    async def wait_until(self, done: Callable[[], bool]) -> None:
        with anyio.fail_after(WAIT):
            while not done():
                await self._changed.wait()


@asynccontextmanager
async def connect(
    live: LiveMcpd, server: str, token: str | None = None, **kwargs: Any
) -> AsyncIterator[Client]:
    """The MCP SDK client on ``server``'s relay endpoint (handshake era unless ``mode``)."""
    headers = {"Authorization": f"Bearer {token or live.token}"}
    kwargs.setdefault("mode", "legacy")
    async with (
        httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(WAIT, read=None)) as http,
        Client(
            streamable_http_client(relay_url(live, server), http_client=http),
            cache=None,
            **kwargs,
        ) as client,
    ):
        yield client


def text_of(result: types.CallToolResult) -> str:
    return "".join(c.text for c in result.content if isinstance(c, types.TextContent))


def mcp_error(exc: BaseException) -> MCPError:
    """The MCPError inside the task groups the SDK client wraps its failures in."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    assert isinstance(exc, MCPError), repr(exc)
    return exc


async def connect_error(live: LiveMcpd, server: str, token: str | None = None) -> MCPError:
    """The error the SDK client raises when it cannot open a session on ``server``."""
    try:
        async with connect(live, server, token):
            pass
    except BaseException as exc:  # the SDK wraps it in exception groups
        return mcp_error(exc)
    raise AssertionError(f"a session on {server!r} opened")
