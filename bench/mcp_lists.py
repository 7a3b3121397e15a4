"""``tools/list`` through mcplocal on a wide project, and the cold start of a project.

- **cached**: a project of 50 servers x 40 tools (bench/echo_server.py ``--tools 40``, so
  2,000 tools). After the first ``tools/list`` has all of them (every upstream connected),
  many ``tools/list`` requests on one session, taking turns with ``ping`` on the same session
  as the baseline (the cost of a request through mcplocal that does no work). The lean raw
  client is used: parsing 2,000 tools into the SDK's models would time the client.
- **cold start**: per round a fresh mcpd and mcplocal with a project of 10 such servers, none
  running: the time from sending ``initialize`` to the first ``tools/list`` answer that holds
  all 400 tools (mcplocal starts the upstreams in parallel on the endpoint's first use). The
  baseline is the same 10 servers started directly over stdio by 10 SDK clients at once
  (Python start-up and ``initialize`` + ``tools/list``, with no hop). Importing the SDK costs
  each server about half a second of CPU, so on 2 cores that baseline alone is seconds; the
  same pair of rows is measured again with bench/lean_echo_server.py (the same tools, the
  standard library only), whose start-up is small enough to show mcpctl's own share. Its
  direct baseline speaks raw JSON-RPC over the pipes.
"""

from __future__ import annotations

import asyncio
import json
import time

from mcp import StdioServerParameters

from bench.harness import Row, progress, running_mcpd
from bench.mcp_harness import (
    RawMcp,
    echo_argv,
    put_echo_servers,
    put_project,
    raw_session,
    running_mcplocal,
    sdk_session,
)

BENCH = "mcp-lists"
TOOLS = 40
WIDE = 50
COLD = 10
LIST_GOAL = 0.020
COLD_GOAL = 1.5
# 50 servers starting at once on 2 cores take a while: let mcplocal wait for all of them.
MCPLOCAL = {"LIST_WAIT": "60", "CONNECT_TIMEOUT": "120"}
MCPD = {"MCPD_MAX_INSTANCES": "64"}


def names(count: int) -> list[str]:
    return [f"echo-{i:02d}" for i in range(count)]


async def _full_list(session: RawMcp, want: int, limit: float = 180) -> int:
    """List until all ``want`` tools are there; how many requests it took."""
    deadline = time.monotonic() + limit
    for attempt in range(1, 10_000):
        tools = (await session.request("tools/list"))["tools"]
        if len(tools) >= want:
            return attempt
        if time.monotonic() > deadline:
            raise RuntimeError(f"tools/list has {len(tools)} of {want} tools after {limit} s")
        await asyncio.sleep(0.1)
    raise AssertionError("unreachable")


async def _cached(url: str, requests: int) -> tuple[list[float], list[float], int]:
    session = await raw_session(url)
    try:
        t0 = time.perf_counter()
        await _full_list(session, WIDE * TOOLS)
        progress(f"all {WIDE * TOOLS} tools listed after {time.perf_counter() - t0:.1f} s")
        lists: list[float] = []
        pings: list[float] = []
        for _ in range(requests):
            t0 = time.perf_counter()
            await session.request("ping")
            t1 = time.perf_counter()
            tools = (await session.request("tools/list"))["tools"]
            lists.append(time.perf_counter() - t1)
            pings.append(t1 - t0)
            if len(tools) != WIDE * TOOLS:
                raise RuntimeError(f"tools/list answered {len(tools)} tools")
        return lists, pings, len(tools)
    finally:
        await session.close()


async def _cold(url: str) -> tuple[float, int]:
    start = time.perf_counter()
    session = RawMcp(url)
    await session.open()
    try:
        attempts = await _full_list(session, COLD * TOOLS)
        return time.perf_counter() - start, attempts
    finally:
        await session.close()


async def _cold_direct() -> float:
    argv = echo_argv(TOOLS)
    params = StdioServerParameters(command=argv[0], args=argv[1:])

    async def one() -> float:
        async with sdk_session(params) as session:
            await session.list_tools()
            return time.perf_counter()

    start = time.perf_counter()
    ends = await asyncio.gather(*(one() for _ in range(COLD)))
    return max(ends) - start


async def _cold_direct_lean() -> float:
    """The lean servers started at once, each sent initialize and tools/list raw."""
    argv = echo_argv(TOOLS, lean=True)
    hello = {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "b"}}

    async def one() -> float:
        child = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE
        )
        assert child.stdin is not None
        assert child.stdout is not None
        for i, (method, params) in enumerate((("initialize", hello), ("tools/list", {}))):
            message = {"jsonrpc": "2.0", "id": i, "method": method, "params": params}
            child.stdin.write(json.dumps(message).encode() + b"\n")
            await child.stdin.drain()
            await child.stdout.readline()
        done = time.perf_counter()
        child.stdin.close()
        await child.wait()
        return done

    start = time.perf_counter()
    ends = await asyncio.gather(*(one() for _ in range(COLD)))
    return max(ends) - start


def _cold_rows(rounds: int, *, lean: bool) -> list[Row]:
    kind = "lean (standard library) " if lean else ""
    cold: list[float] = []
    direct: list[float] = []
    relists: list[int] = []
    for r in range(rounds):
        direct.append(asyncio.run(_cold_direct_lean() if lean else _cold_direct()))
        with running_mcpd("sqlite", env=MCPD) as mcpd:
            put_echo_servers(mcpd, names(COLD), TOOLS, lean=lean)
            put_project(mcpd, "cold", names(COLD))
            with running_mcplocal(mcpd, MCPLOCAL) as local:
                seconds, attempts = asyncio.run(_cold(local.project_url("cold")))
        cold.append(seconds)
        relists.append(attempts)
        progress(
            f"cold start ({kind or 'SDK '}servers) round {r + 1}/{rounds}: {seconds:.2f} s "
            f"({attempts} tools/list)"
        )
    baseline = Row(
        BENCH, f"baseline: {COLD} {kind}servers started directly over stdio at once", direct
    )
    return [
        baseline,
        Row(
            BENCH,
            f"cold start: `initialize` to the full `tools/list` of {COLD} {kind}servers x "
            f"{TOOLS} tools",
            cold,
            baseline=baseline.median,
            goal=COLD_GOAL,
            note=f"fresh mcpd + mcplocal per round; tools/list requests needed: {relists}",
        ),
    ]


def run(quick: bool) -> list[Row]:
    requests, rounds = (50, 1) if quick else (300, 3)
    rows: list[Row] = []
    with running_mcpd("sqlite", env=MCPD) as mcpd:
        put_echo_servers(mcpd, names(WIDE), TOOLS)
        put_project(mcpd, "wide", names(WIDE))
        with running_mcplocal(mcpd, MCPLOCAL) as local:
            lists, pings, count = asyncio.run(_cached(local.project_url("wide"), requests))
    rows.append(Row(BENCH, "baseline: `ping` through mcplocal, same session", pings))
    rows.append(
        Row(
            BENCH,
            f"`tools/list` (cached) on {WIDE} servers x {TOOLS} tools through mcplocal",
            lists,
            baseline=rows[-1].median,
            goal=LIST_GOAL,
            note=f"{count:,} tools per answer; raw JSON client",
        )
    )
    rows += _cold_rows(rounds, lean=False)
    rows += _cold_rows(rounds, lean=True)
    return rows
