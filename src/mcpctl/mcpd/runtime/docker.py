"""The docker runtime: one container per instance through the Docker Engine API.

Decisions:

- The engine is ``MCPD_DOCKER_HOST``, else ``DOCKER_HOST``, else the engine's default socket;
  Podman works through its Docker-compatible socket. The (blocking) docker SDK runs in worker
  threads; the container's stdio runs on the event loop.
- Containers are named ``mcpctl-<instance id>`` and labelled ``mcpctl.owner=<mcpd id>``,
  ``mcpctl.instance=<id>``, ``mcpctl.server=<name>``; ``reap()`` removes every container with
  this mcpd's owner label. Containers are removed when their instance stops (not
  ``auto_remove``, so an exit code can still be read after a crash).
- stdio servers get ``network_mode="none"``: they talk only through stdin/stdout. mcpd attaches
  (``attach_socket``) before starting the container, so no output is lost; stdout and stderr
  arrive in multiplexed frames (an 8-byte header: stream type, 3 zero bytes, big-endian
  length), stdin is written raw. ``stdin_once`` makes closing our side close the server's
  stdin, the graceful stop of the MCP stdio lifecycle.
- http servers: the container port and path come from ``spec.url`` (the URL inside the
  container, e.g. ``http://localhost:3001/mcp``); the port is published on 127.0.0.1 only, on a
  port the engine picks, and the handle's URL points there. Their output goes to the logs.
- The end of the attach stream means the container exited; its exit code is then read with
  ``inspect`` (no thread blocks per running container).
- A missing image is pulled once; if that fails the start fails with the engine's reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import docker
import docker.errors

from mcpctl.errors import InvalidInput, Unavailable
from mcpctl.mcpd.runtime.base import (
    MAX_MESSAGE_BYTES,
    Handle,
    LaunchSpec,
    StderrSink,
    StdioStream,
    expand_args,
)

log = logging.getLogger(__name__)

OWNER_LABEL = "mcpctl.owner"
_STDOUT, _STDERR = 1, 2


class _Lines:
    """Splits a byte stream into lines."""

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, data: bytes) -> list[bytes]:
        self._buffer += data
        *lines, self._buffer = self._buffer.split(b"\n")
        if len(self._buffer) > MAX_MESSAGE_BYTES:
            raise ValueError(f"a message longer than {MAX_MESSAGE_BYTES} bytes")
        return lines

    def rest(self) -> bytes:
        rest, self._buffer = self._buffer, b""
        return rest


class _AttachedStream(StdioStream):
    """The container's stdin/stdout over the attach socket (see the module docstring)."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        on_stderr: StderrSink,
        stdout_is_log: bool,
    ) -> None:
        self._reader = reader
        self._writer = writer
        self._on_stderr = on_stderr
        self._stdout_is_log = stdout_is_log
        self._messages: asyncio.Queue[bytes | None] = asyncio.Queue()
        self.ended = asyncio.Event()
        self._task = asyncio.create_task(self._demux())

    async def _demux(self) -> None:
        out, err = _Lines(), _Lines()
        try:
            while True:
                header = await self._reader.readexactly(8)
                size = int.from_bytes(header[4:8], "big")
                payload = await self._reader.readexactly(size) if size else b""
                if header[0] == _STDERR or (header[0] == _STDOUT and self._stdout_is_log):
                    for line in err.feed(payload):
                        self._on_stderr(line.decode("utf-8", "replace").rstrip())
                elif header[0] == _STDOUT:
                    for line in out.feed(payload):
                        if line.strip():
                            self._messages.put_nowait(line.strip())
        except (asyncio.IncompleteReadError, ConnectionError, OSError, ValueError):
            pass
        finally:
            if rest := err.rest().strip():
                self._on_stderr(rest.decode("utf-8", "replace"))
            if rest := out.rest().strip():
                self._messages.put_nowait(rest)
            self._messages.put_nowait(None)
            self.ended.set()

    async def read_message(self) -> bytes | None:
        if self.ended.is_set() and self._messages.empty():
            return None
        return await self._messages.get()

    async def write(self, data: bytes) -> None:
        try:
            self._writer.write(data)
            await self._writer.drain()
        except (BrokenPipeError, ConnectionResetError, RuntimeError) as exc:
            raise ConnectionError("the container's stdin is closed") from exc

    def close_stdin(self) -> None:
        with contextlib.suppress(OSError, RuntimeError):
            if self._writer.can_write_eof():
                self._writer.write_eof()

    async def close(self) -> None:
        self._writer.close()
        with contextlib.suppress(OSError, ConnectionError):
            await self._writer.wait_closed()
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


