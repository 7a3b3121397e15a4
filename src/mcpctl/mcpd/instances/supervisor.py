"""The supervisor owns every running copy (instance) of every server; one instance per server.

The interface the relay builds on::

    instance = await supervisor.acquire("time")   # starts it on first use, waits until ready
    instance.connection.request(...)              # stdio servers: the shared Connection
    instance.url, instance.headers                # http servers (process and docker http,
                                                  # external)

``acquire`` is cheap when the instance runs (a dict lookup); otherwise it resolves the server
(NotFound for an unknown one), checks the cap, starts it and waits until it answered
``initialize``, at most ``start_timeout`` plus the backoff in progress. A crashed instance is
replaced by a new one (a new ``Instance`` and ``Connection``): callers holding the old one get
``ConnectionLost`` and acquire again. ``await instance.connection.closed`` says when.

Lifecycle of one server's slot (``State``)::

    Starting ─▶ Running ─(exit/crash)─▶ Restarting ─(backoff)─▶ Starting ...
                   │                        └─(N crashes in the window)─▶ CrashLoop
                   └─(idle, shutdown, restart, spec change, delete)─▶ Stopping ─▶ Stopped

- Backoff doubles from ``backoff_initial`` up to ``backoff_max``. ``crash_loop_restarts``
  crashes (a failed start counts) within ``crash_loop_window`` seconds put the slot in
  ``CrashLoop``: ``acquire`` fails at once with the last error until the window has passed
  since the last crash, or until ``restart()``.
- Idle: an instance with no request in flight and none for ``idle_seconds`` is stopped
  (0: never); servers with ``keepAlive: true`` start with mcpd and are never stopped for that.
- Cap: at most ``max_instances`` process/docker instances at once; ``acquire`` of another
  fails with ``Unavailable`` naming the limit (external servers run nothing and are not
  counted).
- Never leaks: ``close()`` stops every instance; ``start()`` first reaps what a killed mcpd
  left behind (pid files, containers labelled with this mcpd's owner id).
- Spec changes roll, as a Deployment's template change does in Kubernetes: after Servers or
  Templates are written, the object service's commit hook calls ``specs_changed()`` (wired in
  ``mcpd/assemble.py``; no global), and the supervisor compares every slot with the stored
  specs (``specs.stored_launches``: two queries, no secret read). An instance whose server was
  deleted is stopped at once and its slot dropped; one whose launch fields changed (runtime,
  transport, command, args, image, url, env, headers; see ``specs.py``) is stopped at once, so
  the next use starts the new spec; callers holding the old one get ``ConnectionLost`` and
  acquire again. A CrashLoop whose spec changed is cleared: the fix is tried at the next use.
  Keep-alive servers are started (again) by the same check, new ones included. ``acquire``
  waits for a check that is due, so a call made after a write returned sees the new spec.
- A rotated secret alone changes no fingerprint: it takes effect at the next start (a crash,
  an idle stop, ``mcpctl restart server NAME``).
- Other mcpd replicas hear of no commit: each also runs the check every
  ``spec_check_seconds`` (30 s), which is how they notice a change made through another one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from mcpctl.errors import AppError, NotFound, Unavailable
from mcpctl.mcpd.db.uow import UnitOfWorkFactory
from mcpctl.mcpd.instances.connection import Connection, RpcError
from mcpctl.mcpd.instances.logs import LogBook, ServerLog
from mcpctl.mcpd.instances.specs import (
    ResolvedServer,
    keep_alive_servers,
    resolve_server,
    stored_launches,
)
from mcpctl.mcpd.runtime.base import Handle, LaunchSpec, Runtime
from mcpctl.mcpd.services.secrets import SecretBehaviour

log = logging.getLogger(__name__)

OWNER_LABEL = "mcpctl.owner"
INSTANCE_LABEL = "mcpctl.instance"
SERVER_LABEL = "mcpctl.server"


class State(StrEnum):
    STARTING = "Starting"
    RUNNING = "Running"
    RESTARTING = "Restarting"
    CRASH_LOOP = "CrashLoop"
    STOPPING = "Stopping"
    STOPPED = "Stopped"


ACTIVE = (State.STARTING, State.RUNNING, State.RESTARTING)


@dataclass(frozen=True)
class Limits:
    idle_seconds: float = 600.0
    max_instances: int = 50
    start_timeout: float = 30.0
    stop_grace: float = 5.0
    backoff_initial: float = 0.5
    backoff_max: float = 30.0
    crash_loop_restarts: int = 5
    crash_loop_window: float = 300.0
    spec_check_seconds: float = 30.0  # how often running instances are compared with specs


def owner_id(data_dir: Path) -> str:
    """This mcpd's id (``<data_dir>/mcpd.id``, created once): the owner label of its
    containers, so that reaping never touches another mcpd's."""
    path = data_dir / "mcpd.id"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        data_dir.mkdir(parents=True, exist_ok=True)
        value = uuid.uuid4().hex[:16]
        path.write_text(value + "\n")
        return value


