"""The external runtime: a remote streamable-HTTP MCP server that mcpd does not run.

The handle only carries the URL and the headers (``spec.headers``, values resolved from
secrets: e.g. ``Authorization: Bearer ...``); the relay connects to it. ``wait()`` returns when
the handle is stopped, so an external instance never "crashes"; an unreachable URL shows up as
errors of the calls that use it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from mcpctl.errors import InvalidInput
from mcpctl.mcpd.runtime.base import Handle, LaunchSpec, StderrSink, StdioStream


class ExternalHandle(Handle):
    pid = None
    container_id = None
    stdio: StdioStream | None = None

    def __init__(self, url: str, headers: Mapping[str, str]) -> None:
        self.url: str | None = url
        self.headers = dict(headers)
        self.identity = url
        self._stopped = asyncio.Event()

    async def wait(self) -> int | None:
        await self._stopped.wait()
        return None

    async def stop(self, grace: float) -> None:
        self._stopped.set()


class ExternalRuntime:
    name = "external"

    async def start(self, spec: LaunchSpec, on_stderr: StderrSink) -> ExternalHandle:
        if not spec.url:
            raise InvalidInput(f"server {spec.server!r}: spec.url is required for external")
        return ExternalHandle(spec.url, spec.headers)

    async def reap(self) -> list[str]:
        return []

    async def close(self) -> None:
        return None
