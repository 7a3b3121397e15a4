"""`GET /api/v1/servers?limit=500` with 10,000 servers, on SQLite and PostgreSQL.

Latency of the first chunk and of a middle chunk (continue token after 5,000 rows), measured
per request over one keep-alive HTTP connection to a real `mcpd serve`, side by side with two
baselines on the same connection: `GET /healthz` (the HTTP and framework floor) and
`GET /api/v1/servers/NAME` (one object, with authentication and one database read). mcpd's own
latency histogram for the list route (from /metrics) is in the note of each list row. Last, the
user's view: `mcpctl get servers` fetching all 10,000 in 20 chunks.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from bench.harness import (
    DATABASES,
    MCPCTL,
    Api,
    Histogram,
    Mcpd,
    Row,
    postgres_available,
    progress,
    running_mcpd,
    scrape_histogram,
    seed_servers,
    server_name,
    time_command,
)

CHUNK = 500
GOAL = 0.050
LIST_ROUTE = "/api/v1/servers"


def _timed(api: Api, path: str, runs: int, check: Callable[[bytes], None]) -> list[float]:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        status, data = api.request("GET", path)
        samples.append(time.perf_counter() - start)
        if status != 200:
            raise RuntimeError(f"GET {path}: HTTP {status}: {data[:300]!r}")
        check(data)
    return samples


def _middle_token(api: Api, rows: int) -> str:
    """The continue token handed out after the first ``rows // 2`` servers."""
    token = ""
    for _ in range(rows // 2 // CHUNK):
        suffix = f"&continue={token}" if token else ""
        token = api.json("GET", f"{LIST_ROUTE}?limit={CHUNK}{suffix}")["metadata"]["continue"]
    return token


def _chunk_check(first: str) -> Callable[[bytes], None]:
    needle = f'"name":"{first}"'.encode()

    def check(data: bytes) -> None:
        # Cheap: the chunk starts where it should (no JSON parsing inside the timed loop).
        if needle not in data[:2000]:
            raise RuntimeError(f"chunk does not start at {first}: {data[:300]!r}")

    return check


def _measure(mcpd: Mcpd, db: str, rows: int, runs: int) -> list[Row]:
    api = mcpd.client()
    one = f"{LIST_ROUTE}/{server_name(rows // 2)}"
    first = f"{LIST_ROUTE}?limit={CHUNK}"
    middle = f"{first}&continue={_middle_token(api, rows)}"

    def ok(_: bytes) -> None:
        pass

    for path in (first, middle, one):  # warm the caches and the connection pool
        _timed(api, path, 3, ok)
    health = _timed(api, "/healthz", runs, ok)
    get_one = _timed(api, one, runs, ok)
    h0 = scrape_histogram(api, "GET", LIST_ROUTE)
    first_s = _timed(api, first, runs, _chunk_check(server_name(0)))
    h1 = scrape_histogram(api, "GET", LIST_ROUTE)
    middle_s = _timed(api, middle, runs, _chunk_check(server_name(rows // 2)))
    h2 = scrape_histogram(api, "GET", LIST_ROUTE)
    api.close()

    def server_side(h: Histogram) -> str:
        return (
            f"mcpd histogram: p50 ≈ {h.quantile(0.5) * 1000:.0f} ms, "
            f"p99 ≈ {h.quantile(0.99) * 1000:.0f} ms, mean {h.total / h.count * 1000:.1f} ms"
        )

    base = Row("list-servers", f"baseline: GET /healthz, {db}", health, note="baseline")
    where = f"{rows:,} servers, {db}"
    return [
        base,
        Row(
            "list-servers",
            f"GET one server, {where}",
            get_one,
            baseline=base.median,
            note="auth + 1 row",
        ),
        Row(
            "list-servers",
            f"GET ?limit={CHUNK}, first chunk, {where}",
            first_s,
            baseline=base.median,
            goal=GOAL,
            note=server_side(h1.minus(h0)),
            details="mcpd histogram, requests per bucket: " + h1.minus(h0).describe(),
        ),
        Row(
            "list-servers",
            f"GET ?limit={CHUNK}, middle chunk (continue), {where}",
            middle_s,
            baseline=base.median,
            goal=GOAL,
            note=server_side(h2.minus(h1)),
            details="mcpd histogram, requests per bucket: " + h2.minus(h1).describe(),
        ),
    ]


def run(quick: bool) -> list[Row]:
    rows = 2000 if quick else 10_000
    runs = 15 if quick else 60
    cli_runs = 2 if quick else 5
    out: list[Row] = []
    for database in DATABASES:
        if database == "postgres" and (problem := postgres_available()):
            progress(f"list-servers: SKIPPING PostgreSQL ({problem})")
            continue
        db = "SQLite" if database == "sqlite" else "PostgreSQL"
        with running_mcpd(database) as mcpd:
            progress(f"list-servers: {db}: seeding {rows:,} servers with concurrent PUTs")
            took = seed_servers(mcpd, rows)
            progress(f"list-servers: {db}: seeded in {took:.1f} s; measuring")
            measured = _measure(mcpd, db, rows, runs)
            env = mcpd.cli_env()
            argv = [MCPCTL, "get", "servers", "-o", "name"]
            cli = [time_command(argv, env) for _ in range(cli_runs)]
        out += measured
        out.append(
            Row(
                "list-servers",
                f"`mcpctl get servers -o name`, all {rows:,} ({rows // CHUNK} chunks), {db}",
                cli,
                note=f"seeding {rows:,} servers took {took:.0f} s ({took / rows * 1000:.1f} ms each)",
            )
        )
    return out
