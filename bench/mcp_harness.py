"""Machinery for the MCP benchmarks: the echo server as an mcpd Server, projects, a running
``mcplocal serve``, the peers' gateways, and two clients (the SDK's and a lean raw one).

The SDK client (``mcp.Client``, ``mode="legacy"``, no cache) is what users run; tool calls go
through ``session.send_request`` so no output-schema validation or re-listing is timed. The
raw client speaks JSON-RPC over one keep-alive HTTP/1.1 connection with nothing but
``json``: where many calls per second are measured, the client's own cost must stay small
(everything here shares the same 2 cores).
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx2
import mcp_types as types
from mcp import Client, StdioServerParameters
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client

from bench.harness import Mcpd, child_env, free_port, profiler, progress, stop

ROOT = Path(__file__).resolve().parents[1]
ECHO_SERVER = Path(__file__).with_name("echo_server.py")
LEAN_ECHO_SERVER = Path(__file__).with_name("lean_echo_server.py")
LEAN_HOPS = Path(__file__).with_name("lean_hops.py")
MCPLOCAL_SHIM = Path(__file__).with_name("run_mcplocal.py")
PEERS = ROOT / ".tools" / "bench-peers"
PROTOCOL_VERSION = "2025-11-25"


def echo_argv(tools: int = 1, *, lean: bool = False) -> list[str]:
    """The echo server's command: the SDK one, or (``lean``) the standard-library one."""
    script = LEAN_ECHO_SERVER if lean else ECHO_SERVER
    return [sys.executable, str(script), "--tools", str(tools)]


def echo_call(i: int) -> types.CallToolRequest:
    return types.CallToolRequest(
        params=types.CallToolRequestParams(name="echo", arguments={"message": f"hello {i}"})
    )


# -- mcpd objects -----------------------------------------------------------------------------


def put_echo_servers(
    mcpd: Mcpd, names: Sequence[str], tools: int = 1, *, lean: bool = False
) -> None:
    """Server objects running the echo server with the process runtime."""
    argv = echo_argv(tools, lean=lean)
    api = mcpd.client()
    try:
        for name in names:
            obj = {
                "apiVersion": "mcpctl/v1",
                "kind": "Server",
                "metadata": {"name": name},
                "spec": {"command": argv[0], "args": argv[1:]},
            }
            api.json("PUT", f"/api/v1/servers/{name}", obj)
    finally:
        api.close()


def put_project(mcpd: Mcpd, name: str, servers: Sequence[str]) -> None:
    api = mcpd.client()
    try:
        obj = {
            "apiVersion": "mcpctl/v1",
            "kind": "Project",
            "metadata": {"name": name},
            "spec": {"servers": list(servers)},
        }
        api.json("PUT", f"/api/v1/projects/{name}", obj)
    finally:
        api.close()


def relay_url(mcpd: Mcpd, server: str) -> str:
    return f"{mcpd.url}/api/v1/servers/{server}/mcp"


# -- child processes ---------------------------------------------------------------------------


def wait_http(proc: subprocess.Popen[bytes], url: str, log: Path, timeout: float = 60) -> None:
    """Until GET ``url`` answers below 500 (any answer proves the server listens)."""
    parts = urlsplit(url)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(
                f"{proc.args!r} exited {proc.returncode}:\n{log.read_text()[-3000:]}"
            )
        conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=1)
        try:
            conn.request("GET", parts.path or "/")
            if conn.getresponse().status < 500:
                return
        except OSError:
            pass
        finally:
            conn.close()
        time.sleep(0.05)
    raise RuntimeError(f"{url} did not answer within {timeout} s:\n{log.read_text()[-3000:]}")


@contextmanager
def background(
    argv: Sequence[str], ready_url: str, env: Mapping[str, str], name: str
) -> Iterator[subprocess.Popen[bytes]]:
    """A server subprocess, waited for at ``ready_url``, stopped with SIGINT; yields it."""
    with tempfile.TemporaryDirectory(prefix=f"mcpctl-bench-{name}-") as tmp:
        log = Path(tmp) / f"{name}.log"
        with log.open("wb") as log_fh:
            proc = subprocess.Popen(
                list(argv), env=dict(env), stdout=log_fh, stderr=subprocess.STDOUT, cwd=tmp
            )
        try:
            wait_http(proc, ready_url, log)
            yield proc
        finally:
            stop(proc)


