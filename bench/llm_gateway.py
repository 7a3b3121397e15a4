"""What mcpd's OpenAI-compatible endpoint adds in front of an LLM backend (issue 5, "Speed").

One run, one machine: bench/fast_llm_backend.py (a backend of ours that answers in tens of
microseconds, so the gateway's overhead shows), one ``mcpd serve`` on SQLite with an Llm
pointing at it, and the SAME client on both paths: directly to the backend's
``/v1/chat/completions``, and through mcpd's (model = the Llm's name, the admin token).

- Non-streaming latency: sequential requests, the paths taking turns in blocks of 100.
  Goal: added p50 ≤ 1 ms, added p99 ≤ 5 ms.
- Time to first token, streaming: from sending the request to the first event that carries
  text (the stream is then read to its end), same turns. Reported, with the same goals.
- Throughput: 32 concurrent streams against a backend whose every stream takes 20 ms (its
  words spread over that time), so the direct path's rate is the backend's limit (32 / 20 ms =
  1,600 streams/s at most). Goal: through mcpd ≥ 95% of the direct rate, i.e. the backend, not
  mcpd, is the bottleneck; mcpd's CPU share (of one core) is in the note.

The client is ``mcpctl.http11.HttpClient`` (httptools, about 0.1 ms of CPU per request), so
its own cost, the same on both paths, stays small next to what is measured. Secondary rows do
the same with the official ``openai`` SDK (its own cost is larger; the difference is what
counts). Everything shares the machine's cores: the client, the backend and mcpd.

``MCPCTL_BENCH_BEFORE=DIR`` adds a second mcpd run from another copy of the package (a folder
holding ``mcpctl/``, e.g. ``git archive HEAD src``), measured in the same turns: before/after.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import AsyncExitStack, ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from openai import AsyncOpenAI

from bench.harness import (
    Histogram,
    Mcpd,
    Row,
    before_source,
    child_env,
    free_port,
    percentile,
    progress,
    running_mcpd,
    scrape_histogram,
    stop,
)
from bench.mcp_harness import wait_http
from mcpctl.http11 import HttpClient

BENCH = "llm-gateway"
FAST_BACKEND = Path(__file__).with_name("fast_llm_backend.py")
CHAT = "/v1/chat/completions"
BLOCK = 100
WARMUP = 100
ADDED_P50 = 0.0010
ADDED_P99 = 0.0050
STREAMS = 32
STREAM_MS = 20
RATE_SHARE = 0.95
MESSAGES = [{"role": "user", "content": "Say hello."}]
TEXT = "Hello from the fast backend."
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

Timed = Callable[[], Awaitable[float]]


# -- processes -------------------------------------------------------------------------------


@dataclass
class Backend:
    url: str
    proc: subprocess.Popen[bytes]


@contextmanager
def fast_backend(stream_ms: float = 0.0) -> Iterator[Backend]:
    """bench/fast_llm_backend.py on a free port."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    argv = [sys.executable, str(FAST_BACKEND), "--port", str(port), "--stream-ms", str(stream_ms)]
    with tempfile.TemporaryDirectory(prefix="mcpctl-bench-llm-") as tmp:
        log = Path(tmp) / "backend.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(argv, env=child_env(), stdout=out, stderr=subprocess.STDOUT)
        try:
            wait_http(proc, f"{url}/healthz", log)
            yield Backend(url, proc)
        finally:
            stop(proc)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def put_llm(mcpd: Mcpd, name: str, backend: Backend) -> None:
    api = mcpd.client()
    try:
        spec = {"provider": "openai", "url": f"{backend.url}/v1", "model": "fast-model"}
        manifest = {
            "apiVersion": "mcpctl/v1",
            "kind": "Llm",
            "metadata": {"name": name},
            "spec": spec,
        }
        api.json("PUT", f"/api/v1/llms/{name}", manifest)
    finally:
        api.close()


# -- one path: a client, a target, a model ---------------------------------------------------


