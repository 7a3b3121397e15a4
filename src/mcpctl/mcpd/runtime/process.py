"""The process runtime: a local subprocess in its own session, speaking stdio, or streamable
HTTP on a loopback port (``transport: http``).

Decisions:

- Each instance is the leader of a new session (and so of its own process group); ``stop()``
  and reaping signal the whole group, so ``npx`` → ``node`` trees never outlive mcpd's intent.
- Stopping follows the MCP stdio lifecycle: close stdin, wait, SIGTERM the group, wait, SIGKILL
  the group, all within the grace period.
- The environment is the resolved server env plus a few basics taken from mcpd's own
  environment (``BASIC_ENV``: PATH, HOME, locale, TZ, TMPDIR, USER/LOGNAME) so that commands
  like ``npx`` or ``uvx`` resolve and have a home. Nothing else leaks: mcpd's own settings and
  secrets (``MCPD_*``, database URLs) never reach a server. Server env wins over the basics.
- The working directory is a private folder per server, ``<data_dir>/instances/<server>``.
- Every running instance has a pid file ``<data_dir>/instances/pids/<instance>.json`` with its
  pid, process group and kernel start time. At start, ``reap()`` kills what a killed mcpd left:
  if the recorded leader still lives with the recorded start time, or is gone while members of
  its group remain (the kernel hands out no pid that is a live group's id), every member of the
  group that started no earlier than the leader; a pid now held by another process (another
  start time) is left alone. Then the file is removed.
- ``transport: http``: the child serves streamable HTTP itself. Its port is the one
  ``spec.url`` names, if it names one (a command that listens on a fixed port); else a free
  loopback port mcpd picks at every start (bound to port 0 and released: another process could
  take it in between, which then fails the start like a server that never listens). The child
  gets the port as ``PORT`` in its environment (over a ``PORT`` of the spec's env) and as
  ``$(PORT)`` in its args. The handle's URL is ``http://127.0.0.1:PORT`` plus ``spec.url``'s
  path (``/mcp`` when it has none), as the docker runtime points at the loopback port it
  publishes. ``start()`` returns once the port accepts a connection, at most
  ``spec.start_timeout`` later; a child that exits first or never listens is stopped, and the
  start fails naming its last lines of output. Its stdin is /dev/null; stdout and stderr both go
  to the log; stopping begins with SIGTERM (there is no stdin to close).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
import time
from collections import deque
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

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

BASIC_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR", "USER", "LOGNAME")
_DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin"
LOOPBACK = "127.0.0.1"
DEFAULT_HTTP_PATH = "/mcp"
_OUTPUT_TAIL = 5  # lines of output named when an http server fails to start


def basic_env(environ: Mapping[str, str]) -> dict[str, str]:
    """The part of mcpd's environment every process instance gets."""
    env = {name: environ[name] for name in BASIC_ENV if name in environ}
    env.setdefault("PATH", _DEFAULT_PATH)
    return env


def process_start_time(pid: int) -> int | None:
    """The kernel's start time of ``pid`` (clock ticks since boot), None if it is gone."""
    stat = _stat(pid)
    return stat[1] if stat else None


def _stat(pid: int) -> tuple[int, int] | None:
    """(process group, start time) of a live ``pid`` from /proc; None if gone or a zombie."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # The command name (field 2) may hold spaces and parentheses: split after the last ')'.
    fields = raw[raw.rindex(")") + 2 :].split()
    if fields[0] in ("Z", "X"):
        return None
    return int(fields[2]), int(fields[19])


def group_members(pgid: int, started_from: int) -> list[int]:
    """Live processes in group ``pgid`` that started at or after ``started_from``."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        stat = _stat(int(entry.name))
        if stat and stat[0] == pgid and stat[1] >= started_from:
            members.append(int(entry.name))
    return members


def free_port() -> int:
    """A TCP port that is free on the loopback interface now (the kernel's pick)."""
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


def http_address(spec: LaunchSpec) -> tuple[int, str]:
    """The port an http server is to listen on and the path it serves (module docstring).

    Raises:
        InvalidInput: ``spec.url`` has a port that is not a number in range.
    """
    parts = urlsplit(spec.url or "")
    try:
        port = parts.port
    except ValueError as exc:
        raise InvalidInput(f"server {spec.server!r}: spec.url has an invalid port") from exc
    path = parts.path or DEFAULT_HTTP_PATH
    if parts.query:
        path = f"{path}?{parts.query}"
    return port or free_port(), path