@dataclass
class Instance:
    """One running copy of a server, as callers see it."""

    id: str
    server: str
    runtime: str
    transport: str
    handle: Handle
    connection: Connection | None
    # The client features its spec opts in to (sampling, elicitation, roots).
    client_features: frozenset[str] = frozenset()

    @property
    def url(self) -> str | None:
        return self.handle.url

    @property
    def headers(self) -> Mapping[str, str]:
        return self.handle.headers

    @property
    def alive(self) -> bool:
        return self.connection is None or self.connection.alive


def _now() -> datetime:
    return datetime.now(UTC)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat(timespec="seconds").replace("+00:00", "Z") if value else None


def _with_stderr(reason: str, server_log: ServerLog) -> str:
    """``reason`` and the last stderr line of the latest start (the likely explanation)."""
    for line in reversed(server_log.lines):
        if line.stream == "stderr":
            return reason if line.text in reason else f"{reason}: {line.text}"
        if line.text.startswith("starting ("):
            break
    return reason


@dataclass
class _Slot:
    name: str
    log: ServerLog
    state: State = State.STOPPED
    resolved: ResolvedServer | None = None
    instance: Instance | None = None
    task: asyncio.Task[None] | None = None
    restarts: int = 0
    crashes: deque[float] = field(default_factory=deque)
    last_error: str | None = None
    last_exit_code: int | None = None
    started_at: datetime | None = None
    created_at: datetime = field(default_factory=_now)
    last_used: float = field(default_factory=time.monotonic)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def set_state(self, state: State) -> None:
        self.state = state
        old, self.changed = self.changed, asyncio.Event()
        old.set()

    @property
    def runtime(self) -> str:
        return self.resolved.runtime if self.resolved else "process"

    @property
    def counted(self) -> bool:
        return self.state in ACTIVE and self.runtime != "external"


