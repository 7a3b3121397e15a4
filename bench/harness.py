"""Shared machinery: a real ``mcpd serve`` subprocess on a free port, databases, timing, stats.

Every benchmark measures its subject side by side with a baseline in the same run, and reports
medians and p99 (never a single number, never a timed assertion).
"""

from __future__ import annotations

import asyncio
import http.client
import json
import math
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

POSTGRES_URL = os.environ.get(
    "MCPCTL_BENCH_POSTGRES_URL",
    os.environ.get("MCPCTL_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"),
)
DATABASES = ("sqlite", "postgres")
BIN = Path(sys.executable).parent
MCPCTL = str(BIN / "mcpctl")


# -- statistics -----------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100), linear interpolation between closest ranks."""
    if not values:
        return math.nan
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


@dataclass
class Row:
    """One line of the results table. Times are seconds; the table shows milliseconds."""

    bench: str
    case: str
    samples: list[float]
    baseline: float | None = None  # median of the baseline row, for the ratio column
    goal: float | None = None  # seconds; compared with the median
    p99_goal: float | None = None  # seconds; compared with the p99 (default: ``goal``)
    note: str = ""
    details: str = ""  # printed below the table

    @property
    def median(self) -> float:
        return percentile(self.samples, 50)

    @property
    def p99(self) -> float:
        return percentile(self.samples, 99)

    @property
    def verdict(self) -> str:
        if self.goal is None:
            return ""
        if self.median > self.goal:
            return "**MISSED**"
        p99_goal = self.goal if self.p99_goal is None else self.p99_goal
        return "met" if self.p99 <= p99_goal else "met (p99 over)"


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:,.1f}"


def markdown_table(rows: Sequence[Row]) -> str:
    lines = [
        "| benchmark | case | n | median ms | p99 ms | ratio | goal | verdict | note |",
        "|---|---|--:|--:|--:|--:|---|---|---|",
    ]
    for r in rows:
        ratio = f"{r.median / r.baseline:.2f}x" if r.baseline else ""
        goal = f"median ≤ {_ms(r.goal)} ms" if r.goal is not None else ""
        if r.p99_goal is not None:
            goal += f", p99 ≤ {_ms(r.p99_goal)} ms"
        lines.append(
            f"| {r.bench} | {r.case} | {len(r.samples)} | {_ms(r.median)} | {_ms(r.p99)} "
            f"| {ratio} | {goal} | {r.verdict} | {r.note} |"
        )
    details = [f"- {r.bench}, {r.case}: {r.details}" for r in rows if r.details]
    if details:
        lines += ["", "Details:", "", *details]
    return "\n".join(lines) + "\n"


