"""Shared fixtures: a fresh database per test on SQLite and on the real PostgreSQL, the mcpd
app in process, and a live mcpd on a loopback port for CLI tests.

PostgreSQL comes from MCPCTL_TEST_POSTGRES_URL (default: the local server, trust auth). When it
cannot be reached the PostgreSQL variants skip loudly; in CI (CI=true) they fail instead.
"""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
import pytest
import uvicorn
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from mcpctl.mcpd.app import create_app
from mcpctl.mcpd.settings import Settings
from mcpctl.mcpd.state import AppState

POSTGRES_URL = os.environ.get(
    "MCPCTL_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


@dataclass(frozen=True)
class Database:
    engine: str
    url: str
    schema: str | None = None


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _postgres_problem() -> str | None:
    async def probe() -> None:
        conn = await asyncpg.connect(POSTGRES_URL, timeout=3)
        await conn.close()

    try:
        asyncio.run(probe())
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        return f"{exc.__class__.__name__}: {exc}"
    return None


@pytest.fixture(scope="session")
def postgres_url() -> str:
    problem = _postgres_problem()
    if problem:
        message = (
            f"PostgreSQL at {POSTGRES_URL} is not reachable ({problem}); "
            "start it (see docs/development.md) or set MCPCTL_TEST_POSTGRES_URL"
        )
        if IN_CI:
            pytest.fail("CI must run the PostgreSQL suites: " + message)
        pytest.skip("!!! SKIPPING POSTGRESQL SUITE: " + message)
    return POSTGRES_URL


async def _pg(sql: str) -> None:
    conn = await asyncpg.connect(POSTGRES_URL)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture(
    params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)],
)
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """A fresh, empty database: a SQLite file, or a new schema on the real PostgreSQL."""
    if request.param == "sqlite":
        yield Database("sqlite", f"sqlite:///{tmp_path / 'mcpd.db'}")
        return
    url = request.getfixturevalue("postgres_url")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    asyncio.run(_pg(f'CREATE SCHEMA "{schema}"'))
    try:
        yield Database("postgres", url, schema)
    finally:
        asyncio.run(_pg(f'DROP SCHEMA "{schema}" CASCADE'))


@pytest.fixture
def settings(tmp_path: Path, database: Database) -> Settings:
    """mcpd settings on the test's database; the template catalog is empty unless a test says."""
    (tmp_path / "templates").mkdir(exist_ok=True)
    return Settings(
        data_dir=tmp_path / "data",
        database_url=database.url,
        database_schema=database.schema,
        templates_dir=tmp_path / "templates",
    )


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    """The started app itself, so tests can also reach its state (see ``state_of``)."""
    application = create_app(settings)
    async with LifespanManager(application):
        yield application


def state_of(app: FastAPI) -> AppState:
    state: AppState = app.state.mcpd
    return state


def admin_token_of(settings: Settings) -> str:
    return (settings.data_dir / "admin.token").read_text().strip()


@pytest.fixture
async def api(app: FastAPI, settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client on the in-process app, as the bootstrap admin."""
    transport = httpx.ASGITransport(app=app)
    headers = {"Authorization": f"Bearer {admin_token_of(settings)}"}
    async with httpx.AsyncClient(
        transport=transport, base_url="http://mcpd.test", headers=headers
    ) as client:
        yield client


@dataclass(frozen=True)
class LiveMcpd:
    url: str
    token: str
    settings: Settings


class _Server(uvicorn.Server):
    """uvicorn that says when it is ready and stops when told, instead of polling a flag
    every 100 ms: CLI tests start and stop one mcpd each, so that latency adds up."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        await super().startup(sockets)
        if not self.should_exit:
            self.ready.set()

    async def main_loop(self) -> None:
        assert self._stop is not None
        await self.on_tick(0)  # sets the default response headers
        await self._stop.wait()

    def stop(self) -> None:
        self.should_exit = True
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)


@contextmanager
def serve_mcpd(settings: Settings) -> Iterator[LiveMcpd]:
    """mcpd served by uvicorn on a free loopback port, in a thread.

    The socket names IPPROTO_TCP: asyncio only sets TCP_NODELAY on connections whose socket
    says so, and without it every response on a kept-alive connection waits ~40 ms for a
    delayed ACK (Nagle), which made each CLI call ten times slower.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = _Server(uvicorn.Config(create_app(settings), log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    for _ in range(600):
        if server.ready.wait(0.05) or not thread.is_alive():
            break
    if not server.ready.is_set():
        pytest.fail("mcpd did not start within 30 s")
    try:
        yield LiveMcpd(f"http://127.0.0.1:{port}", admin_token_of(settings), settings)
    finally:
        server.stop()
        thread.join(timeout=30)
        sock.close()


@pytest.fixture
def live_mcpd(settings: Settings) -> Iterator[LiveMcpd]:
    """A live mcpd on the test's database, for CLI tests."""
    with serve_mcpd(settings) as live:
        yield live


# -- Docker engine (scripts/docker-engine starts a private one and builds the test images) --

DOCKER_IMAGES = ("mcpctl-test/busybox:1", "mcpctl-test/python-time:2026.10.19")


def _docker_problem(host: str) -> str | None:
    import docker
    import docker.errors

    try:
        client = docker.DockerClient(base_url=host, timeout=10)
    except docker.errors.DockerException as exc:
        return f"{exc.__class__.__name__}: {exc}"
    try:
        client.ping()
        for image in DOCKER_IMAGES:
            client.images.get(image)
    except docker.errors.DockerException as exc:
        return f"{exc.__class__.__name__}: {exc}"
    finally:
        client.close()
    return None


@pytest.fixture(scope="session")
def docker_host() -> str:
    """The DOCKER_HOST of the test engine (MCPCTL_TEST_DOCKER_HOST, else the socket that
    scripts/docker-engine starts). Without one the Docker suites skip loudly; in CI they fail."""
    default = Path(__file__).resolve().parent.parent / ".tools" / "docker.sock"
    host = os.environ.get("MCPCTL_TEST_DOCKER_HOST") or f"unix://{default}"
    problem = _docker_problem(host)
    if problem:
        message = (
            f"no usable Docker engine at {host} ({problem}); "
            "run scripts/docker-engine (see docs/development.md)"
        )
        if IN_CI:
            pytest.fail("CI must run the Docker suites: " + message)
        pytest.skip("!!! SKIPPING DOCKER SUITE: " + message)
    return host
