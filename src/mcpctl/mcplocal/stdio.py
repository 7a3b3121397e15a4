"""``mcplocal stdio``: one project endpoint served over stdin/stdout, in process.

In process rather than bridged to a running ``mcplocal serve``: a client that only speaks
stdio (and starts mcplocal itself) then needs nothing else running, and the path has one hop
less. It is the same project runtime as the HTTP endpoint (aggregation, naming, watch,
list_changed) and the same dispatcher; the connection is the one session, so notifications
go straight to stdout, and so do the servers' requests of the client (sampling, elicitation,
roots), whose answers come back on stdin. Messages are newline-delimited JSON-RPC (the MCP
stdio transport);
requests are handled concurrently, so a long call never holds up the others, and
``notifications/cancelled`` cancels one. Only the capture endpoint is HTTP-only.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any, BinaryIO

import anyio
from anyio.abc import TaskGroup

from mcpctl.jsonrpc import asks, protocol
from mcpctl.jsonrpc.protocol import BadRequest, JsonObject
from mcpctl.mcplocal.app import endpoint_config
from mcpctl.mcplocal.clients import ClientSession
from mcpctl.mcplocal.endpoint import ProjectRuntime, open_project
from mcpctl.mcplocal.projects import McpdProjects, ProjectSource
from mcpctl.mcplocal.settings import Settings
from mcpctl.mcplocal.upstreams import HttpPools, Locator, relay_locator

SESSION_ID = "stdio"


class StdioTransport:
    """Newline-delimited JSON-RPC between ``stdin``/``stdout`` and a project runtime."""

    def __init__(self, runtime: ProjectRuntime, stdin: BinaryIO, stdout: BinaryIO) -> None:
        self.runtime = runtime
        self._stdin = anyio.wrap_file(stdin)
        self._stdout = anyio.wrap_file(stdout)
        self._lock = anyio.Lock()
        self._pending: set[asyncio.Task[None]] = set()
        self.session: ClientSession = runtime.clients.open(protocol.LATEST_VERSION, SESSION_ID)
        self.session.outlet = self._later

    async def run(self) -> None:
        """Serve until stdin closes; requests still running are then cancelled."""
        try:
            async with anyio.create_task_group() as tg:
                async for line in self._stdin:
                    if line.strip():
                        await self._received(line, tg)
                tg.cancel_scope.cancel()
        finally:
            await self.runtime.end_session(SESSION_ID)

    async def _received(self, line: bytes, tg: TaskGroup) -> None:
        try:
            message = protocol.parse_message(line)
        except BadRequest as exc:
            await self._write(protocol.encode(protocol.error_of(None, exc)))
            return
        method = message.get("method")
        if method is None:
            self.session.asks.answered(message)  # the answer to a server's request
            return
        if "id" not in message:
            if method == "notifications/cancelled":
                params = message.get("params")
                if isinstance(params, dict):
                    self.session.cancel(params.get("requestId"))
            return
        if method == "initialize":
            version, result = self.runtime.dispatcher.initialize(message.get("params"))
            self.session.version = version
            self.session.capabilities = asks.capabilities_of(message.get("params"))
            await self._write(protocol.encode(protocol.result(message["id"], result)))
            return
        tg.start_soon(self._request, message)

    async def _request(self, message: JsonObject) -> None:
        request_id = message["id"]
        token = protocol.progress_token_of(message.get("params"))

        async def progress(params: JsonObject) -> None:
            note = {
                "jsonrpc": "2.0",
                "method": "notifications/progress",
                "params": {**params, "progressToken": token},
            }
            await self._write(protocol.encode(note))

        task = asyncio.current_task()
        assert task is not None
        self.session.inflight[request_id] = task
        try:
            data = await self.runtime.dispatcher.answer(
                self.session, message, progress if token is not None else None
            )
        except asyncio.CancelledError:
            if self.session.closed:
                raise
            # Cancelled by the client: no answer, as the MCP spec asks of the receiver.
            self._uncancel()
            return
        finally:
            self.session.inflight.pop(request_id, None)
        await self._write(data)

    @staticmethod
    def _uncancel() -> None:
        task = asyncio.current_task()
        if task is not None:
            task.uncancel()

    def _later(self, data: bytes) -> None:
        """The session's outlet: a notification, written as soon as stdout is free."""
        if data:
            task = asyncio.ensure_future(self._write(data))
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)

    async def _write(self, data: bytes) -> None:
        async with self._lock:
            await self._stdout.write(data + b"\n")
            await self._stdout.flush()


async def serve_stdio(
    settings: Settings,
    project: str,
    *,
    locator: Locator | None = None,
    projects: ProjectSource | None = None,
    stdin: Any = None,
    stdout: Any = None,
) -> None:
    """Serve ``project`` until stdin closes.

    Raises:
        NotFound: mcpd has no such project.
        Unavailable, Unauthenticated, PermissionDenied: mcpd could not tell.
    """
    token = settings.token.get_secret_value() if settings.token else None
    locate = locator or relay_locator(settings.upstream_url_template, settings.mcpd_url, token)
    source = projects or McpdProjects(settings.mcpd_url, token)
    pools = HttpPools(settings.connect_timeout)
    try:
        async with open_project(
            project,
            source=source,
            locator=locate,
            config=endpoint_config(settings),
            pools=pools,
        ) as runtime:
            transport = StdioTransport(
                runtime, stdin or sys.stdin.buffer, stdout or sys.stdout.buffer
            )
            await transport.run()
    finally:
        await pools.aclose()
        if projects is None:
            await source.aclose()