@dataclass(frozen=True)
class Mcplocal:
    """A running ``mcplocal serve``: its base URL and process id."""

    url: str
    pid: int

    def project_url(self, project: str) -> str:
        return f"{self.url}/projects/{project}/mcp"


@contextmanager
def running_mcplocal(
    mcpd: Mcpd, settings: Mapping[str, str] | None = None, *, source: Path | None = None
) -> Iterator[Mcplocal]:
    """``mcplocal serve`` logged in to ``mcpd`` on a free port.

    ``settings``: more ``MCPLOCAL_*`` values, e.g. ``{"LIST_WAIT": "10"}``.
    ``source``: run it from another copy of the package (as ``running_mcpd``'s).
    """
    port = free_port()
    env = {k: v for k, v in mcpd.cli_env().items() if not k.startswith("MCPLOCAL_")}
    if source is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(source), env.get("PYTHONPATH", "")])
    env.update({f"MCPLOCAL_{k}": v for k, v in (settings or {}).items()})
    argv = [sys.executable, *profiler("mcplocal"), str(MCPLOCAL_SHIM), "serve"]
    argv += ["--port", str(port), "--log-level", "warning"]
    url = f"http://127.0.0.1:{port}"
    with background(argv, f"{url}/healthz", env, "mcplocal") as proc:
        yield Mcplocal(url, proc.pid)


@dataclass(frozen=True)
class LeanHops:
    """bench/lean_hops.py's two hops, running: the front's URL and both processes' ids."""

    url: str
    pids: dict[str, int]


@contextmanager
def running_lean_hops(server: Sequence[str], *, asgi: bool = False) -> Iterator[LeanHops]:
    """The lean hub with the stdio ``server`` behind it, and the lean front on a free port
    (``asgi``: the front as an ASGI app served by uvicorn)."""
    hub_port, front_port = free_port(), free_port()
    hub = subprocess.Popen(
        [sys.executable, str(LEAN_HOPS), "hub", "--port", str(hub_port), "--", *server],
        env=child_env(),
        stderr=subprocess.DEVNULL,
    )
    try:
        argv = [sys.executable, str(LEAN_HOPS), "front", "--port", str(front_port)]
        argv += ["--asgi"] if asgi else []
        url = f"http://127.0.0.1:{front_port}/mcp"
        with background([*argv, "--hub", str(hub_port)], url, child_env(), "lean-hops") as front:
            yield LeanHops(url, {"lean front": front.pid, "lean hub": hub.pid})
    finally:
        stop(hub)


def peer_bin(venv: str, program: str) -> Path | None:
    """A peer's program installed by scripts/bench-peers, or None."""
    path = PEERS / venv / "bin" / program
    return path if path.exists() else None


# -- the SDK client ----------------------------------------------------------------------------


@asynccontextmanager
async def sdk_session(
    target: str | StdioServerParameters, headers: Mapping[str, str] | None = None
) -> AsyncIterator[ClientSession]:
    """An initialized SDK client session over stdio (parameters) or streamable HTTP (a URL)."""
    async with AsyncExitStack() as stack:
        if isinstance(target, str):
            http = await stack.enter_async_context(
                httpx2.AsyncClient(headers=dict(headers or {}), timeout=httpx2.Timeout(60))
            )
            client = Client(
                streamable_http_client(target, http_client=http), mode="legacy", cache=None
            )
        else:
            client = Client(target, mode="legacy", cache=None)
        await stack.enter_async_context(client)
        yield client.session


async def timed_calls(
    session: ClientSession, count: int, start: int = 0, tool: str = "echo"
) -> list[float]:
    """``count`` sequential echo calls; the seconds each took."""
    out = []
    for i in range(start, start + count):
        request = echo_call(i)
        request.params.name = tool
        t0 = time.perf_counter()
        result = await session.send_request(request, types.CallToolResult)
        out.append(time.perf_counter() - t0)
        if result.is_error:
            raise RuntimeError(f"{tool} answered an error: {result.content}")
    return out


# -- the raw client -----------------------------------------------------------------------------