@dataclass
class Route:
    """One way to the backend: the lean client on an origin, with its headers and bodies."""

    name: str
    client: HttpClient
    headers: dict[str, str]
    whole: bytes
    streamed: bytes

    @classmethod
    def make(cls, name: str, origin: str, model: str, token: str | None = None) -> Route:
        headers = {"content-type": "application/json", "accept": "application/json"}
        if token:
            headers["authorization"] = f"Bearer {token}"
        base = {"model": model, "messages": MESSAGES, "max_tokens": 16}
        return cls(
            name,
            HttpClient(origin, max_idle=2 * STREAMS, connect_timeout=10),
            headers,
            json.dumps(base).encode(),
            json.dumps(base | {"stream": True}).encode(),
        )

    async def complete(self) -> float:
        start = time.perf_counter()
        async with self.client.request(
            "POST", CHAT, headers=self.headers, body=self.whole
        ) as response:
            data = await response.read()
        elapsed = time.perf_counter() - start
        if response.status != 200 or TEXT.encode() not in data:
            raise RuntimeError(f"{self.name}: HTTP {response.status}: {data[:300]!r}")
        return elapsed

    async def first_token(self) -> float:
        """Seconds to the first event that carries text; the stream is read to its end."""
        start = time.perf_counter()
        first = 0.0
        text: list[str] = []
        async with self.client.request(
            "POST", CHAT, headers=self.headers, body=self.streamed
        ) as response:
            if response.status != 200:
                raise RuntimeError(
                    f"{self.name}: HTTP {response.status}: {await response.read()!r}"
                )
            async for event in response.events():
                if event.data == "[DONE]":
                    continue
                choices = json.loads(event.data).get("choices") or [{}]
                piece = (choices[0].get("delta") or {}).get("content")
                if piece:
                    if not first:
                        first = time.perf_counter() - start
                    text.append(piece)
        if "".join(text) != TEXT:
            raise RuntimeError(f"{self.name}: streamed {''.join(text)!r}")
        return first

    async def stream(self) -> float:
        """Seconds for one whole stream (every event read, none parsed)."""
        start = time.perf_counter()
        async with self.client.request(
            "POST", CHAT, headers=self.headers, body=self.streamed
        ) as response:
            events = [event.data async for event in response.events()]
        if response.status != 200 or events[-1] != "[DONE]":
            raise RuntimeError(f"{self.name}: HTTP {response.status}, ended with {events[-1:]}")
        return time.perf_counter() - start


# -- measurements ----------------------------------------------------------------------------


@dataclass
class Samples:
    values: dict[str, list[float]] = field(default_factory=dict)
    cpu: dict[str, float] = field(default_factory=dict)  # the gateway's CPU in its path's turns


async def alternate(
    calls: Mapping[str, Timed], count: int, pids: Mapping[str, int], label: str
) -> Samples:
    """``count`` sequential calls on each path, taking turns in blocks, after a warm-up;
    ``pids``: the gateway process of each path that has one, whose CPU is counted."""
    out = Samples({name: [] for name in calls}, dict.fromkeys(pids, 0.0))
    for call in calls.values():
        for _ in range(WARMUP):
            await call()
    for start in range(0, count, BLOCK):
        n = min(BLOCK, count - start)
        for name, call in calls.items():
            pid = pids.get(name)
            before = cpu_seconds(pid) if pid else 0.0
            out.values[name] += [await call() for _ in range(n)]
            if pid:
                out.cpu[name] += cpu_seconds(pid) - before
        if start % 1000 == 0:
            progress(f"{label}: {start + n}/{count} on each path")
    return out


@dataclass
class Rate:
    seconds_per_stream: list[float] = field(default_factory=list)  # one per round
    latencies: list[float] = field(default_factory=list)
    mcpd_cpu: float = 0.0
    backend_cpu: float = 0.0
    client_cpu: float = 0.0
    wall: float = 0.0
    streams: int = 0
    connections: int = 0  # that the backend accepted during the rounds


def backend_stats(backend: Backend) -> tuple[int, int]:
    """The connections and requests ``backend`` has taken so far."""
    parts = urlsplit(backend.url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=10)
    try:
        conn.request("GET", "/stats")
        stats = json.loads(conn.getresponse().read())
    finally:
        conn.close()
    return int(stats["connections"]), int(stats["requests"])


async def throughput_round(
    path: Route, seconds: float, rate: Rate, backend: Backend, gateway: int | None
) -> None:
    """``STREAMS`` clients each streaming back to back for ``seconds``."""
    backend_pid = backend.proc.pid
    connections = backend_stats(backend)[0]
    deadline = time.perf_counter() + seconds
    done = 0

    async def client() -> None:
        nonlocal done
        while time.perf_counter() < deadline:
            rate.latencies.append(await path.stream())
            done += 1

    cpu = (cpu_seconds(gateway) if gateway else 0.0, cpu_seconds(backend_pid), own_cpu_seconds())
    start = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(STREAMS)))
    wall = time.perf_counter() - start
    rate.mcpd_cpu += (cpu_seconds(gateway) - cpu[0]) if gateway else 0.0
    rate.backend_cpu += cpu_seconds(backend_pid) - cpu[1]
    rate.client_cpu += own_cpu_seconds() - cpu[2]
    rate.wall += wall
    rate.streams += done
    rate.connections += backend_stats(backend)[0] - connections
    rate.seconds_per_stream.append(wall / done)