def progress(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


# -- child processes -----------------------------------------------------------------------


def pycache_dir() -> Path:
    """Where children keep compiled bytecode (outside the venv and the repo; kept between runs)."""
    return Path(tempfile.gettempdir()) / "mcpctl-bench-pycache"


def child_env(*, bytecode_cache: bool = True) -> dict[str, str]:
    """The environment for a child process.

    With ``bytecode_cache`` (the default) children read and write .pyc files under
    :func:`pycache_dir`, as an installed program does after its first run, even where the
    caller's environment says PYTHONDONTWRITEBYTECODE or the venv was installed without .pyc
    files (uv's default). Without it, the caller's environment is passed on unchanged.
    """
    env = dict(os.environ)
    if bytecode_cache:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(pycache_dir())
    return env


def inherited_bytecode() -> str:
    """How the caller's environment runs Python code: from cached bytecode or compiled anew."""
    import importlib.util

    import click

    path = str(click.__file__)
    prefix = os.environ.get("PYTHONPYCACHEPREFIX")
    cached = Path(importlib.util.cache_from_source(path)).exists()
    writes = not os.environ.get("PYTHONDONTWRITEBYTECODE")
    if cached:
        return "bytecode cached in the venv"
    if writes:
        return "bytecode written on first run" + (f" under {prefix}" if prefix else "")
    return "PYTHONDONTWRITEBYTECODE=1 and no .pyc in the venv: every import compiled from source"


# -- timing subprocesses --------------------------------------------------------------------


def time_command(argv: Sequence[str], env: dict[str, str], *, expect_rc: int = 0) -> float:
    """Wall time of one subprocess run, from spawn to exit (output discarded)."""
    start = time.perf_counter()
    proc = subprocess.run(argv, env=env, capture_output=True, check=False)
    elapsed = time.perf_counter() - start
    if proc.returncode != expect_rc:
        raise RuntimeError(
            f"{' '.join(argv)} exited {proc.returncode}: {proc.stderr.decode()[-2000:]}"
        )
    return elapsed


def interleaved(
    commands: Mapping[str, tuple[Sequence[str], dict[str, str]]], runs: int, warmup: int = 2
) -> dict[str, list[float]]:
    """Run each (argv, env) ``runs`` times, round-robin, so drift hits all of them alike."""
    for _ in range(warmup):
        for argv, env in commands.values():
            time_command(argv, env)
    out: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(runs):
        for name, (argv, env) in commands.items():
            out[name].append(time_command(argv, env))
    return out


def load_average() -> str:
    """The 1-minute load average (other work on the machine skews every number)."""
    try:
        return Path("/proc/loadavg").read_text().split()[0]
    except OSError:
        return "?"


# -- databases ------------------------------------------------------------------------------


async def _pg_execute(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(POSTGRES_URL, timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def postgres_available() -> str | None:
    """None when PostgreSQL answers, else why not."""
    try:
        asyncio.run(_pg_execute("SELECT 1"))
    except Exception as exc:  # any failure means: skip PostgreSQL, and say why
        return f"{exc.__class__.__name__}: {exc}"
    return None


@contextmanager
def postgres_schema() -> Iterator[str]:
    """A fresh, empty schema on the PostgreSQL server, dropped afterwards."""
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    asyncio.run(_pg_execute(f'CREATE SCHEMA "{schema}"'))
    try:
        yield schema
    finally:
        asyncio.run(_pg_execute(f'DROP SCHEMA "{schema}" CASCADE'))


# -- mcpd ----------------------------------------------------------------------------------


@dataclass
class CpuUse:
    """Where a process's threads spent their time (Linux ``/proc/PID/task/*/schedstat``):
    seconds on a CPU, and seconds runnable but waiting for one."""

    on_cpu: float = 0.0
    waiting: float = 0.0

    def __add__(self, other: CpuUse) -> CpuUse:
        return CpuUse(self.on_cpu + other.on_cpu, self.waiting + other.waiting)

    def __sub__(self, other: CpuUse) -> CpuUse:
        return CpuUse(self.on_cpu - other.on_cpu, self.waiting - other.waiting)


def cpu_use(pid: int) -> CpuUse:
    """What ``pid``'s threads have used so far (nothing when it is gone or not Linux)."""
    total = CpuUse()
    try:
        threads = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return total
    for tid in threads:
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as fh:
                on_cpu, waiting, _ = fh.read().split()
        except (OSError, ValueError):
            continue  # the thread ended meanwhile
        total += CpuUse(int(on_cpu) / 1e9, int(waiting) / 1e9)
    return total


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Mcpd:
    """A running ``mcpd serve`` and what a client needs to talk to it."""

    proc: subprocess.Popen[bytes]
    port: int
    data_dir: Path
    token: str
    workdir: Path
    database: str
    database_url: str  # what mcpd was given (SQLite: its file in the data dir)
    database_schema: str | None = None  # PostgreSQL: the fresh schema mcpd runs in

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def cli_env(self, *, bytecode_cache: bool = True) -> dict[str, str]:
        """Environment for an ``mcpctl`` subprocess logged in to this mcpd."""
        env = child_env(bytecode_cache=bytecode_cache)
        env.update(
            MCPCTL_SERVER=self.url,
            MCPCTL_TOKEN=self.token,
            MCPCTL_CONFIG=str(self.workdir / "config.yaml"),  # absent: nothing else leaks in
        )
        return env

    def client(self) -> Api:
        return Api(self.port, self.token)


def _wait_healthy(proc: subprocess.Popen[bytes], port: int, log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"mcpd exited {proc.returncode}:\n{log.read_text()[-3000:]}")
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
        try:
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        finally:
            conn.close()
        time.sleep(0.05)
    raise RuntimeError(f"mcpd did not answer /healthz within {timeout} s:\n{log.read_text()}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGINT (uvicorn's graceful shutdown), then wait; kill only if it hangs."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextmanager
def running_mcpd(
    database: str, *, source: Path | None = None, env: Mapping[str, str] | None = None
) -> Iterator[Mcpd]:
    """``mcpd serve`` on a free port with a temp data dir and an empty database of the kind.

    ``source``: run mcpd from another copy of the package (a folder holding ``mcpctl/``, put
    first on PYTHONPATH), e.g. the last commit's, to compare before and after in one run.
    ``env``: more environment for mcpd (``MCPD_*`` settings).
    """
    with tempfile.TemporaryDirectory(prefix="mcpctl-bench-") as tmp:
        workdir = Path(tmp)
        data_dir = workdir / "data"
        with _database_args(database) as (args, env_extra):
            db_url = POSTGRES_URL if database == "postgres" else f"sqlite:///{data_dir / 'mcpd.db'}"
            port = free_port()
            # Only what we say: no MCPD_* from the caller's shell (a database URL, a port).
            env = {k: v for k, v in child_env().items() if not k.startswith("MCPD_")}
            env.update(env_extra)
            env.update(env or {})
            if source is not None:
                env["PYTHONPATH"] = os.pathsep.join([str(source), env.get("PYTHONPATH", "")])
            log = workdir / "mcpd.log"
            argv = [sys.executable, *profiler(f"mcpd-{database}"), "-m", "mcpctl.mcpd", "serve"]
            argv += ["--port", str(port)]
            argv += ["--data-dir", str(data_dir), "--log-level", "warning", *args]
            with log.open("wb") as log_fh:
                proc = subprocess.Popen(argv, env=env, stdout=log_fh, stderr=subprocess.STDOUT)
            try:
                _wait_healthy(proc, port, log, timeout=60)
                token = (data_dir / "admin.token").read_text().strip()
                schema = env_extra.get("MCPD_DATABASE_SCHEMA")
                yield Mcpd(proc, port, data_dir, token, workdir, database, db_url, schema)
            finally:
                stop(proc)


def before_source() -> Path | None:
    """The folder named by ``MCPCTL_BENCH_BEFORE`` (another copy of the ``mcpctl`` package,
    e.g. ``git archive REV src | tar -x -C /tmp/before`` gives ``/tmp/before/src``), if any:
    the benchmarks that support it also measure mcpd (and mcplocal) run from it."""
    folder = os.environ.get("MCPCTL_BENCH_BEFORE")
    if not folder:
        return None
    path = Path(folder)
    if not (path / "mcpctl" / "__init__.py").is_file():
        raise RuntimeError(f"MCPCTL_BENCH_BEFORE={folder}: no mcpctl package in that folder")
    return path


def profiler(what: str) -> list[str]:
    """``-m cProfile -o FILE`` when MCPCTL_BENCH_PROFILE names a directory, else nothing."""
    folder = os.environ.get("MCPCTL_BENCH_PROFILE")
    if not folder:
        return []
    Path(folder).mkdir(parents=True, exist_ok=True)
    out = Path(folder) / f"{what}-{time.strftime('%H%M%S')}-{uuid.uuid4().hex[:6]}.prof"
    progress(f"profiling {what} into {out}")
    return ["-m", "cProfile", "-o", str(out)]


@contextmanager
def _database_args(database: str) -> Iterator[tuple[list[str], dict[str, str]]]:
    if database == "sqlite":
        yield [], {}
    elif database == "postgres":
        with postgres_schema() as schema:
            yield ["--database-url", POSTGRES_URL], {"MCPD_DATABASE_SCHEMA": schema}
    else:
        raise ValueError(f"unknown database {database!r}")


# -- a small keep-alive HTTP client ----------------------------------------------------------


class Api:
    """One keep-alive connection to mcpd with one token (not thread-safe: one per thread)."""

    def __init__(self, port: int, token: str) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}

    def request(self, method: str, path: str, body: Any = None) -> tuple[int, bytes]:
        headers = dict(self.headers)
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        for attempt in range(2):
            try:
                self.conn.request(method, path, body=data, headers=headers)
                resp = self.conn.getresponse()
                return resp.status, resp.read()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                # uvicorn closes a connection idle for 5 s: reconnect once.
                self.conn.close()
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def json(self, method: str, path: str, body: Any = None) -> Any:
        status, data = self.request(method, path, body)
        if status >= 300:
            raise RuntimeError(f"{method} {path}: HTTP {status}: {data[:500]!r}")
        return json.loads(data)

    def close(self) -> None:
        self.conn.close()


def server_object(name: str) -> dict[str, Any]:
    """A plain command server, as a user would write it."""
    return {
        "apiVersion": "mcpctl/v1",
        "kind": "Server",
        "metadata": {"name": name, "labels": {"bench": "yes"}},
        "spec": {
            "description": f"time server {name}",
            "command": "uvx",
            "args": ["mcp-server-time", "--local-timezone", "UTC"],
        },
    }


def server_name(i: int) -> str:
    return f"srv-{i:05d}"


def seed_servers(mcpd: Mcpd, count: int, *, workers: int = 8) -> float:
    """PUT ``count`` servers with ``workers`` concurrent keep-alive connections; seconds taken."""

    def work(indices: range) -> None:
        api = mcpd.client()
        try:
            for i in indices:
                name = server_name(i)
                status, data = api.request("PUT", f"/api/v1/servers/{name}", server_object(name))
                if status not in (200, 201):
                    raise RuntimeError(f"PUT {name}: HTTP {status}: {data[:300]!r}")
        finally:
            api.close()

    start = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(work, [range(w, count, workers) for w in range(workers)]))
    return time.perf_counter() - start


# -- Prometheus ---------------------------------------------------------------------------


@dataclass
class Histogram:
    """Cumulative bucket counts of one series of ``mcpd_http_request_duration_seconds``."""

    buckets: dict[float, float] = field(default_factory=dict)
    count: float = 0.0
    total: float = 0.0

    def minus(self, other: Histogram) -> Histogram:
        return Histogram(
            {le: n - other.buckets.get(le, 0.0) for le, n in self.buckets.items()},
            self.count - other.count,
            self.total - other.total,
        )

    def plus(self, other: Histogram) -> Histogram:
        keys = set(self.buckets) | set(other.buckets)
        return Histogram(
            {le: self.buckets.get(le, 0.0) + other.buckets.get(le, 0.0) for le in keys},
            self.count + other.count,
            self.total + other.total,
        )

    def describe(self) -> str:
        """Requests per bucket (not cumulative), e.g. ``≤25ms: 31, ≤50ms: 29``."""
        parts, prev = [], 0.0
        for le, n in sorted(self.buckets.items()):
            if n - prev:
                bound = "+Inf" if math.isinf(le) else f"{le * 1000:g}ms"
                parts.append(f"≤{bound}: {n - prev:.0f}")
            prev = n
        return ", ".join(parts) or "no requests"

    def quantile(self, q: float) -> float:
        """Like PromQL histogram_quantile: linear inside the bucket the rank falls in."""
        if self.count <= 0:
            return math.nan
        rank = self.count * q
        prev_le, prev_n = 0.0, 0.0
        for le, n in sorted(self.buckets.items()):
            if n >= rank:
                if math.isinf(le):
                    return prev_le
                return prev_le + (le - prev_le) * ((rank - prev_n) / max(n - prev_n, 1e-12))
            prev_le, prev_n = le, n
        return prev_le


# Label values hold braces (route="/api/v1/servers/{name}"): match the outer ones greedily.
_BUCKET = re.compile(
    r"^mcpd_http_request_duration_seconds_bucket\{(?P<labels>.*)\}\s+(?P<value>\S+)$"
)
_SUMCOUNT = re.compile(
    r"^mcpd_http_request_duration_seconds_(?P<what>sum|count)\{(?P<labels>.*)\}\s+(?P<value>\S+)$"
)


def _labels(text: str) -> dict[str, str]:
    return dict(re.findall(r'(\w+)="([^"]*)"', text))


def scrape_histogram(api: Api, method: str, route: str) -> Histogram:
    """The latency histogram mcpd itself recorded for one route (from /metrics)."""
    status, data = api.request("GET", "/metrics")
    if status != 200:
        raise RuntimeError(f"/metrics: HTTP {status}")
    hist = Histogram()
    for line in data.decode().splitlines():
        if m := _BUCKET.match(line):
            labels = _labels(m["labels"])
            if labels.get("method") == method and labels.get("route") == route:
                hist.buckets[float(labels["le"])] = float(m["value"])
        elif m := _SUMCOUNT.match(line):
            labels = _labels(m["labels"])
            if labels.get("method") == method and labels.get("route") == route:
                if m["what"] == "sum":
                    hist.total = float(m["value"])
                else:
                    hist.count = float(m["value"])
    return hist
