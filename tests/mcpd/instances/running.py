"""Start a real server through the process runtime with a Connection on it (test helper)."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

from mcpctl.mcpd.instances.connection import Connection
from mcpctl.mcpd.runtime.base import LaunchSpec
from mcpctl.mcpd.runtime.process import ProcessHandle, ProcessRuntime, basic_env

BIN = Path(sys.executable).parent
TIME_SERVER = str(BIN / "mcp-server-time")
GIT_SERVER = str(BIN / "mcp-server-git")
FIXTURE = str(Path(__file__).with_name("stdio_fixture.py"))
HTTP_FIXTURE = str(Path(__file__).with_name("http_fixture.py"))


def fixture_args(*args: str) -> list[str]:
    """The argv of the stdio fixture server (see stdio_fixture.py)."""
    return [sys.executable, FIXTURE, *args]


class Lines:
    """stderr lines as they arrive, with a wait for one (no polling)."""

    def __init__(self) -> None:
        self.items: list[str] = []
        self._changed = asyncio.Event()

    def append(self, line: str) -> None:
        self.items.append(line)
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    async def wait_for(self, prefix: str) -> str:
        while True:
            changed = self._changed
            for line in self.items:
                if line.startswith(prefix):
                    return line
            await changed.wait()


@dataclass
class Running:
    handle: ProcessHandle
    connection: Connection
    stderr: Lines = field(default_factory=Lines)


@asynccontextmanager
async def running(
    data_dir: Path,
    argv: list[str],
    env: dict[str, str] | None = None,
    name: str = "srv",
    client_features: tuple[str, ...] = (),
) -> AsyncIterator[Running]:
    runtime = ProcessRuntime(data_dir, basic_env({"PATH": "/usr/bin:/bin"}))
    stderr = Lines()
    spec = LaunchSpec(
        instance_id=f"{name}-test",
        server=name,
        command=argv[0],
        args=tuple(argv[1:]),
        env=env or {},
    )
    handle = await runtime.start(spec, stderr.append)
    assert handle.stdio is not None
    connection = Connection(handle.stdio, server=name, client_features=client_features)
    try:
        await connection.start(timeout=30)
        yield Running(handle, connection, stderr)
    finally:
        await connection.close()
        await handle.stop(5)


def text_of(result: dict[str, object]) -> str:
    content = result["content"]
    assert isinstance(content, list)
    return str(content[0]["text"])