async def _accepts(port: int) -> bool:
    """True if something accepts a TCP connection on the loopback ``port``."""
    try:
        _, writer = await asyncio.open_connection(LOOPBACK, port)
    except OSError:
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True


def _ended(code: int | None) -> str:
    if code is not None and code < 0:
        return f"was killed by signal {-code}"
    return f"exited with code {code}"


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


class _PipeStream(StdioStream):
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer

    async def read_message(self) -> bytes | None:
        while True:
            try:
                line = await self._reader.readuntil(b"\n")
            except asyncio.IncompleteReadError as exc:
                return exc.partial.strip() or None
            except asyncio.LimitOverrunError as exc:
                raise ValueError(f"a message longer than {MAX_MESSAGE_BYTES} bytes") from exc
            line = line.strip()
            if line:
                return line

    async def write(self, data: bytes) -> None:
        try:
            self._writer.write(data)
            await self._writer.drain()
        except (BrokenPipeError, ConnectionResetError) as exc:
            raise ConnectionError("the server's stdin is closed") from exc


class ProcessHandle(Handle):
    container_id = None
    headers: Mapping[str, str] = {}

    def __init__(
        self,
        proc: asyncio.subprocess.Process,
        pid_file: Path,
        on_stderr: StderrSink,
        start_time: int | None = None,
        url: str | None = None,
    ) -> None:
        assert proc.stdout is not None
        assert proc.stderr is not None
        self._proc = proc
        self.pid = proc.pid
        self.identity = f"pid {proc.pid}"
        self.pid_file = pid_file
        self._start_time = start_time
        self.url = url
        self._stdin = proc.stdin
        self.stdio: StdioStream | None = None
        pumps = [self._pump(proc.stderr, on_stderr)]
        if url is None:
            assert proc.stdin is not None
            self.stdio = _PipeStream(proc.stdout, proc.stdin)
        else:
            pumps.append(self._pump(proc.stdout, on_stderr))  # an http server's stdout is log
        self._pumps = [asyncio.create_task(pump) for pump in pumps]
        self._stopping: asyncio.Task[None] | None = None

    @staticmethod
    async def _pump(stream: asyncio.StreamReader, sink: StderrSink) -> None:
        while True:
            try:
                line = await stream.readline()
            except ValueError:
                sink("<a stderr line longer than the limit was dropped>")
                continue
            if not line:
                return
            sink(line.decode("utf-8", "replace").rstrip())

    async def wait(self) -> int | None:
        return await self._proc.wait()

    async def drain(self, seconds: float) -> None:
        """Wait, at most ``seconds``, until every line of output has gone to the sink."""
        await asyncio.wait(self._pumps, timeout=seconds)

    async def stop(self, grace: float) -> None:
        if self._stopping is None:
            self._stopping = asyncio.create_task(self._stop(grace))
        await asyncio.shield(self._stopping)

    async def _stop(self, grace: float) -> None:
        pgid = self.pid  # the session leader's pid is its group id
        if self._proc.returncode is None:
            term_after = 0.0
            if self.stdio is not None and self._stdin is not None:
                with contextlib.suppress(OSError, RuntimeError):
                    self._stdin.close()
                term_after = grace / 2
            if not await self._exited_within(term_after):
                _signal_group(pgid, signal.SIGTERM)
                if not await self._exited_within(grace - term_after):
                    _signal_group(pgid, signal.SIGKILL)
                    await self._proc.wait()
        # Whatever the leader left in its group (grandchildren) goes too, and is gone when
        # stop() returns (bounded: a process stuck in the kernel cannot hold mcpd up).
        _signal_group(pgid, signal.SIGKILL)
        if self._start_time is not None:
            for _ in range(100):  # up to ~2 s, checked every 20 ms
                if not group_members(pgid, self._start_time):
                    break
                await asyncio.sleep(0.02)
        await self.drain(1.0)
        for pump in self._pumps:
            pump.cancel()
        self.pid_file.unlink(missing_ok=True)

    async def _exited_within(self, seconds: float) -> bool:
        try:
            await asyncio.wait_for(self._proc.wait(), seconds)
        except TimeoutError:
            return False
        return True


