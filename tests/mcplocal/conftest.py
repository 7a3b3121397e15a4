"""Fixtures for mcplocal: a live mcpd holding real servers and projects, and mcplocal itself
served on a loopback port in the test's event loop, reaching every server through mcpd's
relay (the default ``relay_locator``, ``{mcpd}/api/v1/servers/NAME/mcp`` with the token).

Servers are real Server objects that mcpd runs with the process runtime: mcp-server-time and
mcp-server-git (PyPI), ``@modelcontextprotocol/server-everything`` (npm, installed by
scripts/node-tools; without Node or the package the Node tests skip loudly, in CI they fail)
and ``probe_server.py`` (ours, for progress, cancellation and a custom error code).

mcplocal does not touch a database, so these tests run mcpd on SQLite only.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import httpx
import mcp_types as types
import pytest
import uvicorn
from mcp import Client
from mcp.client.session import IncomingMessage

from mcpctl.client.http import McpdClient
from mcpctl.mcpd.settings import Settings as McpdSettings
from mcpctl.mcplocal.app import AppState, McplocalApp, create_app
from mcpctl.mcplocal.settings import Settings
from tests.conftest import IN_CI, Database, LiveMcpd
from tests.ready_server import ReadyServer

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
PROBE = Path(__file__).with_name("probe_server.py")
EVERYTHING = ROOT / ".tools/node/node_modules/@modelcontextprotocol/server-everything/dist/index.js"
START_TIMEOUT = 30.0


@pytest.fixture
def database(tmp_path: Path) -> Database:
    return Database("sqlite", f"sqlite:///{tmp_path / 'mcpd.db'}")


@pytest.fixture
def settings(settings: McpdSettings) -> McpdSettings:
    """mcpd restarts a crashed server at once (the tests kill some)."""
    return settings.model_copy(
        update={"instance_backoff_initial_seconds": 0.01, "instance_backoff_max_seconds": 0.05}
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def drain_pipe(stream: Any) -> threading.Thread:
    """Keep reading a pipe we no longer care about, so the child never blocks on it."""
    thread = threading.Thread(target=lambda: [None for _ in iter(stream.readline, b"")])
    thread.daemon = True
    thread.start()
    return thread


# -- servers in mcpd -------------------------------------------------------------------------

Spec = dict[str, Any]


def time_spec() -> Spec:
    return {"command": str(BIN / "mcp-server-time"), "args": ["--local-timezone", "UTC"]}


def probe_spec() -> Spec:
    return {"command": sys.executable, "args": [str(PROBE)]}


def git_spec(repo: Path) -> Spec:
    return {"command": str(BIN / "mcp-server-git"), "args": ["--repository", str(repo)]}


def node_problem() -> str | None:
    if shutil.which("node") is None:
        return "node is not installed"
    if not EVERYTHING.exists():
        return f"{EVERYTHING.relative_to(ROOT)} is missing; run scripts/node-tools"
    return None


def everything_spec() -> Spec:
    problem = node_problem()
    if problem:
        if IN_CI:
            pytest.fail(f"CI must run the Node-based mcplocal tests: {problem}")
        pytest.skip(f"!!! SKIPPING NODE-BASED MCPLOCAL TEST: {problem}")
    return {"command": shutil.which("node"), "args": [str(EVERYTHING), "stdio"]}


def git_repo(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    for args in (["init", "-q"], ["commit", "-q", "--allow-empty", "-m", "first commit"]):
        subprocess.run(
            ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
            cwd=path,
            check=True,
        )
    return path


def define_servers(mcpd: LiveMcpd, **specs: Spec) -> None:
    """Server objects in mcpd, by name; mcpd starts each on its first use through the relay."""
    with McpdClient(mcpd.url, mcpd.token) as client:
        for name, spec in specs.items():
            obj = {"kind": "Server", "metadata": {"name": name}, "spec": spec}
            client.apply_object("servers", obj)


def apply_project(mcpd: LiveMcpd, name: str, servers: list[str], **spec: Any) -> None:
    with McpdClient(mcpd.url, mcpd.token) as client:
        obj = {"kind": "Project", "metadata": {"name": name}, "spec": {"servers": servers, **spec}}
        client.apply_object("projects", obj)


@pytest.fixture
def time_server(live_mcpd: LiveMcpd) -> str:
    define_servers(live_mcpd, time=time_spec())
    return "time"


@pytest.fixture
def probe(live_mcpd: LiveMcpd) -> str:
    define_servers(live_mcpd, probe=probe_spec())
    return "probe"


@pytest.fixture
def git_server(live_mcpd: LiveMcpd, tmp_path: Path) -> Path:
    """Server ``git`` on a fresh repository with one commit; the repository."""
    repo = git_repo(tmp_path / "repo")
    define_servers(live_mcpd, git=git_spec(repo))
    return repo


@pytest.fixture
def everything(live_mcpd: LiveMcpd) -> str:
    define_servers(live_mcpd, everything=everything_spec())
    return "everything"


async def instance_pid(mcpd: LiveMcpd, server: str) -> int:
    """The pid of ``server``'s running instance."""
    async with httpx.AsyncClient(
        base_url=mcpd.url, headers={"Authorization": f"Bearer {mcpd.token}"}
    ) as http:
        response = await http.get(f"/api/v1/instances/{server}")
    assert response.status_code == 200, response.text
    pid: int = response.json()["status"]["pid"]
    return pid


