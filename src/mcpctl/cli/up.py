"""`up`: run mcpd on the embedded default and log the CLI in to it, until Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import click

READY_TIMEOUT = 30.0


def _data_dir(explicit: Path | None) -> Path:
    if explicit:
        return explicit
    if env := os.environ.get("MCPD_DATA_DIR"):
        return Path(env)
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "mcpctl"


def _wait_ready(proc: subprocess.Popen[bytes], server: str) -> None:
    from mcpctl.client.http import McpdClient
    from mcpctl.errors import AppError, Unavailable

    deadline = time.monotonic() + READY_TIMEOUT
    with McpdClient(server, None, max_attempts=1) as client:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise AppError(f"mcpd exited with code {proc.returncode} before it was ready")
            try:
                client.request("GET", "/healthz")
                return
            except Unavailable:
                time.sleep(0.1)
    raise Unavailable(f"mcpd did not answer on {server} within {READY_TIMEOUT:.0f}s")


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


@click.command()
@click.option("--port", type=int, default=7460, show_default=True, help="mcpd port.")
@click.option("--data-dir", type=click.Path(path_type=Path), help="mcpd data directory.")
def up(port: int, data_dir: Path | None) -> None:
    """Start mcpd (SQLite in the data dir) and log the CLI in; Ctrl-C stops it."""
    from mcpctl.client.config import Context, load_config, save_config
    from mcpctl.client.http import McpdClient
    from mcpctl.errors import AppError

    directory = _data_dir(data_dir)
    server = f"http://127.0.0.1:{port}"
    cmd = [
        sys.executable,
        "-m",
        "mcpctl.mcpd",
        "serve",
        "--port",
        str(port),
        "--data-dir",
        str(directory),
    ]
    # mcpd gets its own process group, so a Ctrl-C in the terminal reaches only us and we
    # forward exactly one SIGINT (a second one makes uvicorn skip the graceful shutdown).
    # Being alone, it would outlive us on SIGTERM or a closed terminal: stop it then too.
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _interrupt)
    proc = subprocess.Popen(cmd, process_group=0)  # noqa: S603
    try:
        _wait_ready(proc, server)
        token = (directory / "admin.token").read_text().strip()
        with McpdClient(server, token) as client:
            client.whoami()
        cfg = load_config()
        cfg.upsert(Context(name="local", server=server, token=token))
        cfg.current = "local"
        save_config(cfg)
        click.echo(
            f"\nmcpd is running at {server} (data in {directory}).\n"
            "The CLI is logged in as admin (context 'local'). Try, in another terminal:\n"
            "  mcpctl get templates\n"
            "  mcpctl create server time --from-template time\n"
            "  mcpctl get servers -o yaml\n"
            "Press Ctrl-C to stop."
        )
        if proc.wait():
            raise AppError(f"mcpd exited with code {proc.returncode}")
    except KeyboardInterrupt:
        pass
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
