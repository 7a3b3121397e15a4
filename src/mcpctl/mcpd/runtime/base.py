"""The one small interface every runtime implements.

A ``Runtime`` starts a ``LaunchSpec`` and returns a ``Handle``. The handle exposes either a
stdio byte stream (``Handle.stdio``: newline-delimited JSON-RPC, read one message, write one)
or an HTTP endpoint (``Handle.url`` and ``Handle.headers``), hands stderr lines to the
``on_stderr`` callback given at start, and has ``wait()`` (the exit code; ``None`` when the
runtime cannot tell) and ``stop()`` (graceful, then killed, bounded by the grace period).
``Handle.identity`` is what operators see: ``pid 1234`` or a short container id.

``LaunchSpec.args`` are the spec's args as written: each runtime expands their ``$(NAME)``
references (``expand_args``) with the environment it gives the instance, so that a value only
the runtime knows (the ``PORT`` of a process runtime http server) can be referred to as well.

``reap()`` removes what a killed mcpd left behind (pid files, labelled containers); it is called
once at start, before any instance runs.

    process   mcpd/runtime/process.py    a local process group, stdio or http on loopback
    docker    mcpd/runtime/docker.py     a container (Docker Engine API; DOCKER_HOST: Podman)
    external  mcpd/runtime/external.py   a remote streamable-HTTP URL, nothing to run
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal, Protocol

Transport = Literal["stdio", "http"]
StderrSink = Callable[[str], None]

# Longest JSON-RPC message read from a server (one line); longer ones end the connection.
MAX_MESSAGE_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class LaunchSpec:
    """What to run for one instance, with every value resolved (secrets included: this object
    lives only in mcpd's memory and its values only reach the child's environment)."""

    instance_id: str
    server: str
    transport: Transport = "stdio"
    command: str | None = None
    args: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    image: str | None = None
    url: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)
    # How long ``start`` may wait for an http server to accept connections (process runtime).
    start_timeout: float = 30.0


class StdioStream(Protocol):
    """A server's stdin/stdout as newline-delimited JSON-RPC messages."""

    async def read_message(self) -> bytes | None:
        """The next message without its newline, or None once the server's stdout is closed.

        Raises:
            ValueError: a line longer than MAX_MESSAGE_BYTES.
        """
        ...

    async def write(self, data: bytes) -> None:
        """Write whole messages (each ending in a newline).

        Raises:
            ConnectionError: the server's stdin is closed.
        """
        ...


class Handle(Protocol):
    identity: str
    pid: int | None
    container_id: str | None
    stdio: StdioStream | None
    url: str | None
    headers: Mapping[str, str]

    async def wait(self) -> int | None:
        """Wait until the instance has exited; its exit code if the runtime knows it."""
        ...

    async def stop(self, grace: float) -> None:
        """Stop gracefully, kill after ``grace`` seconds; idempotent; never raises."""
        ...


class Runtime(Protocol):
    name: str

    async def start(self, spec: LaunchSpec, on_stderr: StderrSink) -> Handle:
        """Start an instance.

        Raises:
            InvalidInput: the spec cannot run on this runtime (no command, no image).
            Unavailable: the runtime failed to start it (command not found, engine down).
        """
        ...

    async def reap(self) -> list[str]:
        """Stop what an earlier mcpd with this data dir left running; what was stopped."""
        ...

    async def close(self) -> None:
        """Release the runtime's own resources (engine clients)."""
        ...


_ARG_REFERENCE = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)")


def expand_args(args: tuple[str, ...] | list[str], env: Mapping[str, str]) -> tuple[str, ...]:
    """Kubernetes-style ``$(NAME)`` in args: the env value; ``$$`` is a literal ``$``;
    a reference to an unset name stays as written."""

    def one(match: re.Match[str]) -> str:
        name = match.group(1)
        if name is None:
            return "$"
        return env.get(name, match.group(0))

    return tuple(_ARG_REFERENCE.sub(one, arg) for arg in args)
