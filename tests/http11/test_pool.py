"""The connection pool: bounded under many concurrent streams, a connection reused only after a
response read to its end, never after an error or a stream left half read; idle expiry; a
client that never sends a request twice; the end of a stream read briefly for reuse."""

from __future__ import annotations

import asyncio

import anyio
import pytest

from mcpctl.http11 import ConnectionLost, HttpClient
from tests.http11.servers import SSE_HEAD, Raw, chunk, ok, raw_server, read_request

pytestmark = pytest.mark.anyio

STREAMS = 32
BOUND = 8


async def serve_streams(
    raw: Raw, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, wave: Wave
) -> None:
    """Answers each request on the connection with three events, once a wave is in flight."""
    while True:
        body = await read_request(raw, reader)
        await wave.arrive()
        writer.write(SSE_HEAD)
        for n in range(3):
            writer.write(chunk(b"data: %s-%d\n\n" % (body, n)))
            await writer.drain()
        writer.write(chunk(b""))
        wave.leave()


class Wave:
    """Holds the first ``size`` requests until all of them are in, and counts the most that
    were ever in flight at once."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.in_flight = 0
        self.most = 0
        self.full = anyio.Event()

    async def arrive(self) -> None:
        self.in_flight += 1
        self.most = max(self.most, self.in_flight)
        if self.in_flight >= self.size:
            self.full.set()
        await self.full.wait()

    def leave(self) -> None:
        self.in_flight -= 1


async def test_32_concurrent_streams_share_a_bounded_pool_and_all_complete() -> None:
    wave = Wave(BOUND)

    async def handler(n: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await serve_streams(raw, reader, writer, wave)

    results: dict[int, list[str]] = {}

    async def stream(i: int) -> None:
        async with http.request("POST", "/", body=b"%d" % i) as response:
            results[i] = [event.data async for event in response.events()]

    async with raw_server(handler) as raw:
        http = HttpClient(raw.url, max_connections=BOUND, max_idle=BOUND, connect_timeout=5)
        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                for i in range(STREAMS):
                    tg.start_soon(stream, i)
        await http.aclose()
    assert results == {i: [f"{i}-0", f"{i}-1", f"{i}-2"] for i in range(STREAMS)}
    assert wave.most == BOUND, "never more requests in flight than connections allowed"
    assert raw.connections == BOUND, "every stream read to its end left its connection reusable"


async def test_a_connection_idle_past_its_expiry_is_not_reused() -> None:
    async def handler(n: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            writer.write(ok(await read_request(raw, reader)))

    async with raw_server(handler) as raw:
        http = HttpClient(raw.url, idle_expiry=0.0)
        for body in (b"one", b"two"):
            async with http.request("POST", "/", body=body) as response:
                assert await response.read() == body
        await http.aclose()
    assert raw.connections == 2


async def test_without_resend_stale_a_reused_connection_the_server_drops_fails_once() -> None:
    async def handler(n: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(ok(await read_request(raw, reader)))
        await read_request(raw, reader)  # and closes without an answer

    async with raw_server(handler) as raw:
        http = HttpClient(raw.url, resend_stale=False)
        async with http.request("POST", "/", body=b"first") as response:
            await response.read()
        with pytest.raises(ConnectionLost, match="closed before the response headers"):
            async with http.request("POST", "/", body=b"second"):
                pass
        await http.aclose()
    assert raw.requests == [b"first", b"second"], "the second request was sent once"
    assert raw.connections == 1


async def test_a_chunked_stream_dropped_after_an_event_fails_and_its_connection_goes() -> None:
    async def handler(n: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(raw, reader)
        if n == 1:
            writer.write(SSE_HEAD + chunk(b"data: one\n\n"))  # and the connection drops
        else:
            writer.write(ok(b"again"))

    seen: list[str] = []

    async def read_stream() -> None:
        async with http.request("GET", "/") as response:
            async for event in response.events():
                seen.append(event.data)

    async with raw_server(handler) as raw:
        http = HttpClient(raw.url)
        with pytest.raises(ConnectionLost, match="closed in the middle of the response body"):
            await read_stream()
        async with http.request("GET", "/") as response:
            assert await response.read() == b"again"
        await http.aclose()
    assert seen == ["one"]
    assert raw.connections == 2


async def test_the_end_of_a_stream_read_after_its_last_event_keeps_the_connection() -> None:
    done_seen = anyio.Event()

    async def handler(n: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(raw, reader)
        writer.write(SSE_HEAD + chunk(b"data: [DONE]\n\n"))
        await done_seen.wait()  # the end of the chunked body comes after the client saw [DONE]
        writer.write(chunk(b""))
        writer.write(ok(await read_request(raw, reader)))

    async with raw_server(handler) as raw:
        http = HttpClient(raw.url)
        with anyio.fail_after(5):
            async with http.request("GET", "/") as response:
                events = response.events()
                assert (await anext(events)).data == "[DONE]"
                done_seen.set()
                await response.discard_rest(5.0)
                assert response.complete
            async with http.request("POST", "/", body=b"next") as response:
                assert await response.read() == b"next"
        await http.aclose()
    assert raw.connections == 1


async def test_a_stream_whose_end_does_not_come_soon_is_not_reused() -> None:
    async def handler(n: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(raw, reader)
        if n == 1:
            writer.write(SSE_HEAD + chunk(b"data: [DONE]\n\n"))
            await reader.read()  # the rest never comes
        else:
            writer.write(ok(b"fresh"))

    async with raw_server(handler) as raw:
        http = HttpClient(raw.url)
        with anyio.fail_after(5):
            async with http.request("GET", "/") as response:
                assert (await anext(response.events())).data == "[DONE]"
                await response.discard_rest(0.05)
                assert not response.complete
            async with http.request("GET", "/") as response:
                assert await response.read() == b"fresh"
        await http.aclose()
    assert raw.connections == 2


@pytest.mark.parametrize(("unterminated", "expected"), [(False, ["a"]), (True, ["a", "b"])])
async def test_a_last_event_without_its_blank_line_is_dispatched_only_when_asked(
    unterminated: bool, expected: list[str]
) -> None:
    async def handler(n: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(raw, reader)
        writer.write(SSE_HEAD + chunk(b"data: a\n\ndata: b") + chunk(b""))

    async with raw_server(handler) as raw:
        http = HttpClient(raw.url)
        async with http.request("GET", "/") as response:
            events = response.events(dispatch_unterminated=unterminated)
            assert [event.data async for event in events] == expected
        await http.aclose()
