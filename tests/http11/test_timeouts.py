"""Each bound of ``Timeout`` against a raw server that makes it pass: nothing answered, a
stream that stalls, a request nobody reads, no free connection. Each failure closes its
connection: nothing half-used goes back to the pool."""

from __future__ import annotations

import asyncio

import anyio
import pytest

from mcpctl.http11 import (
    HttpClient,
    HttpTimeout,
    PoolTimeout,
    ReadTimeout,
    Timeout,
    WriteTimeout,
)
from tests.http11.servers import SSE_HEAD, chunk, ok, raw_server, read_request

pytestmark = pytest.mark.anyio

SHORT = 0.2


async def test_no_response_head_within_the_read_timeout_is_a_read_timeout() -> None:
    async def handler(n: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(raw, reader)
        await reader.read()  # never answers; ends when the client closes

    async with raw_server(handler) as raw:
        http = HttpClient(raw.url, read_timeout=SHORT)
        with anyio.fail_after(5), pytest.raises(ReadTimeout) as failed:
            async with http.request("POST", "/", body=b"x"):
                pass
        await http.aclose()
    assert failed.value.seconds == SHORT
    assert f"for {SHORT:g} s" in str(failed.value)
    assert raw.requests == [b"x"], "a timeout is never a reason to send the request again"


async def test_a_stream_that_stalls_between_events_is_a_read_timeout() -> None:
    async def handler(n: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(raw, reader)
        writer.write(SSE_HEAD + chunk(b"data: one\n\n"))
        await reader.read()

    async with raw_server(handler) as raw:
        http = HttpClient(raw.url)
        seen: list[str] = []

        async def read_all() -> None:
            async with http.request("GET", "/", timeouts=Timeout(read=SHORT)) as response:
                async for event in response.events():
                    seen.append(event.data)

        with anyio.fail_after(5), pytest.raises(ReadTimeout):
            await read_all()
        await http.aclose()
    assert seen == ["one"]


async def test_a_body_nobody_reads_is_a_write_timeout() -> None:
    stop = anyio.Event()

    async def handler(n: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await stop.wait()  # never reads: the client's send buffer fills up

    async with raw_server(handler) as raw:
        http = HttpClient(raw.url, write_timeout=SHORT)
        with anyio.fail_after(5), pytest.raises(WriteTimeout) as failed:
            async with http.request("POST", "/", body=b"x" * (64 << 20)):
                pass
        stop.set()
        await http.aclose()
    assert isinstance(failed.value, HttpTimeout)
    assert "not sent within 0.2 s" in str(failed.value)


async def test_no_free_connection_within_the_connect_timeout_is_a_pool_timeout() -> None:
    first_read = anyio.Event()
    release = anyio.Event()

    async def handler(n: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            body = await read_request(raw, reader)
            first_read.set()
            await release.wait()
            writer.write(ok(body))

    async def first() -> None:
        async with http.request("POST", "/", body=b"first") as response:
            assert await response.read() == b"first"

    async with raw_server(handler) as raw:
        http = HttpClient(raw.url, max_connections=1, connect_timeout=SHORT)
        with anyio.fail_after(5):
            async with anyio.create_task_group() as tg:
                tg.start_soon(first)
                await first_read.wait()
                with pytest.raises(PoolTimeout, match="no free connection") as failed:
                    async with http.request("POST", "/", body=b"second"):
                        pass
                release.set()
            # The first request's slot is free again, and its connection idle for reuse.
            async with http.request("POST", "/", body=b"third") as response:
                assert await response.read() == b"third"
        await http.aclose()
    assert failed.value.seconds == SHORT
    assert raw.requests == [b"first", b"third"]
    assert raw.connections == 1
