"""`mcpctl apply -f` of one file with 1,000 Server objects, on SQLite and PostgreSQL.

Wall time of the whole command into an empty mcpd (all created), then of the same apply again
(all unchanged). Each round gets a fresh mcpd and a fresh database (a new SQLite file, a new
PostgreSQL schema). The baseline, in the same mcpd right after: the same 1,000 objects as single PUTs sent
sequentially by this process over one keep-alive connection (no CLI start-up, no YAML), for
1,000 other names (created) and for the same names again (unchanged). The note also gives the
share of the wall time spent inside mcpd, from its own latency histogram on /metrics.
"""

from __future__ import annotations

import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench.harness import (
    DATABASES,
    MCPCTL,
    Api,
    Histogram,
    Row,
    postgres_available,
    progress,
    running_mcpd,
    scrape_histogram,
    server_name,
    server_object,
)

OBJECTS = 1000
GOAL = 5.0
PUT_ROUTE = "/api/v1/servers/{name}"
BULK_ROUTE = "/api/v1/apply"  # what `mcpctl apply` sends: up to 500 objects per POST


def write_manifest(path: Path, count: int) -> None:
    """One multi-document YAML file of ``count`` servers, as `mcpctl get -o yaml` writes them."""
    from mcpctl.resources.yamlcodec import dump

    path.write_text("---\n".join(dump(server_object(server_name(i))) for i in range(count)))


def cli_apply(env: dict[str, str], manifest: Path, expect: str) -> float:
    start = time.perf_counter()
    proc = subprocess.run(
        [MCPCTL, "apply", "-f", str(manifest)], env=env, capture_output=True, check=False
    )
    elapsed = time.perf_counter() - start
    lines = proc.stdout.decode().splitlines()
    if proc.returncode != 0 or len(lines) != OBJECTS or not all(s.endswith(expect) for s in lines):
        raise RuntimeError(
            f"apply exited {proc.returncode} with {len(lines)} lines, expected all {expect!r}: "
            f"{proc.stderr.decode()[-2000:]}"
        )
    return elapsed


def raw_puts(api: Api, first: int, expect: int) -> float:
    start = time.perf_counter()
    for i in range(first, first + OBJECTS):
        name = server_name(i)
        status, data = api.request("PUT", f"/api/v1/servers/{name}", server_object(name))
        if status != expect:
            raise RuntimeError(f"PUT {name}: HTTP {status} (expected {expect}): {data[:300]!r}")
    return time.perf_counter() - start


def _one_round(database: str, manifest: Path) -> dict[str, tuple[float, Histogram]]:
    """{case: (wall seconds, mcpd's write-request latency histogram)} for one fresh mcpd."""
    out: dict[str, tuple[float, Histogram]] = {}
    with running_mcpd(database) as mcpd:
        api = mcpd.client()
        env = mcpd.cli_env()
        steps: tuple[tuple[str, Callable[[], float]], ...] = (
            ("cli created", lambda: cli_apply(env, manifest, "created")),
            ("cli unchanged", lambda: cli_apply(env, manifest, "unchanged")),
            ("raw created", lambda: raw_puts(api, OBJECTS, 201)),
            ("raw unchanged", lambda: raw_puts(api, 0, 200)),
        )
        for case, step in steps:
            before = _writes(api)
            wall = step()
            out[case] = (wall, _writes(api).minus(before))
        api.close()
    return out


def _writes(api: Api) -> Histogram:
    """mcpd's latency histogram of both write routes (single PUTs and bulk POSTs)."""
    return scrape_histogram(api, "PUT", PUT_ROUTE).plus(scrape_histogram(api, "POST", BULK_ROUTE))


def run(quick: bool) -> list[Row]:
    rounds = 1 if quick else 3
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="mcpctl-bench-apply-") as tmp:
        manifest = Path(tmp) / "servers.yaml"
        write_manifest(manifest, OBJECTS)
        for database in DATABASES:
            if database == "postgres" and (problem := postgres_available()):
                progress(f"apply-bulk: SKIPPING PostgreSQL ({problem})")
                continue
            results: dict[str, list[tuple[float, Histogram]]] = {}
            for r in range(rounds):
                progress(f"apply-bulk: {database}, round {r + 1}/{rounds}")
                for case, value in _one_round(database, manifest).items():
                    results.setdefault(case, []).append(value)
            db = "SQLite" if database == "sqlite" else "PostgreSQL"
            for outcome in ("created", "unchanged"):
                raw = [w for w, _ in results[f"raw {outcome}"]]
                cli = [w for w, _ in results[f"cli {outcome}"]]
                base = Row(
                    "apply-bulk",
                    f"baseline: {OBJECTS} raw PUTs, 1 connection, {db}, all {outcome}",
                    raw,
                    note="baseline; " + _inside(results[f"raw {outcome}"]),
                )
                rows.append(base)
                rows.append(
                    Row(
                        "apply-bulk",
                        f"`mcpctl apply -f` {OBJECTS} servers, {db}, all {outcome}",
                        cli,
                        baseline=base.median,
                        goal=GOAL,
                        note=_inside(results[f"cli {outcome}"]),
                        details=_buckets(results[f"cli {outcome}"]),
                    )
                )
    return rows


def _inside(values: list[tuple[float, Histogram]]) -> str:
    wall = sum(w for w, _ in values)
    inside = sum(h.total for _, h in values)
    return (
        f"inside mcpd {inside / wall:.0%} of wall; "
        f"{inside / len(values) / OBJECTS * 1000:.2f} ms/object in mcpd"
    )


def _buckets(values: list[tuple[float, Histogram]]) -> str:
    total = Histogram()
    for _, h in values:
        total = total.plus(h)
    return "mcpd write-request histogram, all rounds, requests per bucket: " + total.describe()
