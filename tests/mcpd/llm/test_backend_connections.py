"""How mcpd reaches its backends (docs/llms.md, "How mcpd reaches backends"): https verified
against the system's CAs plus ``MCPD_LLM_CA_FILE``, a certificate it cannot verify treated as a
connection failure (a sibling serves), connections kept alive from one request and one stream
to the next, 32 concurrent streams through one pool of connections, the environment's proxy,
and what the client does not do (decompress, follow redirects)."""

from __future__ import annotations

import asyncio
import gzip
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import aclosing, asynccontextmanager
from pathlib import Path

import anyio
import httpx
import pytest
from fastapi import FastAPI

from mcpctl.domain.caller import SYSTEM
from mcpctl.http11 import ConnectError, Origins
from mcpctl.mcpd.llm.adapters import BackendFailed, BackendUnreachable, adapter_for
from mcpctl.mcpd.llm.messages import Message, Request, TextDelta, collect
from mcpctl.mcpd.llm.pools import PoolDispatcher, StreamFailed, build_dispatcher
from mcpctl.mcpd.services.secrets import SecretBehaviour
from tests.conftest import state_of
from tests.http11.certs import LocalCA, make_ca
from tests.http11.servers import Raw, forward_proxy, raw_server, read_request
from tests.mcpd.llm.conftest import TIMEOUTS, drain
from tests.mcpd.llm.faulty_backend import FaultyBackend, Ok, Served, serve_backend
from tests.mcpd.llm.test_pools import llm
from tests.mcpd.manifests import must_put

pytestmark = pytest.mark.anyio

HELLO = Request("ignored", [Message.user("Hi")])
STREAMS = 32


@pytest.fixture
def ca(tmp_path: Path) -> LocalCA:
    return make_ca(tmp_path / "ca")


@pytest.fixture
async def secure(ca: LocalCA) -> AsyncIterator[FaultyBackend]:
    async with serve_backend(FaultyBackend("secure"), tls=ca) as served:
        yield served


def mcpd_dispatcher(app: FastAPI, ca_file: Path | None) -> PoolDispatcher:
    """The dispatcher as mcpd builds it from its settings (``MCPD_LLM_CA_FILE`` included)."""
    state = state_of(app)
    secrets = state.objects.behaviour("Secret")
    assert isinstance(secrets, SecretBehaviour)
    settings = state.settings.model_copy(update={"llm_ca_file": ca_file})
    return build_dispatcher(settings, state.objects.uows, secrets, state.authz)


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
async def test_an_https_backend_signed_by_the_configured_ca_serves_on_one_connection(
    api: httpx.AsyncClient, app: FastAPI, ca: LocalCA, secure: FaultyBackend
) -> None:
    assert secure.url.startswith("https://localhost:")
    await must_put(api, llm("secure", secure.url))
    pools = mcpd_dispatcher(app, ca.ca_file)
    try:
        done = await pools.complete("secure", HELLO)
        async with aclosing(pools.stream("secure", HELLO)) as stream:
            events = [event async for event in stream]
        again = await pools.complete("secure", HELLO)
    finally:
        await pools.aclose()

    assert done.answer.message.content == again.answer.message.content == Ok().text
    assert collect(e for e in events if not isinstance(e, StreamFailed)).message.content == (
        Ok().text
    )
    ports = {s.peer_port for s in secure.requests}
    assert len(ports) == 1, "one TLS connection carried the answer, the stream and the next"


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
async def test_a_certificate_mcpd_cannot_verify_is_a_connection_failure_and_a_sibling_serves(
    api: httpx.AsyncClient, app: FastAPI, secure: FaultyBackend, backend: FaultyBackend
) -> None:
    await must_put(
        api, llm("secure", secure.url, poolName="p"), llm("plain", backend.url, poolName="p")
    )
    pools = mcpd_dispatcher(app, None)  # the system's CAs only: the test CA is unknown
    try:
        done = await pools.complete("secure", HELLO)
        pool = await pools.members(SYSTEM, "secure")
    finally:
        await pools.aclose()

    assert done.llm == "plain"
    assert secure.requests == []
    (failure,) = next(m for m in pool["members"] if m["name"] == "secure")["recentFailures"]
    assert "cannot connect" in failure["error"]
    assert "certificate verify failed" in failure["error"]


async def test_an_unverified_certificate_is_unreachable_naming_the_reason(
    secure: FaultyBackend,
) -> None:
    async with Origins() as origins:
        adapter = adapter_for(
            "openai", url=secure.url, api_key=None, timeouts=TIMEOUTS, client=origins
        )
        with pytest.raises(BackendUnreachable, match="certificate verify failed") as failed:
            await adapter.complete(HELLO)

    assert failed.value.retryable
    assert isinstance(failed.value.__cause__, ConnectError)