class Supervisor:
    def __init__(
        self,
        uows: UnitOfWorkFactory,
        secrets: SecretBehaviour,
        runtimes: Mapping[str, Runtime],
        logs: LogBook,
        *,
        owner: str,
        limits: Limits,
    ) -> None:
        self.uows = uows
        self.secrets = secrets
        self.runtimes = runtimes
        self.logs = logs
        self.owner = owner
        self.limits = limits
        self._slots: dict[str, _Slot] = {}
        self._lock = asyncio.Lock()
        self._ticker: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[Any]] = set()
        self._closing = False
        # Spec checks: asked for (specs_changed) and done, counted, so acquire can wait for one.
        self._reconciler: asyncio.Task[None] | None = None
        self._specs_dirty = asyncio.Event()
        self._specs_checked = asyncio.Event()
        self._specs_wanted = 0
        self._specs_done = 0

    # -- lifecycle of the supervisor ----------------------------------------------------

    async def start(self) -> None:
        """Reap leftovers of a killed mcpd, then start keep-alive servers and the idle check."""
        for runtime in self.runtimes.values():
            try:
                reaped = await runtime.reap()
            except Exception as exc:  # an engine that is down must not stop mcpd starting
                log.info("%s runtime: nothing reaped: %s", runtime.name, exc)
                continue
            for item in reaped:
                log.warning("%s runtime: stopped a leftover instance: %s", runtime.name, item)
        self._ticker = asyncio.create_task(self._tick_loop(), name="instance-supervisor")
        for name in await keep_alive_servers(self.uows):
            self._keep_alive(name)
        self._reconciler = asyncio.create_task(self._reconcile_loop(), name="instance-specs")

    def _keep_alive(self, name: str) -> None:
        task = asyncio.create_task(self._ensure(name), name=f"keep-alive-{name}")
        self._background.add(task)
        task.add_done_callback(self._background_done)

    def _background_done(self, task: asyncio.Task[Any]) -> None:
        self._background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("a keep-alive server did not start: %s", task.exception())

    async def close(self) -> None:
        """Stop every instance (concurrently, each bounded by the stop grace)."""
        self._closing = True
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
        async with self._lock:  # a spec check that is stopping instances finishes first
            reconciler, self._reconciler = self._reconciler, None
            if reconciler is not None:
                reconciler.cancel()
        if reconciler is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await reconciler
        await asyncio.gather(
            *(self._stop(slot, "mcpd is shutting down") for slot in list(self._slots.values()))
        )
        for runtime in self.runtimes.values():
            await runtime.close()
        self.logs.close()

    # -- the interface for callers --------------------------------------------------------

    async def acquire(self, name: str) -> Instance:
        """The running instance of server ``name``, started if needed.

        Raises:
            NotFound: there is no such server.
            Unavailable: it is in CrashLoop, did not start in time, or the cap is reached.
        """
        if self._specs_done < self._specs_wanted:
            await self._specs_settled()
        # The hot path: one lookup, no lock.
        slot = self._slots.get(name)
        instance = slot.instance if slot is not None else None
        if slot is not None and slot.state is State.RUNNING and instance and instance.alive:
            slot.last_used = time.monotonic()
            return instance
        slot = await self._ensure(name)
        return await self._wait_ready(slot)

    async def restart(self, name: str, reason: str = "restart requested") -> dict[str, Any]:
        """Stop the instance (if any) and start a fresh one from the current spec; its status.

        Raises:
            NotFound: there is no such server.
            Unavailable: the new instance did not start (its status says why).
        """
        resolved = await resolve_server(self.uows, self.secrets, name)
        async with self._lock:
            slot = self._slot(name)
            slot.log.add("event", reason)
            await self._stop(slot, reason)
            slot.crashes.clear()
            self._check_cap(slot, resolved)
            self._launch(slot, resolved)
        await self._wait_ready(slot)
        return self.status(slot.name)

    def specs_changed(self) -> None:
        """Servers or Templates were written: compare the instances with their specs now (see
        the module docstring); the next ``acquire`` waits for that. Safe before ``start()``."""
        if self._closing:
            return
        self._specs_wanted += 1
        self._specs_dirty.set()

    def statuses(self, names: frozenset[str] | None = None) -> list[dict[str, Any]]:
        """Every instance this mcpd knows (only ``names`` when given), by name."""
        return [
            self._status(slot)
            for name, slot in sorted(self._slots.items())
            if names is None or name in names
        ]

    def status(self, name: str) -> dict[str, Any]:
        """Raises: NotFound when this mcpd has no instance of ``name``."""
        slot = self._slots.get(name)
        if slot is None:
            raise NotFound(f"instance {name!r} not found (an instance starts on first use)")
        return self._status(slot)

    def log_of(self, name: str) -> ServerLog:
        return self.logs.of(name)

    async def wait_for(self, name: str, *states: State) -> dict[str, Any]:
        """Wait (unbounded: callers bound it) until ``name`` is in one of ``states``."""
        slot = self._slot(name)
        while slot.state not in states:
            await slot.changed.wait()
        return self._status(slot)

    # -- starting -------------------------------------------------------------------------

    def _slot(self, name: str) -> _Slot:
        slot = self._slots.get(name)
        if slot is None:
            slot = _Slot(name=name, log=self.logs.of(name))
            self._slots[name] = slot
        return slot

    async def _ensure(self, name: str) -> _Slot:
        """The slot of ``name``, with a keeper running unless it is in CrashLoop."""
        slot = self._slots.get(name)
        if slot is not None and slot.state in ACTIVE:
            return slot
        resolved = await resolve_server(self.uows, self.secrets, name)
        async with self._lock:
            if self._closing:
                raise Unavailable("mcpd is shutting down")
            slot = self._slot(name)
            if slot.state in ACTIVE:
                return slot
            if slot.state is State.CRASH_LOOP:
                if self._in_crash_loop(slot):
                    raise self._crash_loop_error(slot)
                slot.crashes.clear()
            self._check_cap(slot, resolved)
            self._launch(slot, resolved)
        return slot

    def _check_cap(self, slot: _Slot, resolved: ResolvedServer) -> None:
        if resolved.runtime == "external":
            return
        running = sum(1 for s in self._slots.values() if s.counted and s is not slot)
        if running >= self.limits.max_instances:
            raise Unavailable(
                f"cannot start server {slot.name!r}: mcpd already runs {running} instances, "
                f"its maximum (MCPD_MAX_INSTANCES={self.limits.max_instances}); "
                "wait for idle ones to stop or raise the limit",
                retry_after=self.limits.idle_seconds or None,
            )

    def _launch(self, slot: _Slot, resolved: ResolvedServer) -> None:
        slot.resolved = resolved
        slot.log.set_secrets(resolved.secret_values)
        slot.last_used = time.monotonic()
        slot.set_state(State.STARTING)
        slot.task = asyncio.create_task(self._keep(slot, resolved), name=f"instance-{slot.name}")

    async def _wait_ready(self, slot: _Slot) -> Instance:
        deadline = self.limits.start_timeout + self.limits.backoff_max + self.limits.stop_grace
        try:
            async with asyncio.timeout(deadline):
                while True:
                    changed = slot.changed
                    instance = slot.instance
                    if slot.state is State.RUNNING and instance is not None and instance.alive:
                        slot.last_used = time.monotonic()
                        return instance
                    if slot.state is State.CRASH_LOOP:
                        raise self._crash_loop_error(slot)
                    if slot.state in (State.STOPPED, State.STOPPING):
                        raise Unavailable(
                            f"server {slot.name!r} stopped: {slot.last_error or 'stopped'}"
                        )
                    await changed.wait()
        except TimeoutError as exc:
            raise Unavailable(
                f"server {slot.name!r} did not become ready within {deadline:g} s "
                f"(state {slot.state}; last error: {slot.last_error or 'none'})"
            ) from exc

    def _in_crash_loop(self, slot: _Slot) -> bool:
        return bool(slot.crashes) and (
            time.monotonic() - slot.crashes[-1] < self.limits.crash_loop_window
        )

    def _crash_loop_error(self, slot: _Slot) -> Unavailable:
        return Unavailable(
            f"server {slot.name!r} is in CrashLoop ({len(slot.crashes)} crashes within "
            f"{self.limits.crash_loop_window:g} s; last error: {slot.last_error}); "
            f"fix it and run `mcpctl restart server {slot.name}`",
            details={"state": str(slot.state), "lastError": slot.last_error},
        )

    # -- the keeper: one task per slot while it is active ----------------------------------

    async def _keep(self, slot: _Slot, resolved: ResolvedServer) -> None:
        attempt = 0
        while True:
            slot.set_state(State.STARTING)
            try:
                instance = await self._start_instance(slot, resolved)
            except (AppError, RpcError, OSError) as exc:
                reason = _with_stderr(f"failed to start: {exc}", slot.log)
            else:
                attempt = 0
                slot.instance = instance
                slot.started_at = _now()
                slot.set_state(State.RUNNING)
                reason = await self._watch(slot, instance)
                # Kept on the slot until discarded, so a concurrent _stop() waits for it too.
                await self._discard(instance)
                slot.instance = None
            if not self._crashed(slot, reason):
                return
            attempt += 1
            delay = min(self.limits.backoff_max, self.limits.backoff_initial * 2 ** (attempt - 1))
            slot.restarts += 1
            slot.set_state(State.RESTARTING)
            slot.log.add("event", f"restarting in {delay:g} s (restart {slot.restarts})")
            await asyncio.sleep(delay)
            try:
                resolved = await resolve_server(self.uows, self.secrets, slot.name)
            except NotFound:
                slot.last_error = "the server was deleted"
                slot.log.add("event", "not restarted: the server was deleted")
                slot.set_state(State.STOPPED)
                return
            except AppError as exc:
                resolved = slot.resolved or resolved
                slot.log.add("event", f"cannot re-read the spec ({exc}); using the last one")
            slot.resolved = resolved
            slot.log.set_secrets(resolved.secret_values)

    def _crashed(self, slot: _Slot, reason: str) -> bool:
        """Record a crash; False when the slot is now in CrashLoop."""
        now = time.monotonic()
        slot.last_error = slot.log.scrub(reason)
        slot.log.add("event", reason)
        slot.crashes.append(now)
        while slot.crashes and now - slot.crashes[0] > self.limits.crash_loop_window:
            slot.crashes.popleft()
        if len(slot.crashes) >= self.limits.crash_loop_restarts:
            slot.log.add(
                "event",
                f"CrashLoop: {len(slot.crashes)} crashes within "
                f"{self.limits.crash_loop_window:g} s; not restarting",
            )
            slot.set_state(State.CRASH_LOOP)
            return False
        return True

    # -- following spec changes --------------------------------------------------------------

    async def _specs_settled(self) -> None:
        """Wait until the spec check asked for last is done; bounded, so that a check stuck on
        the database holds calls up no longer than a start may take."""
        wanted = self._specs_wanted
        reconciler = self._reconciler
        if reconciler is None or reconciler.done():
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.limits.start_timeout):
                while self._specs_done < wanted:
                    await self._specs_checked.wait()

    async def _reconcile_loop(self) -> None:
        period = self.limits.spec_check_seconds
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(period if period > 0 else None):
                    await self._specs_dirty.wait()
            self._specs_dirty.clear()
            wanted = self._specs_wanted
            try:
                await self._reconcile(wanted)
            except Exception as exc:  # the database may be back next time: keep the loop
                log.warning("instances not compared with their specs: %s", exc)
            finally:
                self._checked(wanted)

    def _checked(self, wanted: int) -> None:
        """The spec check asked for as number ``wanted`` is done: waiting acquires go on."""
        if self._specs_done < wanted:
            self._specs_done = wanted
            checked, self._specs_checked = self._specs_checked, asyncio.Event()
            checked.set()

    async def _reconcile(self, wanted: int) -> None:
        """Stop the instances of deleted servers and of changed specs; start keep-alive ones."""
        stored = await stored_launches(self.uows)
        async with self._lock:
            if self._closing:
                return
            retired: list[tuple[_Slot, str]] = []
            for name, slot in list(self._slots.items()):
                launch = stored.get(name)
                resolved = slot.resolved
                if launch is None:
                    del self._slots[name]
                    slot.last_error = "the server was deleted"  # what waiting callers see
                    retired.append((slot, "the server was deleted"))
                elif resolved is None or slot.state is State.STOPPED:
                    continue  # the next start reads the spec anyway
                elif resolved.fingerprint != launch.fingerprint:
                    retired.append((slot, "the spec changed; the next use starts the new one"))
                elif resolved.keep_alive != launch.keep_alive:
                    slot.resolved = replace(resolved, keep_alive=launch.keep_alive)
            # Marked before they are stopped: acquires need not wait for the stops, only the
            # ones of these servers do (in _ensure, which takes the lock).
            for slot, _ in retired:
                slot.set_state(State.STOPPING)
            self._checked(wanted)
            await asyncio.gather(*(self._retire(slot, reason) for slot, reason in retired))
        for name, launch in stored.items():
            kept = self._slots.get(name)
            stopped = kept is None or kept.state is State.STOPPED
            if launch.keep_alive and stopped and not self._closing:
                self._keep_alive(name)

    async def _retire(self, slot: _Slot, reason: str) -> None:
        """Stop ``slot`` for ``reason`` (also out of CrashLoop, forgetting its crashes)."""
        await self._stop(slot, reason)
        slot.crashes.clear()
        if slot.state is not State.STOPPED:
            slot.log.add("event", f"stopped: {reason}")
            slot.set_state(State.STOPPED)

    async def _start_instance(self, slot: _Slot, resolved: ResolvedServer) -> Instance:
        runtime = self.runtimes.get(resolved.runtime)
        if runtime is None:
            raise Unavailable(f"runtime {resolved.runtime!r} is not enabled in this mcpd")
        instance_id = f"{slot.name}-{uuid.uuid4().hex[:8]}"
        spec = LaunchSpec(
            instance_id=instance_id,
            server=slot.name,
            transport="http" if resolved.transport == "http" else "stdio",
            command=resolved.command,
            args=resolved.args,
            env=resolved.env,
            image=resolved.image,
            url=resolved.url,
            headers=resolved.headers,
            start_timeout=self.limits.start_timeout,
            labels={
                OWNER_LABEL: self.owner,
                INSTANCE_LABEL: instance_id,
                SERVER_LABEL: slot.name,
            },
        )
        slot.log.add("event", f"starting ({resolved.runtime})")
        handle = await runtime.start(spec, lambda line: slot.log.add("stderr", line))
        connection = None
        try:
            if handle.stdio is not None:
                connection = Connection(
                    handle.stdio, server=slot.name, client_features=resolved.client_features
                )
                info = await connection.start(timeout=self.limits.start_timeout)
                server_info = info.get("serverInfo") or {}
                name = f"{server_info.get('name', '?')} {server_info.get('version', '')}"
                slot.log.add("event", f"running ({handle.identity}; {name.strip()})")
            else:
                where = handle.identity
                if handle.url and handle.url != where:
                    where = f"{where}; {handle.url}"
                slot.log.add("event", f"running ({where})")
        except BaseException:
            if connection is not None:
                await connection.close()
            await handle.stop(self.limits.stop_grace)
            raise
        return Instance(
            instance_id,
            slot.name,
            resolved.runtime,
            spec.transport,
            handle,
            connection,
            frozenset(resolved.client_features),
        )

    async def _watch(self, slot: _Slot, instance: Instance) -> str:
        """Wait until the instance ends by itself; why it ended."""
        exited = asyncio.ensure_future(instance.handle.wait())
        waits: set[asyncio.Future[Any]] = {exited}
        if instance.connection is not None:
            waits.add(instance.connection.closed)
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            if not exited.done():
                # Output ended: the process is exiting; give it a moment to say how.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(exited), 1.0)
        finally:
            if not exited.done():
                exited.cancel()
        code = exited.result() if exited.done() and not exited.cancelled() else None
        slot.last_exit_code = code
        if code is None:
            reason = "its output ended"
        elif code < 0:
            reason = f"killed by signal {-code}"
        else:
            reason = f"exited with code {code}"
        return _with_stderr(reason, slot.log)

    async def _discard(self, instance: Instance) -> None:
        if instance.connection is not None:
            await instance.connection.close()
        await instance.handle.stop(self.limits.stop_grace)

    # -- stopping -------------------------------------------------------------------------

    async def _stop(self, slot: _Slot, reason: str) -> None:
        task, instance = slot.task, slot.instance
        if task is None and instance is None:
            return
        slot.set_state(State.STOPPING)
        slot.task = None
        slot.instance = None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if instance is not None:
            await self._discard(instance)
        slot.log.add("event", f"stopped: {reason}")
        slot.set_state(State.STOPPED)

    async def _tick_loop(self) -> None:
        idle = self.limits.idle_seconds
        period = min(max(idle / 4, 0.05), 5.0) if idle > 0 else 5.0
        while True:
            await asyncio.sleep(period)
            await self._tick()

    async def _tick(self) -> None:
        now = time.monotonic()
        for slot in list(self._slots.values()):
            keep = slot.resolved is not None and slot.resolved.keep_alive
            if keep and slot.state is State.CRASH_LOOP and not self._in_crash_loop(slot):
                with contextlib.suppress(AppError):
                    await self._ensure(slot.name)
            if keep or self.limits.idle_seconds <= 0 or slot.state is not State.RUNNING:
                continue
            instance = slot.instance
            if instance is None:
                continue
            conn = instance.connection
            if conn is not None and conn.in_flight:
                continue
            last = max(slot.last_used, conn.last_activity if conn else 0.0)
            if now - last >= self.limits.idle_seconds:
                async with self._lock:
                    if slot.instance is instance:
                        await self._stop(slot, f"idle for {self.limits.idle_seconds:g} s")

    # -- status ---------------------------------------------------------------------------

    def _status(self, slot: _Slot) -> dict[str, Any]:
        instance = slot.instance
        handle = instance.handle if instance else None
        conn = instance.connection if instance else None
        status: dict[str, Any] = {
            "state": str(slot.state),
            "pid": handle.pid if handle else None,
            "containerId": handle.container_id if handle else None,
            "restarts": slot.restarts,
            "startedAt": _iso(slot.started_at) if instance else None,
            "lastError": slot.last_error,
            "lastExitCode": slot.last_exit_code,
            "inFlight": conn.in_flight if conn else 0,
        }
        if conn is not None:
            info = conn.initialize_result
            status["serverInfo"] = info.get("serverInfo")
            status["protocolVersion"] = info.get("protocolVersion")
        resolved = slot.resolved
        return {
            "apiVersion": "mcpctl/v1",
            "kind": "Instance",
            "metadata": {
                "name": slot.name,
                "createdAt": _iso(slot.started_at if instance else slot.created_at),
            },
            "spec": {
                "server": slot.name,
                "runtime": slot.runtime,
                "transport": resolved.transport if resolved else "stdio",
                "keepAlive": bool(resolved and resolved.keep_alive),
            },
            "status": status,
        }