class ProcessRuntime:
    """Runs instances as local processes; see the module docstring for the decisions."""

    name = "process"

    def __init__(self, data_dir: Path, base_env: Mapping[str, str]) -> None:
        self.work_root = data_dir / "instances"
        self.pid_dir = self.work_root / "pids"
        self.base_env = dict(base_env)

    async def start(self, spec: LaunchSpec, on_stderr: StderrSink) -> ProcessHandle:
        if not spec.command:
            raise InvalidInput(f"server {spec.server!r}: spec.command is required to run it")
        workdir = self.work_root / spec.server
        workdir.mkdir(parents=True, exist_ok=True)
        self.pid_dir.mkdir(parents=True, exist_ok=True)
        http = spec.transport == "http"
        port, path = http_address(spec) if http else (0, "")
        given = {**spec.env, "PORT": str(port)} if http else dict(spec.env)
        args = expand_args(spec.args, given)
        try:
            proc = await asyncio.create_subprocess_exec(
                spec.command,
                *args,
                stdin=asyncio.subprocess.DEVNULL if http else asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env={**self.base_env, **given},
                cwd=workdir,
                start_new_session=True,
                limit=MAX_MESSAGE_BYTES,
            )
        except OSError as exc:
            raise Unavailable(
                f"server {spec.server!r}: cannot start {spec.command!r}: "
                f"{exc.strerror or exc.__class__.__name__}"
            ) from exc
        pid_file = self.pid_dir / f"{spec.instance_id}.json"
        start_time = process_start_time(proc.pid)
        record = {
            "pid": proc.pid,
            "pgid": proc.pid,
            "startTime": start_time,
            "server": spec.server,
            "recordedAt": time.time(),
        }
        pid_file.write_text(json.dumps(record))
        if not http:
            return ProcessHandle(proc, pid_file, on_stderr, start_time)
        tail: deque[str] = deque(maxlen=_OUTPUT_TAIL)

        def sink(line: str) -> None:
            tail.append(line)
            on_stderr(line)

        url = f"http://{LOOPBACK}:{port}{path}"
        handle = ProcessHandle(proc, pid_file, sink, start_time, url)
        try:
            await self._until_listening(handle, spec, port, tail)
        except BaseException:
            await handle.stop(0)
            raise
        return handle

    @staticmethod
    async def _until_listening(
        handle: ProcessHandle, spec: LaunchSpec, port: int, tail: deque[str]
    ) -> None:
        """Return once the loopback ``port`` accepts connections.

        Raises:
            Unavailable: the child exited first, or did not listen within spec.start_timeout;
                the message ends with its last lines of output.
        """
        exited = asyncio.ensure_future(handle.wait())
        try:
            async with asyncio.timeout(spec.start_timeout):
                pause = 0.01
                while not exited.done():
                    if await _accepts(port):
                        return
                    await asyncio.wait({exited}, timeout=pause)
                    pause = min(pause * 2, 0.2)
        except TimeoutError:
            what = f"did not listen on {LOOPBACK}:{port} within {spec.start_timeout:g} s"
        else:
            await handle.drain(1.0)  # the lines it wrote before it exited
            what = f"{_ended(exited.result())} before listening on {LOOPBACK}:{port}"
        finally:
            exited.cancel()
        output = f"; its last output: {' | '.join(tail)}" if tail else ""
        raise Unavailable(f"server {spec.server!r}: {what}{output}")

    async def reap(self) -> list[str]:
        if not self.pid_dir.is_dir():
            return []
        reaped = []
        for pid_file in sorted(self.pid_dir.glob("*.json")):
            try:
                record = json.loads(pid_file.read_text())
                pgid, started = int(record["pgid"]), record.get("startTime")
            except (OSError, ValueError, KeyError, TypeError):
                pid_file.unlink(missing_ok=True)
                continue
            if started is not None and await self._kill_group(pgid, int(started)):
                reaped.append(f"{record.get('server', '?')} (pid {record.get('pid')})")
            pid_file.unlink(missing_ok=True)
        return reaped

    @staticmethod
    async def _kill_group(pgid: int, started: int) -> bool:
        leader = process_start_time(pgid)
        if leader is not None and leader != started:
            return False  # the pid was reused: a stranger leads a group of that id now
        members = group_members(pgid, started)
        if not members:
            return False
        for sig in (signal.SIGTERM, signal.SIGKILL):
            for pid in members:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, sig)
            for _ in range(50):  # up to ~1 s per signal, checked every 20 ms
                if not group_members(pgid, started):
                    return True
                await asyncio.sleep(0.02)
        return True

    async def close(self) -> None:
        return None
