"""A real `mcpd serve` killed with SIGKILL leaves its instances behind; the next start reaps
them (pid files checked against the kernel's start time), and a clean stop leaves nothing."""

from __future__ import annotations

import http.client
import json
import signal
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_mcpd_subprocess import clean_env, free_port, healthy, started, wait_until
from tests.mcpd.instances.running import fixture_args
from tests.mcpd.instances.test_supervisor import alive

pytestmark = pytest.mark.slow


def call(url: str, token: str, method: str, path: str, body: Any = None) -> Any:
    request = urllib.request.Request(
        url + path,
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        raw = response.read()
    return (
        [json.loads(line) for line in raw.splitlines()]
        if path.endswith("logs")
        else json.loads(raw)
    )


def running_instance(url: str, token: str) -> dict[str, Any] | None:
    items = call(url, token, "GET", "/api/v1/instances")["items"]
    return items[0] if items and items[0]["status"]["state"] == "Running" else None


def child_of(url: str, token: str) -> int:
    """The pid of the grandchild the fixture reported (0 while it has not yet)."""
    lines = call(url, token, "GET", "/api/v1/servers/fx/logs")
    children = [int(line["text"][6:]) for line in lines if line["text"].startswith("child ")]
    return children[-1] if children else 0


def test_instances_of_a_killed_mcpd_are_reaped_at_the_next_start(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = clean_env(tmp_path)
    serve = [sys.executable, "-m", "mcpctl.mcpd", "serve", "--port", str(port)]
    serve += ["--data-dir", str(data_dir)]
    argv = fixture_args("--spawn-at-start")
    server = {
        "apiVersion": "mcpctl/v1",
        "kind": "Server",
        "metadata": {"name": "fx"},
        "spec": {"command": argv[0], "args": argv[1:], "keepAlive": True},
    }

    with started(serve, env, tmp_path / "mcpd1.log") as first:
        wait_until(lambda: healthy(url), "mcpd /healthz", first, tmp_path / "mcpd1.log")
        token = (data_dir / "admin.token").read_text().strip()
        call(url, token, "PUT", "/api/v1/servers/fx", server)
        old = call(url, token, "POST", "/api/v1/servers/fx/restart")["status"]["pid"]
        old_child = child_of(url, token)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
    # The server itself exits when its stdin closes; its grandchild is an orphan now.
    assert alive(old_child)

    with started(serve, env, tmp_path / "mcpd2.log") as second:
        log = tmp_path / "mcpd2.log"
        wait_until(lambda: healthy(url), "mcpd /healthz", second, log)
        reaped = not alive(old) and not alive(old_child)
        wait_until(lambda: running_instance(url, token) is not None, "keep-alive", second, log)
        new = running_instance(url, token)
        assert new is not None
        new_pid = new["status"]["pid"]
        wait_until(lambda: bool(child_of(url, token)), "its child", second, log)
        new_child = child_of(url, token)
        # A follower of the logs must not hold up the shutdown (the instances stop after it).
        follower = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        follower.request(
            "GET",
            "/api/v1/servers/fx/logs?follow=true",
            headers={"Authorization": f"Bearer {token}"},
        )
        assert follower.getresponse().status == 200
        second.send_signal(signal.SIGTERM)
        second.wait(timeout=30)
        follower.close()

    assert reaped
    assert new_child != old_child
    assert not alive(new_pid)
    assert not alive(new_child)
    assert list((data_dir / "instances" / "pids").glob("*.json")) == []