async def test_requests_and_streams_read_to_their_end_reuse_one_connection(
    backend: FaultyBackend, http: Origins
) -> None:
    adapter = adapter_for("openai", url=backend.url, api_key=None, timeouts=TIMEOUTS, client=http)
    for _ in range(3):
        async with aclosing(adapter.stream(HELLO)) as events:
            assert collect(await drain(events)).message.content == Ok().text
        await adapter.complete(HELLO)

    assert len(backend.requests) == 6
    assert len({s.peer_port for s in backend.requests}) == 1


async def test_32_concurrent_streams_complete_and_the_next_32_reuse_their_connections(
    backend: FaultyBackend, http: Origins
) -> None:
    adapter = adapter_for("openai", url=backend.url, api_key=None, timeouts=TIMEOUTS, client=http)
    texts: list[str] = []

    async def one() -> None:
        async with aclosing(adapter.stream(HELLO)) as events:
            seen = await drain(events)
        assert seen[0] == TextDelta("Hello")
        texts.append(collect(seen).message.content)

    with anyio.fail_after(30):
        for _ in range(2):
            async with anyio.create_task_group() as tg:
                for _ in range(STREAMS):
                    tg.start_soon(one)

    assert texts == [Ok().text] * (2 * STREAMS)
    first_wave: list[Served] = backend.requests[:STREAMS]
    ports = {s.peer_port for s in backend.requests}
    assert len({s.peer_port for s in first_wave}) <= STREAMS
    assert len(ports) <= STREAMS, "the second wave ran on the first wave's connections"


def test_mcpd_refuses_to_start_with_a_ca_file_it_cannot_load(tmp_path: Path) -> None:
    bad = tmp_path / "ca.pem"
    bad.write_text("not a certificate\n")
    result = subprocess.run(
        [sys.executable, "-m", "mcpctl.mcpd", "serve", "--port", "1"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={
            **os.environ,
            "MCPD_DATA_DIR": str(tmp_path / "data"),
            "MCPD_LLM_CA_FILE": str(bad),
        },
    )

    assert result.returncode == 3
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("mcpd: llm_ca_file: ")
    assert f"cannot load CA certificates from {bad}" in lines[0]


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
async def test_mcpd_reaches_backends_through_the_proxy_the_environment_names(
    api: httpx.AsyncClient,
    app: FastAPI,
    backend: FaultyBackend,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await must_put(api, llm("proxied", backend.url))
    async with forward_proxy() as proxy:
        monkeypatch.setenv("HTTP_PROXY", f"http://{proxy.url}")
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        pools = mcpd_dispatcher(app, None)
        try:
            done = await pools.complete("proxied", HELLO)
        finally:
            await pools.aclose()

    assert done.answer.message.content == Ok().text
    (head,) = proxy.heads
    assert head.startswith(f"POST {backend.url}/chat/completions HTTP/1.1\r\n".encode())


@asynccontextmanager
async def answer_once(status_and_headers: bytes, body: bytes) -> AsyncIterator[Raw]:
    """A raw server that answers one request with this status line, headers and body."""

    async def handler(n: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(raw, reader)
        writer.write(status_and_headers + b"Content-Length: %d\r\n\r\n%s" % (len(body), body))

    async with raw_server(handler) as raw:
        yield raw


async def test_a_compressed_answer_is_not_the_api(http: Origins) -> None:
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\n"
    async with answer_once(head, gzip.compress(b"{}")) as raw:
        adapter = adapter_for(
            "openai", url=f"{raw.url}/v1", api_key=None, timeouts=TIMEOUTS, client=http
        )
        with pytest.raises(BackendFailed) as failed:
            await adapter.complete(HELLO)

    assert (failed.value.status, failed.value.retryable) == (502, True)
    assert "content-encoding 'gzip'" in failed.value.message
    assert b"accept-encoding: identity" in raw.heads[0].lower()


async def test_a_redirect_is_not_followed_but_refused(http: Origins) -> None:
    head = b"HTTP/1.1 301 Moved Permanently\r\nLocation: http://elsewhere/v1\r\n"
    async with answer_once(head, b"") as raw:
        adapter = adapter_for(
            "openai", url=f"{raw.url}/v1", api_key=None, timeouts=TIMEOUTS, client=http
        )
        with pytest.raises(BackendFailed) as failed:
            await adapter.complete(HELLO)

    assert (failed.value.status, failed.value.retryable) == (301, False)
    assert raw.connections == 1
