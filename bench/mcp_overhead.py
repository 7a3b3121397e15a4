"""What our two hops add to a tool call: the same echo tool (bench/echo_server.py) called
(a) directly over stdio, (b) through mcpd's relay alone, (c) through mcplocal → relay →
stdio, and, where scripts/bench-peers installed them, (d) through the peers' gateways.

(f) is the least two hops of Python cost: bench/lean_hops.py's front and hub (HTTP → one TCP
line stream → the same stdio server) forward and do nothing else, on the event loop ours use;
once more with the front an ASGI app under uvicorn, as mcplocal and mcpd are served, which
prices uvicorn and ASGI for one hop.

(e) splits the added latency: the SDK client calling the lean echo server (standard library,
next to no work per call) over stdio and over streamable HTTP. Their difference is what the
SDK client itself spends on HTTP instead of stdio, which any HTTP endpoint costs it, ours
or a peer's; the rest of the added latency is the hops'.

``MCPCTL_BENCH_BEFORE=DIR`` adds path (c) once more with mcpd and mcplocal run from another
copy of the package (``git archive REV src | tar -x -C /tmp/before``, then
``MCPCTL_BENCH_BEFORE=/tmp/before/src``): before and after, side by side in one run.

Every path uses the SDK client (``mode="legacy"``, no cache, calls through
``session.send_request``) from one event loop; sessions are opened and warmed up first, then
the paths take turns in blocks of 100 calls so drift hits all of them alike. mcpd runs on
SQLite (the relay does not touch the database on a call, beyond the audit event).
"""

from __future__ import annotations

import asyncio
import os
import shlex
from collections.abc import Callable, Iterator
from contextlib import AsyncExitStack, ExitStack, contextmanager
from dataclasses import dataclass, field

from mcp import StdioServerParameters
from mcp.client.session import ClientSession

from bench import peers
from bench.harness import (
    CpuUse,
    Row,
    before_source,
    child_env,
    cpu_use,
    free_port,
    percentile,
    progress,
    running_mcpd,
)
from bench.mcp_harness import (
    background,
    echo_argv,
    put_echo_servers,
    put_project,
    relay_url,
    running_lean_hops,
    running_mcplocal,
    sdk_session,
    timed_calls,
)

BENCH = "mcp-overhead"
BLOCK = 100
WARMUP = 50
ADDED_P50 = 0.0010
ADDED_P99 = 0.0030


@dataclass(frozen=True)
class Target:
    """One path: where the SDK client connects, with which headers, which tool it calls, and
    the processes of ours on the path whose CPU is measured while it runs (name -> pid)."""

    where: str | StdioServerParameters
    headers: dict[str, str]
    tool: str
    ours: dict[str, int] = field(default_factory=dict)


Cpu = dict[str, CpuUse]  # process name ("client", "mcplocal", "mcpd") -> use on one path


