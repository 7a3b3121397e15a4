"""The HTTP/1.1 client against a real uvicorn server on loopback, and against raw
asyncio servers for the answers uvicorn never gives (a server that drops a request, a body
delimited by close, an interim 100 response)."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio
import pytest
import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from mcpctl.http11 import Event, EventStream, HttpClient, HttpError
from tests.http11.servers import raw_server, read_request
from tests.ready_server import ReadyServer

pytestmark = pytest.mark.anyio

BOUND = 5.0
Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


@dataclass
class Upstream:
    """An ASGI app that records who called it; ``/sse`` sends what the test puts in ``sse``."""

    ports: list[int] = field(default_factory=list)
    seen_headers: list[dict[str, str]] = field(default_factory=list)
    sse: asyncio.Queue[bytes | None] = field(default_factory=asyncio.Queue)
    release: anyio.Event = field(default_factory=anyio.Event)
    disconnected: anyio.Event = field(default_factory=anyio.Event)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert scope["type"] == "http"
        self.ports.append(scope["client"][1])
        self.seen_headers.append({k.decode(): v.decode() for k, v in scope["headers"]})
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        path = scope["path"]
        if path == "/echo":
            answer = json.dumps({"method": scope["method"], "body": body.decode()}).encode()
            await send(_start(200, b"application/json", len(answer)))
            await send({"type": "http.response.body", "body": answer})
        elif path == "/chunked":
            await send(_start(200, b"text/plain"))
            for part in (b"one ", b"two ", b"three"):
                await send({"type": "http.response.body", "body": part, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        elif path in ("/sse", "/slow-head"):
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._watch_disconnect, receive, tg.cancel_scope)
                if path == "/slow-head":
                    await self.release.wait()
                await send(_start(200, b"text/event-stream"))
                while (chunk := await self.sse.get()) is not None:
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
                await send({"type": "http.response.body", "body": b""})
                tg.cancel_scope.cancel()

    async def _watch_disconnect(self, receive: Receive, scope: anyio.CancelScope) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        self.disconnected.set()
        scope.cancel()


def _start(status: int, content_type: bytes, length: int | None = None) -> dict[str, Any]:
    headers = [(b"content-type", content_type)]
    if length is not None:
        headers.append((b"content-length", str(length).encode()))
    return {"type": "http.response.start", "status": status, "headers": headers}


@dataclass
class Served:
    url: str = ""
    app: Upstream = field(default_factory=Upstream)
    server: ReadyServer | None = None
    _lost: anyio.Event = field(default_factory=anyio.Event)

    def connection_lost(self) -> None:
        lost, self._lost = self._lost, anyio.Event()
        lost.set()

    async def wait_no_connections(self) -> None:
        """Wait until the server holds no client connection (it noticed every close)."""
        assert self.server is not None
        with anyio.fail_after(BOUND):
            while self.server.server_state.connections:
                await self._lost.wait()


@asynccontextmanager
async def serve(**config: Any) -> AsyncIterator[Served]:
    """``Upstream`` on uvicorn on a free loopback port, in this event loop."""
    served = Served()

    class Protocol(HttpToolsProtocol):
        def connection_lost(self, exc: Exception | None) -> None:
            super().connection_lost(exc)
            served.connection_lost()

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    served.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    served.server = server = ReadyServer(
        uvicorn.Config(served.app, log_level="warning", lifespan="off", http=Protocol, **config)
    )
    async with anyio.create_task_group() as tg:
        tg.start_soon(lambda: server.serve(sockets=[sock]))
        with anyio.fail_after(BOUND):
            await server.ready.wait()
        try:
            yield served
        finally:
            server.should_exit = True
    sock.close()


@pytest.fixture
async def served() -> AsyncIterator[Served]:
    async with serve() as s:
        yield s


@pytest.fixture
async def client(served: Served) -> AsyncIterator[HttpClient]:
    http = HttpClient(served.url, headers={"Authorization": "Bearer t0k"})
    yield http
    await http.aclose()


async def post_echo(http: HttpClient, body: bytes = b"{}") -> bytes:
    async with http.request("POST", "/echo", body=body) as response:
        assert response.status == 200
        return await response.read()


# -- answers ---------------------------------------------------------------------------------


async def test_a_json_answer_with_content_length_is_read_whole(
    client: HttpClient, served: Served
) -> None:
    payload = b'{"jsonrpc":"2.0","id":1,"method":"tools/list"}'
    headers = {"Content-Type": "application/json", "Mcp-Session-Id": "abc"}
    async with client.request("POST", "/echo", headers=headers, body=payload) as response:
        assert response.status == 200
        assert response.header("Content-Type") == "application/json"
        body = await response.read()
    assert json.loads(body) == {"method": "POST", "body": payload.decode()}
    assert response.headers["content-length"] == str(len(body))
    seen = served.app.seen_headers[0]
    assert seen["authorization"] == "Bearer t0k"
    assert seen["mcp-session-id"] == "abc"
    assert seen["content-length"] == str(len(payload))
    assert seen["host"] == served.url.removeprefix("http://")


async def test_a_request_header_replaces_the_default_of_the_same_name(
    client: HttpClient, served: Served
) -> None:
    async with client.request("GET", "/echo", headers={"authorization": "Bearer other"}) as r:
        await r.read()
    assert served.app.seen_headers[0]["authorization"] == "Bearer other"
    assert "content-length" not in served.app.seen_headers[0]


async def test_a_chunked_answer_is_read_whole(client: HttpClient) -> None:
    async with client.request("GET", "/chunked") as response:
        assert response.header("transfer-encoding") == "chunked"
        assert await response.read() == b"one two three"


async def test_a_full_url_of_the_same_origin_is_a_target(
    client: HttpClient, served: Served
) -> None:
    async with client.request("POST", f"{served.url}/echo?x=1", body=b"hi") as response:
        assert json.loads(await response.read())["body"] == "hi"


async def test_requests_that_would_break_the_framing_are_refused(
    client: HttpClient, served: Served
) -> None:
    with pytest.raises(ValueError, match="not on"):
        async with client.request("GET", "http://example.com/echo"):
            pass
    with pytest.raises(ValueError, match="invalid header"):
        async with client.request("GET", "/echo", headers={"X-A": "a\r\nX-B: b"}):
            pass
    with pytest.raises(ValueError, match="set by the client"):
        async with client.request("GET", "/echo", headers={"Content-Length": "5"}):
            pass
    with pytest.raises(ValueError, match="invalid request target"):
        async with client.request("GET", "/echo x"):
            pass
    assert served.app.ports == []


# -- server-sent events ----------------------------------------------------------------------


async def test_events_are_yielded_as_they_arrive_before_the_stream_ends(
    client: HttpClient, served: Served
) -> None:
    sse = served.app.sse
    sends = [
        [b': comment\nretry: 1000\nid: 1\nevent: message\ndata: {"a":1}\n\n'],
        [b"data: line1\r\ndata: line2\r\n\r\n"],
        [b"event: ping\ndata:\n\n"],
        [b"id: 4\ndata: par", b"tial\n\n"],
    ]
    expected = [
        Event("message", '{"a":1}', "1"),
        Event("message", "line1\nline2", None),
        Event("ping", "", None),
        Event("message", "partial", "4"),
    ]
    received: list[Event] = []
    with anyio.fail_after(BOUND):
        async with client.request("GET", "/sse") as response:
            assert response.header("content-type") == "text/event-stream"
            events = response.events()
            # The server sends each event only once the one before it has come out here.
            for parts, want in zip(sends, expected, strict=True):
                for part in parts:
                    sse.put_nowait(part)
                received.append(await anext(events))
                assert received[-1] == want
            sse.put_nowait(None)
            assert [e async for e in events] == []
        await post_echo(client)
    assert received == expected
    assert len(set(served.app.ports)) == 1, "a stream read to its end leaves a reusable connection"


async def no_body() -> bytes | None:
    return None


@pytest.mark.parametrize(
    "stream",
    [
        b"\xef\xbb\xbfid: 7\nevent: a\ndata: x\ndata: \xc3\xa9\n\n: c\ndata:y\n\n",
        b"id: 7\r\nevent: a\r\ndata: x\r\ndata: \xc3\xa9\r\n\r\n:c\r\ndata:y\r\n\r\n",
        b"id: 7\revent: a\rdata: x\rdata: \xc3\xa9\r\r: c\rdata:y\r\r",
    ],
    ids=["lf-with-bom", "crlf", "cr"],
)
def test_events_parse_the_same_wherever_the_body_is_split(stream: bytes) -> None:
    expected = [Event("a", "x\né", "7"), Event("message", "y", None)]
    for cut in range(len(stream) + 1):
        parser = EventStream(no_body)
        parser._feed(stream[:cut])
        parser._feed(stream[cut:])
        assert list(parser._ready) == expected, f"split at {cut}"


# -- connections -----------------------------------------------------------------------------


async def test_sequential_requests_reuse_one_connection(client: HttpClient, served: Served) -> None:
    for n in range(5):
        assert json.loads(await post_echo(client, b"%d" % n))["body"] == str(n)
    assert len(served.app.ports) == 5
    assert len(set(served.app.ports)) == 1


async def test_a_response_left_unread_closes_its_connection(
    client: HttpClient, served: Served
) -> None:
    served.app.sse.put_nowait(b"data: one\n\n")
    async with client.request("GET", "/sse") as response:
        assert response.status == 200
    with anyio.fail_after(BOUND):
        await served.app.disconnected.wait()
    await post_echo(client)
    first, second = served.app.ports
    assert first != second
    with pytest.raises(HttpError, match="after its request block ended"):
        await response.read()


async def test_a_block_that_raises_closes_its_connection_even_after_the_whole_body(
    client: HttpClient, served: Served
) -> None:
    async def fail_after_reading() -> None:
        async with client.request("POST", "/echo") as response:
            await response.read()
            raise RuntimeError

    with pytest.raises(RuntimeError):
        await fail_after_reading()
    await post_echo(client)
    first, second = served.app.ports
    assert first != second


async def test_a_connection_the_server_closed_while_idle_is_replaced() -> None:
    async with serve(timeout_keep_alive=1) as served:
        http = HttpClient(served.url)
        try:
            await post_echo(http)
            await served.wait_no_connections()  # the server's keep-alive timeout passed
            assert json.loads(await post_echo(http, b"again"))["body"] == "again"
        finally:
            await http.aclose()
        first, second = served.app.ports
        assert first != second


async def test_cancelling_in_the_middle_of_a_stream_closes_its_connection(
    client: HttpClient, served: Served
) -> None:
    with anyio.fail_after(BOUND), anyio.CancelScope() as scope:
        async with client.request("GET", "/sse") as response:
            events = response.events()
            served.app.sse.put_nowait(b"data: one\n\n")
            assert (await anext(events)).data == "one"
            scope.cancel()
            await anext(events)
    assert scope.cancelled_caught
    with anyio.fail_after(BOUND):
        await served.app.disconnected.wait()
    await post_echo(client)
    stream_port, next_port = served.app.ports
    assert stream_port != next_port


async def test_cancelling_while_waiting_for_the_headers_closes_the_connection(
    client: HttpClient, served: Served
) -> None:
    await post_echo(client)
    with anyio.move_on_after(0.2) as scope:
        async with client.request("GET", "/slow-head"):
            pytest.fail("the server never sent the headers")
    assert scope.cancelled_caught
    with anyio.fail_after(BOUND):
        await served.app.disconnected.wait()
    await post_echo(client)
    first, slow, last = served.app.ports
    assert first == slow, "the idle connection carried the request that was cancelled"
    assert last != slow


async def test_connection_refused_names_host_and_port() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        http = HttpClient(f"http://127.0.0.1:{port}")
        with pytest.raises(HttpError, match=f"cannot connect to 127.0.0.1:{port}: "):
            async with http.request("GET", "/"):
                pass
        await http.aclose()


async def test_aclose_closes_every_connection(client: HttpClient, served: Served) -> None:
    async with anyio.create_task_group() as tg:
        for _ in range(2):
            tg.start_soon(post_echo, client)
    assert len(set(served.app.ports)) == 2

    async def close_while_reading() -> None:
        async with client.request("GET", "/sse") as response:
            served.app.sse.put_nowait(b"data: one\n\n")
            async for _ in response.events():
                await client.aclose()

    with anyio.fail_after(BOUND):
        with pytest.raises(HttpError, match="closed in the middle of the response body"):
            await close_while_reading()
        await served.wait_no_connections()
    with pytest.raises(HttpError, match="is closed"):
        await post_echo(client)


# -- raw servers: what uvicorn never does ----------------------------------------------------

OK = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s"


async def test_a_reused_connection_the_server_drops_is_retried_once_on_a_new_one() -> None:
    async def handler(n: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        body = await read_request(raw, reader)
        writer.write(OK % (len(body), body))
        if n == 1:
            # The race the retry is for: the server closes just as the next request arrives.
            await read_request(raw, reader)

    async with raw_server(handler) as raw:
        http = HttpClient(raw.url)
        assert await post_echo(http, b"first") == b"first"
        assert await post_echo(http, b"second") == b"second"
        await http.aclose()
    assert raw.connections == 2
    assert raw.requests == [b"first", b"second", b"second"]


async def test_a_new_connection_the_server_drops_fails_without_a_retry() -> None:
    async def handler(n: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(raw, reader)

    async with raw_server(handler) as raw:
        http = HttpClient(raw.url)
        with pytest.raises(HttpError, match="closed before the response headers"):
            await post_echo(http)
        await http.aclose()
    assert raw.connections == 1


async def test_a_reused_connection_that_fails_mid_answer_is_not_retried() -> None:
    async def handler(n: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        body = await read_request(raw, reader)
        writer.write(OK % (len(body), body))
        await read_request(raw, reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Le")

    async with raw_server(handler) as raw:
        http = HttpClient(raw.url)
        await post_echo(http)
        with pytest.raises(HttpError, match="closed before the response headers"):
            await post_echo(http)
        await http.aclose()
    assert raw.connections == 1


async def test_a_body_delimited_by_close_is_read_to_the_close() -> None:
    async def handler(n: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(raw, reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil ")
        await writer.drain()
        writer.write(b"the end")

    async with raw_server(handler) as raw:
        http = HttpClient(raw.url)
        assert await post_echo(http) == b"until the end"
        assert await post_echo(http) == b"until the end"
        await http.aclose()
    assert raw.connections == 2


async def test_a_body_cut_short_fails() -> None:
    async def handler(n: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(raw, reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort")

    async with raw_server(handler) as raw:
        http = HttpClient(raw.url)
        with pytest.raises(HttpError, match="in the middle of the response body"):
            await post_echo(http)
        await http.aclose()


async def test_an_interim_answer_is_skipped_and_repeated_headers_are_joined() -> None:
    async def handler(n: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(raw, reader)
        writer.write(
            b"HTTP/1.1 100 Continue\r\nX-Interim: 1\r\n\r\n"
            b"HTTP/1.1 201 Created\r\nVary: a\r\nvary: b  \r\nContent-Length: 2\r\n\r\nok"
        )
        await read_request(raw, reader)
        writer.write(b"NOT HTTP\r\n\r\n")

    async with raw_server(handler) as raw:
        http = HttpClient(raw.url)
        async with http.request("POST", "/", body=b"x") as response:
            assert response.status == 201
            assert response.headers == {"vary": "a, b", "content-length": "2"}
            assert await response.read() == b"ok"
        with pytest.raises(HttpError, match=r"invalid HTTP response from 127\.0\.0\.1:"):
            await post_echo(http)
        await http.aclose()
    assert raw.connections == 1