async def throughput(
    paths: dict[str, Route], rounds: int, seconds: float, backend: Backend, pids: Mapping[str, int]
) -> dict[str, Rate]:
    out = {name: Rate() for name in paths}
    for path in paths.values():  # warm-up: every connection opened
        await asyncio.gather(*(path.stream() for _ in range(STREAMS)))
    for n in range(rounds):
        for name, path in paths.items():
            await throughput_round(path, seconds, out[name], backend, pids.get(name))
        progress(f"throughput: round {n + 1}/{rounds} on each path")
    return out


# -- the official SDK, for the secondary rows -------------------------------------------------


def sdk_calls(client: AsyncOpenAI, model: str) -> tuple[Timed, Timed]:
    async def complete() -> float:
        start = time.perf_counter()
        answer = await client.chat.completions.create(
            model=model,
            messages=[{"role": "user", "content": "Say hello."}],
            max_tokens=16,
        )
        elapsed = time.perf_counter() - start
        if answer.choices[0].message.content != TEXT:
            raise RuntimeError(f"SDK on {model}: {answer}")
        return elapsed

    async def first_token() -> float:
        start = time.perf_counter()
        first = 0.0
        stream = await client.chat.completions.create(
            model=model,
            messages=[{"role": "user", "content": "Say hello."}],
            max_tokens=16,
            stream=True,
        )
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content and not first:
                first = time.perf_counter() - start
        return first

    return complete, first_token


# -- the run ---------------------------------------------------------------------------------


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.3f} ms"


def _added(values: list[float], base: list[float]) -> tuple[float, float]:
    return (
        percentile(values, 50) - percentile(base, 50),
        percentile(values, 99) - percentile(base, 99),
    )


GATEWAYS = {
    "mcpd": "through mcpd /v1/chat/completions",
    "before": "through mcpd /v1/chat/completions, mcpd from MCPCTL_BENCH_BEFORE",
}


def _latency_rows(samples: Samples, what: str, count: int, *, goal: bool, client: str) -> list[Row]:
    direct = samples.values["direct"]
    base50, base99 = percentile(direct, 50), percentile(direct, 99)
    rows = [
        Row(
            BENCH,
            f"baseline: {what} straight to the backend, {client}, {count:,}",
            direct,
            note=f"baseline; p50 {_ms(base50)}, p99 {_ms(base99)}",
        ),
    ]
    for name in ("before", "mcpd"):
        through = samples.values.get(name)
        if through is None:
            continue
        added50, added99 = _added(through, direct)
        row = Row(
            BENCH,
            f"{what} {GATEWAYS[name]}, {client}, {count:,}",
            through,
            baseline=base50,
            note=f"p50 {_ms(percentile(through, 50))}, p99 {_ms(percentile(through, 99))}; "
            f"added: p50 {_ms(added50)}, p99 {_ms(added99)}",
        )
        if goal and name == "mcpd":
            row.goal, row.p99_goal = base50 + ADDED_P50, base99 + ADDED_P99
            row.note += " (goal: added p50 ≤ 1.0 ms, p99 ≤ 5.0 ms)"
        if samples.cpu.get(name):
            row.note += f"; mcpd CPU {samples.cpu[name] / len(through) * 1000:.2f} ms per request"
        rows.append(row)
    return rows


def _rate_rows(rates: dict[str, Rate]) -> list[Row]:
    direct = rates["direct"]
    base = percentile(direct.seconds_per_stream, 50)
    rows = []
    for name, rate in sorted(
        rates.items(), key=lambda item: ("direct", "before", "mcpd").index(item[0])
    ):
        per_second = rate.streams / rate.wall
        note = (
            f"{per_second:,.0f} streams/s; stream p50 {percentile(rate.latencies, 50) * 1000:.1f}"
            f" ms, p99 {percentile(rate.latencies, 99) * 1000:.1f} ms; CPU (share of one core): "
            + (f"mcpd {rate.mcpd_cpu / rate.wall:.0%}, " if name != "direct" else "")
            + f"backend {rate.backend_cpu / rate.wall:.0%}, "
            f"client {rate.client_cpu / rate.wall:.0%}; {rate.connections} new connections to "
            f"the backend during the rounds"
        )
        if name == "direct":
            case = f"baseline: {STREAMS} concurrent {STREAM_MS} ms streams straight to the backend"
            rows.append(Row(BENCH, case, rate.seconds_per_stream, note="baseline; " + note))
            continue
        share = (direct.wall / direct.streams) / (rate.wall / rate.streams)
        case = (
            f"{STREAMS} concurrent {STREAM_MS} ms streams {GATEWAYS[name]} (ms per stream = 1/rate)"
        )
        row = Row(BENCH, case, rate.seconds_per_stream, baseline=base, note=note)
        row.note += f"; {share:.1%} of the direct rate"
        if name == "mcpd":
            row.goal = base / RATE_SHARE
            row.p99_goal = max(direct.seconds_per_stream) / RATE_SHARE
            row.note += f" (goal ≥ {RATE_SHARE:.0%})"
        if rate.mcpd_cpu:
            per_stream = rate.mcpd_cpu / rate.streams
            row.details = (
                f"mcpd spent {per_stream * 1000:.2f} ms of CPU per stream: one core of its own "
                f"would carry about {1 / per_stream:,.0f} streams/s"
            )
        rows.append(row)
    return rows