@contextmanager
def _targets() -> Iterator[tuple[dict[str, Target], dict[str, str]]]:
    """name -> target for every path that can run here; peer name -> why it cannot."""
    argv = echo_argv()
    with ExitStack() as stack:
        mcpd = stack.enter_context(running_mcpd("sqlite"))
        put_echo_servers(mcpd, ["echo"])
        put_project(mcpd, "bench", ["echo"])
        local = stack.enter_context(running_mcplocal(mcpd))
        auth = {"Authorization": f"Bearer {mcpd.token}"}
        targets: dict[str, Target] = {
            "direct": Target(StdioServerParameters(command=argv[0], args=argv[1:]), {}, "echo"),
            "relay": Target(relay_url(mcpd, "echo"), auth, "echo", {"mcpd": mcpd.proc.pid}),
            "mcplocal": Target(
                local.project_url("bench"),
                {},
                "echo__echo",
                {"mcplocal": local.pid, "mcpd": mcpd.proc.pid},
            ),
        }
        before = before_source()
        if before is not None:
            old = stack.enter_context(running_mcpd("sqlite", source=before))
            put_echo_servers(old, ["echo"])
            put_project(old, "bench", ["echo"])
            old_local = stack.enter_context(running_mcplocal(old, source=before))
            targets["before"] = Target(
                old_local.project_url("bench"),
                {},
                "echo__echo",
                {"mcplocal": old_local.pid, "mcpd": old.proc.pid},
            )
        hops = stack.enter_context(running_lean_hops(argv))
        targets["lean-hops"] = Target(hops.url, {}, "echo", hops.pids)
        asgi_hops = stack.enter_context(running_lean_hops(argv, asgi=True))
        targets["lean-hops-asgi"] = Target(asgi_hops.url, {}, "echo", asgi_hops.pids)
        lean = echo_argv(lean=True)
        port = free_port()
        floor = f"http://127.0.0.1:{port}/mcp"
        stack.enter_context(background([*lean, "--http", str(port)], floor, child_env(), "lean"))
        targets["stdio-floor"] = Target(
            StdioServerParameters(command=lean[0], args=lean[1:]), {}, "echo"
        )
        targets["http-floor"] = Target(floor, {}, "echo")
        missing: dict[str, str] = {}
        for peer in peers.start_all(stack, shlex.join(argv)):
            if peer.url is None:
                progress(f"{peer.name}: not measured: {peer.why}")
                missing[peer.name] = peer.why
            else:
                targets[peer.name] = Target(peer.url, peer.headers, peer.tool)
        yield targets, missing


async def _measure(
    targets: dict[str, Target], calls: int, missing: dict[str, str]
) -> tuple[dict[str, list[float]], dict[str, Cpu]]:
    """Each path's call times, and the CPU its processes used while it ran."""
    async with AsyncExitStack() as stack:
        sessions: dict[str, ClientSession] = {}
        for name, target in targets.items():
            try:
                session = await stack.enter_async_context(sdk_session(target.where, target.headers))
                await timed_calls(session, WARMUP, tool=target.tool)
            except Exception as exc:
                if name in LABELS:
                    raise
                missing[name] = f"failed at its first calls: {peers.explain(exc)}"
                continue
            sessions[name] = session
        out: dict[str, list[float]] = {name: [] for name in sessions}
        cpu: dict[str, Cpu] = {name: {} for name in sessions}
        for start in range(0, calls, BLOCK):
            for name, session in list(sessions.items()):
                target = targets[name]
                pids = {"client": os.getpid(), **target.ours}
                before = {who: cpu_use(pid) for who, pid in pids.items()}
                try:
                    out[name] += await timed_calls(
                        session, min(BLOCK, calls - start), start, target.tool
                    )
                except Exception as exc:
                    if name in LABELS:
                        raise
                    why = f"failed after {len(out.pop(name))} calls: {peers.explain(exc)}"
                    missing[name] = why
                    progress(f"{name}: {why}")
                    del sessions[name], cpu[name]
                    continue
                for who, pid in pids.items():
                    used = cpu_use(pid) - before[who]
                    cpu[name][who] = cpu[name].get(who, CpuUse()) + used
            if start % 1000 == 0:
                progress(f"{start + BLOCK}/{calls} calls on each path")
        return out, cpu


def _cpu_note(cpu: Cpu, calls: int) -> str:
    """Per call: each measured process's CPU, and how long it waited for a CPU."""
    parts = [
        f"{'the SDK client' if who == 'client' else who} {use.on_cpu / calls * 1e6:.0f} µs "
        f"(waited {use.waiting / calls * 1e6:.0f} µs)"
        for who, use in cpu.items()
    ]
    return "; CPU per call: " + ", ".join(parts) if parts else ""