class DockerHandle(Handle):
    pid = None

    def __init__(
        self,
        runtime: DockerRuntime,
        container_id: str,
        stream: _AttachedStream,
        url: str | None,
        headers: Mapping[str, str],
    ) -> None:
        self._runtime = runtime
        self.container_id: str | None = container_id
        self.identity = f"container {container_id[:12]}"
        self._stream = stream
        self.stdio: StdioStream | None = None if url else stream
        self.url = url
        self.headers = headers
        self._stopping: asyncio.Task[None] | None = None

    async def wait(self) -> int | None:
        await self._stream.ended.wait()
        return await self._runtime.exit_code(self._cid)

    @property
    def _cid(self) -> str:
        assert self.container_id is not None
        return self.container_id

    async def stop(self, grace: float) -> None:
        if self._stopping is None:
            self._stopping = asyncio.create_task(self._stop(grace))
        await asyncio.shield(self._stopping)

    async def _stop(self, grace: float) -> None:
        self._stream.close_stdin()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stream.ended.wait(), grace / 2)
        await self._runtime.remove(self._cid, grace / 2)
        await self._stream.close()


class DockerRuntime:
    """Runs instances as containers; see the module docstring for the decisions."""

    name = "docker"

    def __init__(self, owner: str, host: str | None = None) -> None:
        self.owner = owner
        self.host = host
        self._client: Any = None  # a docker.DockerClient once connected (the SDK is untyped)

    async def _api(self) -> Any:
        if self._client is None:
            self._client = await asyncio.to_thread(self._connect)
        return self._client.api

    def _connect(self) -> Any:
        try:
            if self.host:
                return docker.DockerClient(base_url=self.host)
            return docker.from_env()
        except docker.errors.DockerException as exc:
            raise Unavailable(f"cannot reach the Docker engine: {exc}") from exc

    async def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return await asyncio.to_thread(fn, *args, **kwargs)
        except docker.errors.DockerException as exc:
            raise Unavailable(f"Docker engine: {what} failed: {_explain(exc)}") from exc

    async def start(self, spec: LaunchSpec, on_stderr: StderrSink) -> DockerHandle:
        if not spec.image:
            raise InvalidInput(f"server {spec.server!r}: spec.image is required for docker")
        api = await self._api()
        http = spec.transport == "http"
        port, path = _container_port(spec) if http else (None, "")
        host_config = api.create_host_config(
            network_mode=None if http else "none",
            port_bindings={port: ("127.0.0.1", None)} if port else None,
        )
        create = {
            "image": spec.image,
            "name": f"mcpctl-{spec.instance_id}",
            "command": list(expand_args(spec.args, spec.env)) or None,
            "entrypoint": [spec.command] if spec.command else None,
            "environment": dict(spec.env),
            "labels": dict(spec.labels),
            # With stdin open and not detached, the SDK sets StdinOnce (see the docstring).
            "stdin_open": not http,
            "tty": False,
            "host_config": host_config,
            "ports": [port] if port else None,
        }
        try:
            created = await asyncio.to_thread(api.create_container, **create)
        except docker.errors.ImageNotFound:
            on_stderr(f"image {spec.image} not found on the engine; pulling it")
            await self._call(f"pulling {spec.image}", api.pull, spec.image)
            created = await self._call("creating the container", api.create_container, **create)
        except docker.errors.DockerException as exc:
            raise Unavailable(
                f"Docker engine: creating the container failed: {_explain(exc)}"
            ) from exc
        cid = str(created["Id"])
        try:
            stream = await self._attach(api, cid, on_stderr, stdout_is_log=http)
            await self._call("starting the container", api.start, cid)
            url = None
            if port:
                info = await self._call("inspecting the container", api.inspect_container, cid)
                host_port = info["NetworkSettings"]["Ports"][f"{port}/tcp"][0]["HostPort"]
                url = f"http://127.0.0.1:{host_port}{path}"
        except BaseException:
            await self.remove(cid, 0)
            raise
        return DockerHandle(self, cid, stream, url, spec.headers)

    async def _attach(
        self, api: Any, cid: str, on_stderr: StderrSink, *, stdout_is_log: bool
    ) -> _AttachedStream:
        params = {"stdin": 1, "stdout": 1, "stderr": 1, "stream": 1}
        raw = await self._call("attaching", api.attach_socket, cid, params)
        sock: socket.socket = getattr(raw, "_sock", raw)
        # Our own descriptor: the SDK's response object may close its copy whenever it likes.
        own = sock.dup()
        with contextlib.suppress(OSError):
            raw.close()
            sock.close()
        own.setblocking(False)
        reader, writer = await asyncio.open_connection(sock=own, limit=MAX_MESSAGE_BYTES)
        return _AttachedStream(reader, writer, on_stderr, stdout_is_log)

    async def exit_code(self, cid: str) -> int | None:
        api = await self._api()
        try:
            info = await asyncio.to_thread(api.inspect_container, cid)
        except docker.errors.DockerException:
            return None
        state = info.get("State") or {}
        return None if state.get("Running") else int(state.get("ExitCode", 0))

    async def remove(self, cid: str, grace: float) -> None:
        """Stop (SIGTERM, SIGKILL after ``grace``) and remove a container; never raises."""
        api = await self._api()
        with contextlib.suppress(docker.errors.DockerException):
            await asyncio.to_thread(api.stop, cid, timeout=max(0, round(grace)))
        try:
            await asyncio.to_thread(api.remove_container, cid, force=True)
        except docker.errors.NotFound:
            pass
        except docker.errors.DockerException as exc:
            log.warning("cannot remove container %s: %s", cid[:12], _explain(exc))

    def _missing_socket(self) -> bool:
        """True when the engine is a unix socket that does not exist (no engine here)."""
        host = self.host or os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
        return host.startswith("unix://") and not Path(host.removeprefix("unix://")).exists()

    async def reap(self) -> list[str]:
        if self._client is None and self._missing_socket():
            return []
        api = await self._api()
        found = await self._call(
            "listing containers",
            api.containers,
            all=True,
            filters={"label": f"{OWNER_LABEL}={self.owner}"},
        )
        reaped = []
        for container in found:
            cid = str(container["Id"])
            await self.remove(cid, 0)
            name = (container.get("Names") or [cid[:12]])[0].lstrip("/")
            reaped.append(f"container {name}")
        return reaped

    async def close(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await asyncio.to_thread(client.close)


def _container_port(spec: LaunchSpec) -> tuple[int, str]:
    """The container's TCP port and the path of an http server's ``spec.url``. (The SDK wants
    the port as a number: "3001/tcp" as a string is exposed wrongly and never published.)"""
    if not spec.url:
        raise InvalidInput(
            f"server {spec.server!r}: spec.url (the URL inside the container) is required "
            "for an http server run by docker"
        )
    parts = urlsplit(spec.url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return port, parts.path or "/"


def _explain(exc: docker.errors.DockerException) -> str:
    explanation = getattr(exc, "explanation", None)
    return str(explanation or exc)