def _histogram(mcpd: Mcpd) -> Histogram:
    api = mcpd.client()
    try:
        return scrape_histogram(api, "POST", CHAT)
    finally:
        api.close()


async def _measure(
    fast: Backend, slow: Backend, gateways: Mapping[str, Mcpd], count: int, quick: bool
) -> list[Row]:
    """Every measurement on every path: "direct", "mcpd" and, if given, "before"."""
    pids = {name: mcpd.proc.pid for name, mcpd in gateways.items()}
    paths = {"direct": Route.make("direct", fast.url, "fast-model")}
    streams = {"direct": Route.make("direct", slow.url, "fast-model")}
    for name, mcpd in gateways.items():
        paths[name] = Route.make(name, mcpd.url, "fast", mcpd.token)
        streams[name] = Route.make(name, mcpd.url, "slow", mcpd.token)
    mcpd = gateways["mcpd"]
    rows: list[Row] = []

    completes = {name: p.complete for name, p in paths.items()}
    before = _histogram(mcpd)
    samples = await alternate(completes, count, pids, "non-streaming")
    inside = _histogram(mcpd).minus(before)
    rows += _latency_rows(samples, "non-streaming request", count, goal=True, client="lean client")
    rows[-1].details = (
        f"mcpd's own request histogram ({CHAT}, from request in to answer out, the backend "
        f"included): mean {inside.total / max(inside.count, 1) * 1000:.3f} ms over "
        f"{inside.count:.0f} requests ({inside.describe()})"
    )
    firsts = {name: p.first_token for name, p in paths.items()}
    samples = await alternate(firsts, count, pids, "time to first token")
    rows += _latency_rows(
        samples, "streamed, time to first token", count, goal=True, client="lean client"
    )

    rounds, seconds = (2, 1.0) if quick else (5, 3.0)
    rows += _rate_rows(await throughput(streams, rounds, seconds, slow, pids))

    sdk_count = 200 if quick else 1000
    async with AsyncExitStack() as stack:
        sdks = {
            "direct": sdk_calls(
                await stack.enter_async_context(
                    AsyncOpenAI(base_url=f"{fast.url}/v1", api_key="unused", max_retries=0)
                ),
                "fast-model",
            )
        }
        for name, gateway in gateways.items():
            client = AsyncOpenAI(base_url=f"{gateway.url}/v1", api_key=gateway.token, max_retries=0)
            sdks[name] = sdk_calls(await stack.enter_async_context(client), "fast")
        samples = await alternate(
            {name: calls[0] for name, calls in sdks.items()}, sdk_count, pids, "SDK"
        )
        rows += _latency_rows(
            samples, "non-streaming request", sdk_count, goal=False, client="openai SDK"
        )
        samples = await alternate(
            {name: calls[1] for name, calls in sdks.items()}, sdk_count, pids, "SDK stream"
        )
        rows += _latency_rows(
            samples, "streamed, time to first token", sdk_count, goal=False, client="openai SDK"
        )
    for path in (*paths.values(), *streams.values()):
        await path.client.aclose()
    return rows


def run(quick: bool) -> list[Row]:
    count = 300 if quick else 2000
    with ExitStack() as stack:
        fast = stack.enter_context(fast_backend())
        slow = stack.enter_context(fast_backend(STREAM_MS))
        gateways = {"mcpd": stack.enter_context(running_mcpd("sqlite"))}
        source = before_source()
        if source is not None:
            gateways["before"] = stack.enter_context(running_mcpd("sqlite", source=source))
        for gateway in gateways.values():
            put_llm(gateway, "fast", fast)
            put_llm(gateway, "slow", slow)
        rows = asyncio.run(_measure(fast, slow, gateways, count, quick))
    if source is not None:
        rows[0].details = f"the before rows: mcpd from {source} (MCPCTL_BENCH_BEFORE)"
    return rows