async def restart_server(mcpd: LiveMcpd, server: str) -> None:
    """`mcpctl restart server NAME`: a new instance from the current spec (out of CrashLoop)."""
    async with httpx.AsyncClient(
        base_url=mcpd.url, headers={"Authorization": f"Bearer {mcpd.token}"}, timeout=60
    ) as http:
        response = await http.post(f"/api/v1/servers/{server}/restart")
    assert response.status_code == 200, response.text


# -- mcplocal --------------------------------------------------------------------------------


@dataclass
class Mcplocal:
    base: str
    app: McplocalApp
    settings: Settings

    def url(self, project: str) -> str:
        return f"{self.base}/projects/{project}/mcp"

    @property
    def state(self) -> AppState:
        state: AppState = self.app.state.mcplocal
        return state


@asynccontextmanager
async def serve_mcplocal(mcpd: LiveMcpd, **overrides: Any) -> AsyncIterator[Mcplocal]:
    """mcplocal on a loopback port, in this event loop, reaching servers through the relay of
    ``mcpd`` (its default upstream locator)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    settings = Settings(
        port=port,
        mcpd_url=mcpd.url,
        token=mcpd.token,
        project_poll_interval=0.2,
        # The first request through the relay also starts the server's instance.
        list_wait=15.0,
        connect_timeout=15.0,
        reconnect_max_delay=0.5,
        **overrides,
    )
    app = create_app(settings)
    server = ReadyServer(
        uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=1, lifespan="on")
    )
    async with anyio.create_task_group() as tg:
        tg.start_soon(lambda: server.serve(sockets=[sock]))
        with anyio.fail_after(START_TIMEOUT):
            await server.ready.wait()
        try:
            yield Mcplocal(f"http://127.0.0.1:{port}", app, settings)
        finally:
            server.should_exit = True
    sock.close()


@pytest.fixture
async def mcplocal(live_mcpd: LiveMcpd) -> AsyncIterator[Mcplocal]:
    async with serve_mcplocal(live_mcpd) as served:
        yield served


# -- clients ---------------------------------------------------------------------------------


class Notifications:
    """What the server sent a client outside of responses, to wait on with a bound."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self._changed = anyio.Event()

    async def __call__(self, message: IncomingMessage) -> None:
        if isinstance(message, Exception):
            return
        self.counts[message.method] = self.counts.get(message.method, 0) + 1
        changed, self._changed = self._changed, anyio.Event()
        changed.set()

    async def wait_for(self, method: str, after: int, within: float) -> None:
        """Wait until ``method`` has arrived more than ``after`` times, at most ``within`` s."""
        with anyio.fail_after(within):
            while self.counts.get(method, 0) <= after:
                await self._changed.wait()


@asynccontextmanager
async def connect(url: str, **kwargs: Any) -> AsyncIterator[tuple[Client, Notifications]]:
    """A real SDK client on the handshake era (as Claude Code speaks), caching off."""
    notes = Notifications()
    async with Client(url, mode="legacy", cache=None, message_handler=notes, **kwargs) as client:
        yield client, notes


async def wait_listening(served: Mcplocal, project: str) -> None:
    """Wait until a client of ``project`` holds its event stream open (gets list_changed)."""
    capture = served.state.capture
    with anyio.fail_after(START_TIMEOUT):
        while not any(s["listening"] and s["project"] == project for s in capture.sessions()):
            await capture.changed()


def text_of(result: types.CallToolResult) -> str:
    return "".join(c.text for c in result.content if isinstance(c, types.TextContent))
