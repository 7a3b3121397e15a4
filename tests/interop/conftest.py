"""Interop tests: real third-party MCP clients (the conformance suite, the MCP Inspector CLI,
the MCP Python SDK) against mcplocal → mcpd relay → real servers run by the process runtime,
and the reliability proofs of issue 4 (a killed mcpd, many concurrent sessions).

mcpd runs on SQLite only here (the relay and mcplocal keep nothing in the database); the
fixtures ``database``, ``settings`` and ``mcplocal`` are those of tests/mcplocal.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest

from tests.interop.tools import EVERYTHING, require, system_node
from tests.mcplocal.conftest import database, drain_pipe, free_port, mcplocal, settings

__all__ = ["database", "everything_http", "mcplocal", "settings"]


@pytest.fixture
def everything_http() -> Iterator[str]:
    """server-everything in its own streamable-HTTP mode on a free loopback port; its URL."""
    require(EVERYTHING)
    port = free_port()
    proc = subprocess.Popen(
        [system_node(), str(EVERYTHING), "streamableHttp"],
        env={"PORT": str(port), "PATH": "/usr/bin:/bin"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        assert proc.stdout is not None
        seen = []
        for raw in proc.stdout:  # it says when it listens; EOF if it died
            seen.append(raw.decode(errors="replace"))
            if f"listening on port {port}" in seen[-1]:
                break
        else:
            pytest.fail(f"server-everything did not start: {''.join(seen)}")
        drain_pipe(proc.stdout)  # it logs every session
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        if proc.stdout is not None:
            proc.stdout.close()
