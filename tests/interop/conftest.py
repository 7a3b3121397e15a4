"""Interop tests: real third-party MCP clients (the conformance suite, the MCP Inspector CLI,
the MCP Python SDK) against mcplocal → mcpd relay → real servers run by the process runtime,
and the reliability proofs of issue 4 (a killed mcpd, many concurrent sessions).

mcpd runs on SQLite only here (the relay and mcplocal keep nothing in the database); the
fixtures ``database``, ``settings`` and ``mcplocal`` are those of tests/mcplocal.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest

from tests.interop.tools import CONFORMANCE_SERVER
from tests.mcplocal.conftest import database, drain_pipe, mcplocal, settings

__all__ = ["conformance_http", "database", "mcplocal", "settings"]


@pytest.fixture
def conformance_http() -> Iterator[str]:
    """conformance_server.py serving streamable HTTP on a free loopback port; its URL."""
    proc = subprocess.Popen(
        [sys.executable, str(CONFORMANCE_SERVER), "http", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        assert proc.stdout is not None
        seen = []
        for raw in proc.stdout:  # it says where it listens; EOF if it died
            seen.append(raw.decode(errors="replace"))
            if seen[-1].startswith("listening on "):
                break
        else:
            pytest.fail(f"conformance_server.py did not start: {''.join(seen)}")
        drain_pipe(proc.stdout)
        yield seen[-1].removeprefix("listening on ").strip()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        if proc.stdout is not None:
            proc.stdout.close()
