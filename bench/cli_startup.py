"""CLI start-up: `mcpctl --help` and `mcpctl get servers` next to `python -c pass`.

Each command runs as a fresh subprocess (what a user's shell does), round-robin with the
baseline so that machine noise hits all of them alike. `get servers` talks to a real
`mcpd serve` on SQLite holding 20 servers.

Two environments: with a bytecode cache (children keep .pyc files under a temp dir, as an
installed program does after its first run), and the caller's environment as it is (which on
a venv installed by uv without .pyc files and PYTHONDONTWRITEBYTECODE=1 compiles every import
from source on every run).
"""

from __future__ import annotations

import sys

from bench.harness import (
    MCPCTL,
    Row,
    inherited_bytecode,
    interleaved,
    progress,
    running_mcpd,
    seed_servers,
)

SERVERS = 20
GOAL_HELP = 0.150
GOAL_GET = 0.300
BASELINE = "python -c pass"


def run(quick: bool) -> list[Row]:
    runs = 10 if quick else 30
    variants = {"bytecode cached": True, "inherited env": False}
    with running_mcpd("sqlite") as mcpd:
        seed_servers(mcpd, SERVERS, workers=2)
        commands: dict[str, tuple[list[str], dict[str, str]]] = {}
        for variant, cached in variants.items():
            env = mcpd.cli_env(bytecode_cache=cached)
            commands[f"{BASELINE} ({variant})"] = ([sys.executable, "-c", "pass"], env)
            commands[f"mcpctl --help ({variant})"] = ([MCPCTL, "--help"], env)
            commands[f"mcpctl get servers, {SERVERS} servers on SQLite ({variant})"] = (
                [MCPCTL, "get", "servers"],
                env,
            )
        progress(f"cli-startup: {runs} runs of each of {len(commands)} commands, round-robin")
        samples = interleaved(commands, runs)
    rows: list[Row] = []
    for variant in variants:
        names = [n for n in samples if n.endswith(f"({variant})")]
        base = Row("cli-startup", names[0], samples[names[0]], note="baseline")
        rows.append(base)
        for name in names[1:]:
            goal = GOAL_HELP if "--help" in name else GOAL_GET
            note = inherited_bytecode() if variant == "inherited env" else ""
            rows.append(
                Row("cli-startup", name, samples[name], baseline=base.median, goal=goal, note=note)
            )
    return rows
