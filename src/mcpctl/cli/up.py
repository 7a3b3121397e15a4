"""`up`: mcpd (embedded SQLite) and mcplocal on this machine, the CLI logged in to mcpd, a
starter project serving a real MCP server (`mcp-server-time`), until Ctrl-C.

Both programs run as child processes, each in a process group of its own: a Ctrl-C in the
terminal reaches only `up`, which then stops them in order (mcplocal first, so its upstream
connections close, then mcpd, which stops every MCP server instance it runs) with exactly one
SIGINT each (a second one makes uvicorn skip its graceful shutdown). Being alone in their
groups they would outlive `up` on SIGTERM or a closed terminal, so those stop them too.
Child processes rather than threads: `cli` never imports the daemon or its frameworks (the
import contracts in pyproject.toml), and each program keeps its own entry point and logs.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from mcpctl.errors import AppError, Conflict, NotFound, Unavailable

if TYPE_CHECKING:
    from mcpctl.client.http import McpdClient

READY_TIMEOUT = 30.0
STOP_TIMEOUT = 20.0
CONTEXT = "local"
STARTER_PROJECT = "starter"
STARTER_SERVER = "clock"
# Settings `up` decides itself: the embedded database, loopback, its own ports and context.
_MCPD_ENV_DROPPED = ("MCPD_DATABASE_URL", "MCPD_DATABASE_SCHEMA", "MCPD_HOST", "MCPD_PORT")
_MCPLOCAL_ENV_DROPPED = ("MCPCTL_SERVER", "MCPCTL_TOKEN", "MCPLOCAL_HOST", "MCPLOCAL_PORT")


@dataclass
class Child:
    name: str
    url: str
    proc: subprocess.Popen[bytes]


def _data_dir(explicit: Path | None) -> Path:
    if explicit:
        return explicit
    if env := os.environ.get("MCPD_DATA_DIR"):
        return Path(env)
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "mcpctl"


def _ensure_port_free(port: int, program: str, flag: str) -> None:
    """Raises: Conflict when something already listens on the port."""
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError as exc:
            raise Conflict(
                f"{flag}: port {port} for {program} is in use ({exc.strerror}); is another "
                f"`mcpctl up` or {program} running? Stop it or pick another port with {flag}"
            ) from exc


def _time_server_command() -> str:
    """The `mcp-server-time` console script of this installation.

    Raises: Unavailable when it is not installed.
    """
    beside = Path(sys.executable).parent / "mcp-server-time"
    if beside.is_file():
        return str(beside)
    if found := shutil.which("mcp-server-time"):
        return found
    raise Unavailable(
        "mcp-server-time is not installed: `make up` installs it, or pip install 'mcpctl[up]'"
    )


def _env_without(names: tuple[str, ...]) -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in names}


def _start(name: str, url: str, cmd: list[str], env: dict[str, str]) -> Child:
    return Child(name, url, subprocess.Popen(cmd, env=env, process_group=0))  # noqa: S603


def _wait_ready(child: Child) -> None:
    """Raises: AppError when the program exits first, Unavailable when it never answers."""
    from mcpctl.client.http import McpdClient

    deadline = time.monotonic() + READY_TIMEOUT
    with McpdClient(child.url, None, max_attempts=1) as client:
        while time.monotonic() < deadline:
            if child.proc.poll() is not None:
                raise AppError(
                    f"{child.name} exited with code {child.proc.returncode} before it was ready"
                )
            try:
                client.request("GET", "/healthz")
                return
            except Unavailable:
                time.sleep(0.1)
    raise Unavailable(f"{child.name} did not answer on {child.url} within {READY_TIMEOUT:.0f}s")


def _log_in(server: str, directory: Path) -> str:
    """Save and select the context ``local`` with the admin token; returns the token."""
    from mcpctl.client.config import Context, load_config, save_config
    from mcpctl.client.http import McpdClient

    token = (directory / "admin.token").read_text().strip()
    with McpdClient(server, token) as client:
        client.whoami()
    cfg = load_config()
    cfg.upsert(Context(name=CONTEXT, server=server, token=token))
    cfg.current = CONTEXT
    save_config(cfg)
    return token


def starter_objects(time_command: str) -> list[tuple[str, dict[str, Any]]]:
    """The starter Server and Project, as (plural, object), dependencies first."""
    server = {
        "apiVersion": "mcpctl/v1",
        "kind": "Server",
        "metadata": {"name": STARTER_SERVER, "labels": {"mcpctl.io/source": "up"}},
        "spec": {
            "description": "Current time and timezone conversion (PyPI mcp-server-time).",
            "transport": "stdio",
            "runtime": "process",
            "command": time_command,
        },
    }
    project = {
        "apiVersion": "mcpctl/v1",
        "kind": "Project",
        "metadata": {"name": STARTER_PROJECT, "labels": {"mcpctl.io/source": "up"}},
        "spec": {"description": "Created by mcpctl up.", "servers": [STARTER_SERVER]},
    }
    return [("servers", server), ("projects", project)]


def _apply_starter(client: McpdClient, time_command: str) -> list[str]:
    """Create what is missing; what exists is left as the user may have changed it."""
    lines = []
    for plural, obj in starter_objects(time_command):
        ref = f"{obj['kind'].lower()}/{obj['metadata']['name']}"
        try:
            client.get_object(plural, obj["metadata"]["name"])
        except NotFound:
            client.create_object(plural, obj)
            lines.append(f"{ref} created")
        else:
            lines.append(f"{ref} exists (left as it is)")
    return lines


def _banner(mcpd: Child, mcplocal: Child, directory: Path, starter: list[str]) -> str:
    import json

    from mcpctl.cli.mcpconfig import DEFAULT_MCPLOCAL_URL, config_document

    endpoint = f"{mcplocal.url}/projects/{STARTER_PROJECT}/mcp"
    snippet = json.dumps(config_document(STARTER_PROJECT, endpoint), indent=2)
    url_flag = "" if mcplocal.url == DEFAULT_MCPLOCAL_URL else f" --mcplocal-url {mcplocal.url}"
    return "\n".join(
        [
            "",
            f"mcpd is running at {mcpd.url} (data in {directory}).",
            f"mcplocal is running at {mcplocal.url}.",
            f"The CLI is logged in as admin (context '{CONTEXT}').",
            *(f"  {line}" for line in starter),
            "",
            f"Project '{STARTER_PROJECT}' is served at {endpoint}",
            "Put this in .mcp.json (Claude Code, Cursor) or run "
            f"`mcpctl mcp-config {STARTER_PROJECT}{url_flag} -o .mcp.json`:",
            snippet,
            f"Claude Code: claude mcp add --transport http {STARTER_PROJECT} {endpoint}",
            "",
            "Try, in another terminal: mcpctl get projects; mcpctl get instances",
            "Press Ctrl-C to stop.",
        ]
    )


def _watch(children: list[Child]) -> None:
    """Return never: raise when a child exits on its own."""
    while True:
        for child in children:
            if child.proc.poll() is not None:
                raise AppError(f"{child.name} exited with code {child.proc.returncode}")
        time.sleep(0.2)


def _kill(child: Child) -> None:
    if child.proc.poll() is None:
        # Still running (or not yet reaped), so its group is certainly ours.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.proc.pid, signal.SIGKILL)


def _stop(child: Child) -> None:
    """One SIGINT; the process group is killed if it has not stopped within STOP_TIMEOUT."""
    proc = child.proc
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            click.echo(f"{child.name} did not stop within {STOP_TIMEOUT:.0f}s: killed", err=True)
            _kill(child)
    proc.wait()


def _stop_all(children: list[Child]) -> None:
    """Stop in reverse start order; a second Ctrl-C (or SIGTERM) while waiting kills them."""

    def hurry(signum: int, frame: object) -> None:
        click.echo("stopping at once", err=True)
        for child in children:
            _kill(child)

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, hurry)
    for child in reversed(children):
        _stop(child)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


@click.command()
@click.option("--port", type=int, default=7460, show_default=True, help="mcpd port.")
@click.option("--mcplocal-port", type=int, default=7461, show_default=True, help="mcplocal port.")
@click.option("--data-dir", type=click.Path(path_type=Path), help="mcpd data directory.")
def up(port: int, mcplocal_port: int, data_dir: Path | None) -> None:
    """Run mcpd and mcplocal here, log in, serve a starter project; Ctrl-C stops everything."""
    from mcpctl.client.http import McpdClient

    directory = _data_dir(data_dir)
    time_command = _time_server_command()
    _ensure_port_free(port, "mcpd", "--port")
    _ensure_port_free(mcplocal_port, "mcplocal", "--mcplocal-port")
    # SIGINT too: a shell without job control starts `up &` with SIGINT ignored.
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _interrupt)
    python = sys.executable
    children: list[Child] = []
    try:
        mcpd = _start(
            "mcpd",
            f"http://127.0.0.1:{port}",
            [
                python,
                "-m",
                "mcpctl.mcpd",
                "serve",
                "--port",
                str(port),
                "--data-dir",
                str(directory),
            ],
            _env_without(_MCPD_ENV_DROPPED),
        )
        children.append(mcpd)
        _wait_ready(mcpd)
        token = _log_in(mcpd.url, directory)
        with McpdClient(mcpd.url, token) as client:
            starter = _apply_starter(client, time_command)
        mcplocal_cmd = [
            python,
            "-c",
            "from mcpctl.mcplocal.cli import main; main(prog_name='mcplocal')",
            "serve",
            "--port",
            str(mcplocal_port),
            "--context",
            CONTEXT,
        ]
        mcplocal = _start(
            "mcplocal",
            f"http://127.0.0.1:{mcplocal_port}",
            mcplocal_cmd,
            _env_without(_MCPLOCAL_ENV_DROPPED),
        )
        children.append(mcplocal)
        _wait_ready(mcplocal)
        click.echo(_banner(mcpd, mcplocal, directory, starter))
        _watch(children)
    except KeyboardInterrupt:
        pass
    finally:
        _stop_all(children)
