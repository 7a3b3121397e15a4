"""Calls per second through mcplocal with 16 concurrent clients, and through mcpd's relay
alone as the baseline, in the same run.

Each client is its own MCP session (the lean raw client of bench/mcp_harness.py, so the
clients' own CPU stays small next to the servers'; all share the same cores). In each round
all 16 clients make their calls at once, each waiting for its answer before the next; the
row's samples are the round's wall time per call (1 / calls per second). All the sessions
share the one echo instance in mcpd, as a project's clients do.

Measured twice: with the SDK echo server, and with bench/lean_echo_server.py (the same tool
on the standard library). The SDK's stdio transport hands every line to a worker thread and
costs the server itself 0.5 to 0.9 ms of CPU per call, which on 2 shared cores caps any path
through it near 1,200 calls/s whatever the proxy does; the lean server shows what mcpd and
mcplocal can carry.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping

from bench.harness import Row, percentile, progress, running_mcpd
from bench.mcp_harness import (
    RawMcp,
    echo_params,
    put_echo_servers,
    put_project,
    raw_session,
    relay_url,
    running_mcplocal,
)

BENCH = "mcp-throughput"
CLIENTS = 16
GOAL_CALLS_PER_SECOND = 1500


async def _round(sessions: list[RawMcp], calls: int, tool: str) -> float:
    async def client(session: RawMcp, offset: int) -> None:
        for i in range(calls):
            result = await session.request("tools/call", echo_params(offset + i, tool))
            if result.get("isError"):
                raise RuntimeError(f"{tool} answered an error: {result}")

    start = time.perf_counter()
    await asyncio.gather(*(client(s, n * calls) for n, s in enumerate(sessions)))
    return (time.perf_counter() - start) / (calls * len(sessions))


async def _measure(
    paths: Mapping[str, tuple[str, dict[str, str], str]], rounds: int, calls: int
) -> tuple[dict[str, list[float]], dict[str, float]]:
    """Seconds per call for each round on each path, and the client's CPU share per path."""
    sessions = {
        name: [await raw_session(url, headers) for _ in range(CLIENTS)]
        for name, (url, headers, _) in paths.items()
    }
    out: dict[str, list[float]] = {name: [] for name in paths}
    cpu: dict[str, float] = dict.fromkeys(paths, 0.0)
    wall: dict[str, float] = dict.fromkeys(paths, 0.0)
    try:
        for name, (_, _, tool) in paths.items():
            await _round(sessions[name], max(calls // 10, 5), tool)  # warm-up
        for r in range(rounds):
            for name, (_, _, tool) in paths.items():
                c0, w0 = time.process_time(), time.perf_counter()
                out[name].append(await _round(sessions[name], calls, tool))
                cpu[name] += time.process_time() - c0
                wall[name] += time.perf_counter() - w0
            progress(f"round {r + 1}/{rounds}")
    finally:
        for group in sessions.values():
            for session in group:
                await session.close()
    return out, {name: cpu[name] / wall[name] for name in paths}


def run(quick: bool) -> list[Row]:
    rounds, calls = (2, 40) if quick else (5, 150)
    with running_mcpd("sqlite") as mcpd:
        put_echo_servers(mcpd, ["echo"])
        put_echo_servers(mcpd, ["lean"], lean=True)
        put_project(mcpd, "bench", ["echo"])
        put_project(mcpd, "leanbench", ["lean"])
        with running_mcplocal(mcpd) as local:
            auth = {"Authorization": f"Bearer {mcpd.token}"}
            paths = {
                "relay": (relay_url(mcpd, "echo"), auth, "echo"),
                "mcplocal": (local.project_url("bench"), {}, "echo__echo"),
                "relay-lean": (relay_url(mcpd, "lean"), auth, "echo"),
                "mcplocal-lean": (local.project_url("leanbench"), {}, "lean__echo"),
            }
            samples, client_cpu = asyncio.run(_measure(paths, rounds, calls))
    total = CLIENTS * calls
    rows = []
    for server, suffix in (("the SDK echo server", ""), ("the lean echo server", "-lean")):
        direct, proxied = samples[f"relay{suffix}"], samples[f"mcplocal{suffix}"]

        def note(values: list[float], name: str) -> str:
            rate = 1 / percentile(values, 50)
            return (
                f"{rate:,.0f} calls/s; the bench client's own CPU: {client_cpu[name]:.0%} of a core"
            )

        case = f"baseline: {CLIENTS} clients through mcpd's relay alone to {server}, {total:,} calls/round"
        rows.append(
            Row(
                BENCH,
                case,
                direct,
                note=note(direct, f"relay{suffix}") + " (time per call = 1/throughput)",
            )
        )
        case = f"{CLIENTS} clients through mcplocal → relay → {server}, {total:,} calls/round"
        rows.append(
            Row(
                BENCH,
                case,
                proxied,
                baseline=percentile(direct, 50),
                goal=1 / GOAL_CALLS_PER_SECOND,
                note=note(proxied, f"mcplocal{suffix}")
                + f" (goal ≥ {GOAL_CALLS_PER_SECOND:,} calls/s)",
            )
        )
    return rows
