"""The gateways people use today, with the same echo server behind each, for comparison.

Installed by ``scripts/bench-peers`` into their own virtualenvs under .tools/bench-peers/;
when one is missing or cannot be made to work here its row says exactly why.

- **mcp-proxy** (PyPI ``mcp-proxy``): one stdio server behind a streamable-HTTP endpoint,
  ``mcp-proxy --port P -- COMMAND``; clients use ``http://127.0.0.1:P/mcp``. One hop.
- **ContextForge** (PyPI ``mcp-contextforge-gateway``): its ``mcpgateway.translate`` puts the
  stdio server behind streamable HTTP, the gateway (``mcpgateway``, SQLite, JWT auth with a
  token from its own ``create_jwt_token``) registers that as a federated gateway and offers its
  tools in a virtual server; clients use ``http://127.0.0.1:P/servers/ID/mcp`` (the ``/v1/``
  path it advertises answers the SDK client 404). Two hops, like ours.
"""

from __future__ import annotations

import json
import secrets
import shlex
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.harness import child_env, free_port, progress
from bench.mcp_harness import PEERS, background, peer_bin

DESCRIPTIONS = {
    "mcp-proxy": "mcp-proxy 0.13.0 (one hop, streamable HTTP → stdio)",
    "contextforge": "ContextForge gateway 1.1.0 → its translate bridge → stdio",
}


def describe(name: str) -> str:
    return DESCRIPTIONS.get(name, name)


@dataclass
class Peer:
    name: str
    url: str | None = None  # None: could not be started, see ``why``
    headers: dict[str, str] = field(default_factory=dict)
    tool: str = "echo"  # the echo tool's name as the gateway offers it
    why: str = ""


def start_all(stack: ExitStack, command: str) -> Iterator[Peer]:
    """Each peer, started inside ``stack`` (or with why it could not be)."""
    for name, starter in (("mcp-proxy", _mcp_proxy), ("contextforge", _contextforge)):
        try:
            yield starter(stack, command)
        except Exception as exc:  # any failure: the row says why, the others still run
            yield Peer(name, why=explain(exc))


def explain(exc: BaseException) -> str:
    """The first real error inside exception groups, as one line."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    text = " ".join(str(exc).split())[-400:]
    data = getattr(getattr(exc, "error", None), "data", None)
    return f"{exc.__class__.__name__}: {text}" + (f" ({data})" if data else "")


def _missing(venv: str) -> RuntimeError:
    return RuntimeError(f"not installed: run scripts/bench-peers (looked in {PEERS / venv})")


def _mcp_proxy(stack: ExitStack, command: str) -> Peer:
    program = peer_bin("mcp-proxy", "mcp-proxy")
    if program is None:
        raise _missing("mcp-proxy")
    port = free_port()
    argv = [str(program), "--host", "127.0.0.1", "--port", str(port), "--log-level", "WARNING"]
    argv += ["--", *shlex.split(command)]
    url = f"http://127.0.0.1:{port}/mcp"
    stack.enter_context(background(argv, f"http://127.0.0.1:{port}/status", child_env(), "proxy"))
    return Peer("mcp-proxy", url)


def _contextforge(stack: ExitStack, command: str) -> Peer:
    python = peer_bin("contextforge", "python")
    gateway = peer_bin("contextforge", "mcpgateway")
    if python is None or gateway is None:
        raise _missing("contextforge")
    bridge_port, port = free_port(), free_port()
    bridge = [str(python), "-m", "mcpgateway.translate", "--stdio", command]
    bridge += ["--expose-streamable-http", "--port", str(bridge_port), "--host", "127.0.0.1"]
    env = child_env()
    data = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="mcpctl-bench-cf-")))
    env.update(
        DATABASE_URL=f"sqlite:///{data / 'mcp.db'}",
        SSRF_ALLOW_LOCALHOST="true",  # the bridge listens on loopback
        # Off: its default rate limit answers 429 after 100 MCP requests a minute.
        RATE_LIMITING_ENABLED="false",
        RATE_LIMITING_REDIS_ENABLED="false",
        TOOL_RATE_LIMIT="100000000",
        JWT_SECRET_KEY=secrets.token_urlsafe(32),
        AUTH_ENCRYPTION_SECRET=secrets.token_urlsafe(32),
        BASIC_AUTH_PASSWORD="Cc1-" + secrets.token_hex(12),
        PLATFORM_ADMIN_PASSWORD="Aa1-" + secrets.token_hex(12),
        DEFAULT_USER_PASSWORD="Bb1-" + secrets.token_hex(12),
        MCPGATEWAY_UI_ENABLED="false",
        MCPGATEWAY_ADMIN_API_ENABLED="false",
        CACHE_TYPE="memory",
        LOG_LEVEL="WARNING",
        HOST="127.0.0.1",
        PORT=str(port),
        DEV_MODE="true",
    )
    stack.enter_context(
        background(bridge, f"http://127.0.0.1:{bridge_port}/healthz", env, "cf-translate")
    )
    argv = [str(gateway), "--host", "127.0.0.1", "--port", str(port)]
    base = f"http://127.0.0.1:{port}"
    stack.enter_context(background(argv, f"{base}/health", env, "contextforge"))
    # The platform admin's token, signed with the gateway's key by its own tool.
    token = (
        subprocess.run(
            [
                str(python),
                "-m",
                "mcpgateway.utils.create_jwt_token",
                "--username",
                "admin@example.com",
                "--exp",
                "120",
                "--secret",
                env["JWT_SECRET_KEY"],
            ],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        .stdout.strip()
        .splitlines()[-1]
    )
    auth = {"Authorization": f"Bearer {token}"}
    gw = _post(
        auth,
        f"{base}/gateways",
        {
            "name": "bench-echo",
            "url": f"http://127.0.0.1:{bridge_port}/mcp",
            "transport": "STREAMABLEHTTP",
        },
    )
    tools: list[dict[str, Any]] = []
    deadline = time.monotonic() + 30
    while not tools and time.monotonic() < deadline:
        tools = [t for t in _get(auth, f"{base}/tools") if t.get("gatewayId") == gw["id"]]
        time.sleep(0.2)
    if not tools:
        raise RuntimeError("the gateway registered the bridge but listed no tools within 30 s")
    server = _post(
        auth,
        f"{base}/servers",
        {"server": {"name": "bench", "associated_tools": [t["id"] for t in tools]}},
    )
    progress(f"contextforge: virtual server {server['id']}, tools {[t['name'] for t in tools]}")
    url = f"{base}/servers/{server['id']}/mcp"
    return Peer("contextforge", url, auth, tool=tools[0]["name"])


def _post(auth: dict[str, str], url: str, body: Any) -> Any:
    headers = {"Content-Type": "application/json", **auth}
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers=headers)
    with urllib.request.urlopen(req, timeout=60) as resp:
        return json.load(resp)


def _get(auth: dict[str, str], url: str) -> Any:
    with urllib.request.urlopen(urllib.request.Request(url, headers=auth), timeout=60) as resp:
        return json.load(resp)
