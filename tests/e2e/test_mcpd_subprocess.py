"""End to end: the real `mcpd serve` and `mcpctl up` processes, driven by the installed `mcpctl`
console script, on SQLite (the embedded default) and on the real PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest
import yaml

from tests.cli.samples import STACK, STACK_REFS
from tests.conftest import Database

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent
MCPCTL = shutil.which("mcpctl", path=str(BIN)) or shutil.which("mcpctl")
READY_TIMEOUT = 30.0
STOP_TIMEOUT = 30.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def clean_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """This process's environment without MCPCTL_* / MCPD_*, with private XDG directories."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MCPCTL_", "MCPD_", "XDG_"))}
    env["XDG_CONFIG_HOME"] = str(tmp_path / "xdg-config")
    env["XDG_DATA_HOME"] = str(tmp_path / "xdg-data")
    env["MCPCTL_CONFIG"] = str(tmp_path / "config.yaml")
    env.update(extra)
    return env


def wait_until(
    condition: Callable[[], bool], what: str, proc: subprocess.Popen[bytes], log: Path
) -> None:
    """Poll ``condition`` until it holds, failing at once if ``proc`` dies, or after a bound."""
    pause = threading.Event()
    for _ in range(int(READY_TIMEOUT / 0.05)):
        if condition():
            return
        if proc.poll() is not None:
            pytest.fail(f"{what}: process exited with {proc.returncode}\n{log.read_text()}")
        pause.wait(0.05)
    pytest.fail(f"{what}: not within {READY_TIMEOUT:.0f}s\n{log.read_text()}")


def healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/healthz", timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def port_is_closed(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except ConnectionRefusedError:
        return True
    return False


@contextmanager
def started(cmd: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``cmd`` in its own process group; whatever the test does, nothing is left running."""
    with log.open("wb") as out:
        proc = subprocess.Popen(
            cmd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            yield proc
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=STOP_TIMEOUT)


def stop_with_sigint(proc: subprocess.Popen[bytes], log: Path) -> int:
    proc.send_signal(signal.SIGINT)
    try:
        return proc.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        pytest.fail(f"did not stop within {STOP_TIMEOUT:.0f}s of SIGINT\n{log.read_text()}")


@dataclass
class Cli:
    env: dict[str, str]

    def __call__(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        assert MCPCTL, "the mcpctl console script is not installed"
        result = subprocess.run(
            [MCPCTL, *args], env=self.env, capture_output=True, text=True, timeout=60, check=False
        )
        if check:
            assert result.returncode == 0, (args, result.stdout, result.stderr)
        return result


async def _object_count(database: Database) -> int:
    conn = await asyncpg.connect(database.url)
    try:
        count: int = await conn.fetchval(f'SELECT count(*) FROM "{database.schema}".objects')
    finally:
        await conn.close()
    return count


def test_mcpd_serve_and_the_mcpctl_script_work_together_end_to_end(
    database: Database, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    db_env = (
        {"MCPD_DATABASE_URL": database.url, "MCPD_DATABASE_SCHEMA": database.schema or ""}
        if database.engine == "postgres"
        else {}
    )
    env = clean_env(tmp_path, **db_env)
    log = tmp_path / "mcpd.log"
    serve = [sys.executable, "-m", "mcpctl.mcpd", "serve", "--port", str(port)]
    with started([*serve, "--data-dir", str(data_dir)], env, log) as mcpd:
        wait_until(lambda: healthy(url), "mcpd /healthz", mcpd, log)
        token_file = data_dir / "admin.token"
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
        if database.engine == "sqlite":
            assert (data_dir / "mcpd.db").is_file()
        cli = Cli(env)

        login = cli("login", "--server", url, "--token-file", str(token_file))
        config = Path(env["MCPCTL_CONFIG"])
        assert login.stdout == f"logged in to {url} as admin (context 'default' in {config})\n"
        assert stat.S_IMODE(config.stat().st_mode) == 0o600

        stack = tmp_path / "stack.yaml"
        stack.write_text(STACK)
        applied = cli("apply", "-f", str(stack))
        assert applied.stdout.splitlines() == [f"{ref} created" for ref in STACK_REFS]

        exported = cli("get", "all", "-o", "yaml").stdout
        items = yaml.safe_load(exported)["items"]
        assert {"timekeeper", "time"} <= {o["metadata"]["name"] for o in items}  # + the catalog
        (tmp_path / "exported.yaml").write_text(exported)
        again = cli("apply", "-f", str(tmp_path / "exported.yaml")).stdout.splitlines()
        assert len(again) == len(items)
        assert all(line.endswith(" unchanged") for line in again), again

        described = cli("describe", "server", "time").stdout
        assert "Used by:\n  project/tools  (spec.servers[0])\n" in described
        if database.engine == "postgres":
            # `get all` leaves out the access-control kinds: here the bootstrap admin's User
            # object and its RbacDefinition.
            assert asyncio.run(_object_count(database)) == len(items) + 2

        deleted = cli("delete", "-f", str(stack))
        assert deleted.stdout.splitlines() == [f"{r} deleted" for r in reversed(STACK_REFS)]
        gone = cli("get", "servers")
        assert (gone.stdout, gone.stderr) == ("", "No resources found.\n")
        missing = cli("describe", "server", "time", check=False)
        assert missing.returncode == 4

        assert stop_with_sigint(mcpd, log) == 0
    assert "Application shutdown complete." in log.read_text()
    assert port_is_closed(port)
    down = Cli(env)("get", "servers", check=False)
    assert down.returncode == 7
    assert f"cannot reach mcpd at {url}" in down.stderr
