"""deploy/docker: the mcpd image, built here by deploy/docker/build (local Debian base, no
registry), runs mcpd as its own user on SQLite and on the real PostgreSQL, and stops cleanly."""

from __future__ import annotations

import base64
import os
import secrets
import socket
import subprocess
import threading
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from mcpctl.client.http import McpdClient
from tests.conftest import Database

pytestmark = [pytest.mark.slow, pytest.mark.docker]

ROOT = Path(__file__).resolve().parents[2]
TAG = "mcpctl-test/mcpd:dev"
READY_TIMEOUT = 60.0


def docker(host: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        ["docker", *args],
        env={**os.environ, "DOCKER_HOST": host},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if check:
        assert result.returncode == 0, (args, result.stdout, result.stderr)
    return result


@pytest.fixture(scope="session")
def mcpd_image(docker_host: str) -> str:
    result = subprocess.run(
        [str(ROOT / "deploy" / "docker" / "build"), "--local-base", "--tag", TAG],
        env={**os.environ, "DOCKER_HOST": docker_host},
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{TAG}\n"
    return TAG


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/healthz", timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


@pytest.fixture
def container(docker_host: str, mcpd_image: str, database: Database) -> Iterator[tuple[str, str]]:
    """mcpd from the image on the host network (the test's PostgreSQL is on loopback)."""
    name = f"mcpd-test-{uuid.uuid4().hex[:8]}"
    port = free_port()
    env = {
        "MCPD_HOST": "127.0.0.1",
        "MCPD_PORT": str(port),
        "MCPD_SECRET_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
    }
    if database.engine == "postgres":
        env |= {"MCPD_DATABASE_URL": database.url, "MCPD_DATABASE_SCHEMA": database.schema or ""}
    flags = [f"--env={k}={v}" for k, v in env.items()]
    docker(docker_host, "run", "--detach", "--name", name, "--network", "host", *flags, mcpd_image)
    try:
        yield name, f"http://127.0.0.1:{port}"
    finally:
        docker(docker_host, "rm", "--force", name, check=False)


def test_the_mcpd_image_serves_the_api_as_user_mcpd_and_stops_cleanly(
    docker_host: str, container: tuple[str, str], database: Database
) -> None:
    name, url = container
    pause = threading.Event()
    for _ in range(int(READY_TIMEOUT / 0.1)):
        if healthy(url):
            break
        running = docker(docker_host, "inspect", "-f", "{{.State.Running}}", name).stdout
        assert running.strip() == "true", docker(docker_host, "logs", name).stderr
        pause.wait(0.1)
    else:
        pytest.fail(f"mcpd in the container did not answer: {docker(docker_host, 'logs', name)}")

    assert docker(docker_host, "exec", name, "id", "-un").stdout == "mcpd\n"
    token = docker(docker_host, "exec", name, "cat", "/var/lib/mcpd/admin.token").stdout.strip()
    with McpdClient(url, token) as client:
        assert client.whoami()["user"] == "admin"
        client.create_object(
            "secrets",
            {"kind": "Secret", "metadata": {"name": "probe"}, "spec": {"data": {"k": "v"}}},
        )
        assert client.get_object("secrets", "probe", show_values=True)["spec"]["data"] == {"k": "v"}
    files = docker(docker_host, "exec", name, "ls", "/var/lib/mcpd").stdout.split()
    assert ("mcpd.db" in files) == (database.engine == "sqlite")
    assert "secret.key" not in files  # MCPD_SECRET_KEY was given

    docker(docker_host, "stop", "--time", "30", name)
    state = docker(docker_host, "inspect", "-f", "{{.State.ExitCode}}", name).stdout.strip()
    logs = docker(docker_host, "logs", name)
    assert state == "0", logs.stderr
    assert "Application shutdown complete." in logs.stdout + logs.stderr
