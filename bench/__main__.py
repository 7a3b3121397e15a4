"""``python -m bench [--quick] [names...]``: run the benchmarks, print one markdown table."""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from collections.abc import Callable

from bench import (
    apply_bulk,
    authz,
    backup,
    cli_startup,
    list_servers,
    llm_gateway,
    mcp_lists,
    mcp_overhead,
    mcp_throughput,
)
from bench.harness import Row, load_average, markdown_table, progress

BENCHMARKS: dict[str, Callable[[bool], list[Row]]] = {
    "cli-startup": cli_startup.run,
    "apply-bulk": apply_bulk.run,
    "list-servers": list_servers.run,
    "backup": backup.run,
    "authz": authz.run,
    "mcp-overhead": mcp_overhead.run,
    "mcp-throughput": mcp_throughput.run,
    "mcp-lists": mcp_lists.run,
    "llm-gateway": llm_gateway.run,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Run the mcpctl benchmarks and print one markdown table (see bench/README.md).",
    )
    parser.add_argument("--quick", action="store_true", help="Fewer runs and rows (a smoke run).")
    parser.add_argument(
        "names",
        nargs="*",
        metavar="NAME",
        help=f"Which to run (default all): {', '.join(BENCHMARKS)}",
    )
    args = parser.parse_args(argv)
    unknown = [n for n in args.names if n not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark {unknown[0]!r} (known: {', '.join(BENCHMARKS)})")
    rows: list[Row] = []
    start = time.perf_counter()
    load_before = load_average()
    for name in args.names or list(BENCHMARKS):
        progress(f"== {name}")
        rows += BENCHMARKS[name](args.quick)
    cpus = len(os.sched_getaffinity(0))
    print(
        f"mcpctl benchmarks{' (--quick)' if args.quick else ''}: Python {platform.python_version()}, "
        f"{platform.system()} {platform.machine()}, {cpus} CPUs, "
        f"{time.perf_counter() - start:.0f} s in all; load average {load_before} before, "
        f"{load_average()} after\n"
    )
    print(markdown_table(rows))
    missed = [f"{r.bench}: {r.case}" for r in rows if r.verdict.endswith("MISSED**")]
    if missed:
        print("Goals missed: " + "; ".join(missed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