class RawMcp:
    """One MCP session over one keep-alive HTTP/1.1 connection, JSON-RPC with ``json`` only.

    Handles ``application/json`` and ``text/event-stream`` answers, Content-Length and
    chunked bodies: as much HTTP as the streamable-HTTP servers here send.
    """

    def __init__(self, url: str, headers: Mapping[str, str] | None = None) -> None:
        parts = urlsplit(url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self.path = parts.path
        self.headers = {
            "Host": f"{self.host}:{self.port}",
            "Accept": "application/json, text/event-stream",
            "Content-Type": "application/json",
            **(headers or {}),
        }
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.next_id = 0

    async def open(self) -> dict[str, Any]:
        """Connect and initialize; the InitializeResult."""
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        params = {
            "protocolVersion": PROTOCOL_VERSION,
            "capabilities": {},
            "clientInfo": {"name": "mcpctl-bench", "version": "1"},
        }
        status, headers, body = await self._post(self._message("initialize", params))
        if status != 200:
            raise RuntimeError(f"initialize: HTTP {status}: {body[:300]!r}")
        session = headers.get("mcp-session-id")
        if session:
            self.headers["Mcp-Session-Id"] = session
        self.headers["MCP-Protocol-Version"] = PROTOCOL_VERSION
        result = self._result(body, headers)
        await self._post(self._message("notifications/initialized", None, notify=True))
        return result

    async def request(self, method: str, params: Any = None) -> dict[str, Any]:
        status, headers, body = await self._post(self._message(method, params))
        if status != 200:
            raise RuntimeError(f"{method}: HTTP {status}: {body[:300]!r}")
        return self._result(body, headers)

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(OSError):
                await self.writer.wait_closed()

    def _message(self, method: str, params: Any, *, notify: bool = False) -> bytes:
        msg: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
        if params is not None:
            msg["params"] = params
        if not notify:
            self.next_id += 1
            msg["id"] = self.next_id
        return json.dumps(msg).encode()

    @staticmethod
    def _result(body: bytes, headers: Mapping[str, str]) -> dict[str, Any]:
        if headers.get("content-type", "").startswith("text/event-stream"):
            # The answer is the last ``data:`` event (progress would come before it).
            datas = [ln[5:].strip() for ln in body.decode().splitlines() if ln.startswith("data:")]
            message = json.loads(datas[-1])
        else:
            message = json.loads(body)
        if "error" in message:
            raise RuntimeError(f"JSON-RPC error: {message['error']}")
        result: dict[str, Any] = message["result"]
        return result

    async def _post(self, data: bytes) -> tuple[int, dict[str, str], bytes]:
        assert self.reader is not None
        assert self.writer is not None
        head = f"POST {self.path} HTTP/1.1\r\n" + "".join(
            f"{k}: {v}\r\n" for k, v in self.headers.items()
        )
        request = f"{head}Content-Length: {len(data)}\r\n\r\n".encode() + data
        self.writer.write(request)
        status_line = await self.reader.readline()
        if not status_line:
            # uvicorn closes a keep-alive connection idle for 5 s: reconnect once (same session).
            await self.close()
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
            self.writer.write(request)
            status_line = await self.reader.readline()
        status = int(status_line.split()[1])
        headers: dict[str, str] = {}
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            key, _, value = line.decode().partition(":")
            headers[key.strip().lower()] = value.strip()
        if "content-length" in headers:
            body = await self.reader.readexactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding") == "chunked":
            chunks = []
            while size := int((await self.reader.readline()).strip(), 16):
                chunks.append(await self.reader.readexactly(size))
                await self.reader.readline()
            await self.reader.readline()
            body = b"".join(chunks)
        else:
            body = b""
        return status, headers, body


async def raw_session(url: str, headers: Mapping[str, str] | None = None) -> RawMcp:
    client = RawMcp(url, headers)
    await client.open()
    return client


def echo_params(i: int, tool: str = "echo") -> dict[str, Any]:
    return {"name": tool, "arguments": {"message": f"hello {i}"}}


def progress_every(label: str, done: int, total: int) -> None:
    if total >= 1000 and done % 1000 == 0:
        progress(f"{label}: {done}/{total}")