LABELS: dict[str, Callable[[int], str]] = {
    "direct": lambda n: f"baseline: echo over stdio, SDK client, {n:,} sequential calls",
    "relay": lambda n: f"(b) echo through mcpd's relay, {n:,} sequential calls",
    "mcplocal": lambda n: f"(c) echo through mcplocal → relay → stdio, {n:,} sequential calls",
    "before": lambda n: (
        f"(c) echo through mcplocal → relay → stdio, mcpd and mcplocal from "
        f"MCPCTL_BENCH_BEFORE, {n:,} sequential calls"
    ),
    "lean-hops": lambda n: (
        f"(f) echo through two hops that only forward (bench/lean_hops.py), {n:,} sequential calls"
    ),
    "lean-hops-asgi": lambda n: (
        f"(f) the same, the front an ASGI app served by uvicorn, {n:,} sequential calls"
    ),
    "stdio-floor": lambda n: f"(e) the lean echo server over stdio, {n:,} sequential calls",
    "http-floor": lambda n: (
        f"(e) the lean echo server over streamable HTTP, {n:,} sequential calls"
    ),
}


def run(quick: bool) -> list[Row]:
    calls = 300 if quick else 2000
    with _targets() as (targets, missing):
        samples, cpu = asyncio.run(_measure(targets, calls, missing))
    direct = samples.pop("direct")
    base50, base99 = percentile(direct, 50), percentile(direct, 99)
    ours = percentile(samples["mcplocal"], 50)
    rows = [
        Row(
            BENCH,
            LABELS["direct"](calls),
            direct,
            note="baseline" + _cpu_note(cpu["direct"], calls),
        )
    ]
    stdio_floor, http_floor = samples.pop("stdio-floor"), samples.pop("http-floor")
    for name, values in samples.items():
        added50 = percentile(values, 50) - base50
        added99 = percentile(values, 99) - base99
        note = f"added over direct: p50 {added50 * 1000:.2f} ms, p99 {added99 * 1000:.2f} ms"
        if name in LABELS:
            label = LABELS[name](calls)
        else:
            label = f"(d) echo through {peers.describe(name)}, {calls:,} sequential calls"
        row = Row(BENCH, label, values, baseline=base50, note=note)
        if name == "mcplocal":
            row.goal, row.p99_goal = base50 + ADDED_P50, base99 + ADDED_P99
            row.note += " (goal: added p50 ≤ 1.0 ms, p99 ≤ 3.0 ms)"
        elif name == "lean-hops":
            row.note += (
                f"; the least two Python hops add here: (c) adds "
                f"{(ours - percentile(values, 50)) * 1000:.2f} ms more at p50"
            )
        elif name == "lean-hops-asgi":
            tax = percentile(values, 50) - percentile(samples["lean-hops"], 50)
            row.note += f"; uvicorn and ASGI cost the front {tax * 1000:.2f} ms at p50"
        elif name not in LABELS:
            faster = ours < percentile(values, 50)
            row.note += f"; mcplocal's p50 is {'below' if faster else '**ABOVE**'} this one's"
        row.note += _cpu_note(cpu[name], len(values))
        rows.append(row)
    for name, why in missing.items():
        rows[0].details += f"(d) {peers.describe(name)} not measured: {why} "
    rows += _floor_rows(
        calls, stdio_floor, http_floor, percentile(samples["mcplocal"], 50) - base50
    )
    rows[-2].note += _cpu_note(cpu["stdio-floor"], len(stdio_floor))
    rows[-1].note += _cpu_note(cpu["http-floor"], len(http_floor))
    return rows


def _floor_rows(
    calls: int, stdio_floor: list[float], http_floor: list[float], added: float
) -> list[Row]:
    """(e): the SDK client's own cost of HTTP over stdio, and so the hops' share of ``added``."""
    floor50 = percentile(stdio_floor, 50)
    client = percentile(http_floor, 50) - floor50
    rows = [Row(BENCH, LABELS["stdio-floor"](calls), stdio_floor, note="baseline of (e)")]
    note = (
        f"the SDK client's own HTTP costs p50 {client * 1000:.2f} ms over stdio; "
        f"so of (c)'s added p50 {added * 1000:.2f} ms, mcplocal and the relay add "
        f"{(added - client) * 1000:.2f} ms"
    )
    rows.append(Row(BENCH, LABELS["http-floor"](calls), http_floor, baseline=floor50, note=note))
    return rows
