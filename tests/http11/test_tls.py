"""https: certificates are verified (against the system's CAs, plus a CA file when given), the
TLS handshake falls under the connect timeout, and a TLS connection is kept alive like any."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from mcpctl.http11 import ConnectError, ConnectTimeout, HttpClient, client_context
from tests.http11.certs import make_ca
from tests.http11.servers import Raw, ok, raw_server, read_request

pytestmark = pytest.mark.anyio


async def echo_forever(
    raw: Raw, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    while True:
        body = await read_request(raw, reader)
        writer.write(ok(body))


async def post(http: HttpClient, body: bytes) -> bytes:
    async with http.request("POST", "/echo", body=body) as response:
        assert response.status == 200
        return await response.read()


async def test_a_server_whose_ca_is_given_is_trusted_and_its_connection_reused(
    tmp_path: Path,
) -> None:
    ca = make_ca(tmp_path)

    async def handler(n: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await echo_forever(raw, reader, writer)

    async with raw_server(handler, tls=ca.server_context()) as raw:
        http = HttpClient(raw.url, ssl_context=client_context(ca.ca_file))
        try:
            assert await post(http, b"one") == b"one"
            assert await post(http, b"two") == b"two"
        finally:
            await http.aclose()
    assert raw.connections == 1
    assert raw.heads[0].startswith(b"POST /echo HTTP/1.1\r\nHost: 127.0.0.1:")


async def test_a_certificate_of_an_unknown_ca_is_refused(tmp_path: Path) -> None:
    ca = make_ca(tmp_path)

    async def handler(n: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await echo_forever(raw, reader, writer)

    async with raw_server(handler, tls=ca.server_context()) as raw:
        http = HttpClient(raw.url)  # the system's CAs only
        with pytest.raises(ConnectError, match="certificate verify failed") as failed:
            await post(http, b"x")
        await http.aclose()
    assert "certificate verify failed" in failed.value.reason
    assert raw.requests == []


async def test_a_certificate_for_another_host_is_refused(tmp_path: Path) -> None:
    ca = make_ca(tmp_path, hosts=("backend.internal",))

    async def handler(n: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await echo_forever(raw, reader, writer)

    async with raw_server(handler, tls=ca.server_context()) as raw:
        http = HttpClient(raw.url, ssl_context=client_context(ca.ca_file))
        with pytest.raises(ConnectError, match=r"IP address mismatch|doesn't match"):
            await post(http, b"x")
        await http.aclose()
    assert raw.requests == []


async def test_a_server_that_never_completes_the_handshake_is_a_connect_timeout() -> None:
    async def handler(n: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # a TCP server that says nothing: no TLS handshake ever

    async with raw_server(handler) as raw:
        http = HttpClient(raw.url.replace("http://", "https://"), connect_timeout=0.2)
        with pytest.raises(ConnectTimeout, match=r"timed out after 0\.2 s") as failed:
            await post(http, b"x")
        await http.aclose()
    assert failed.value.seconds == 0.2


def test_a_ca_file_that_is_missing_or_not_pem_is_a_value_error_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "nope.pem"
    with pytest.raises(ValueError, match=f"cannot load CA certificates from {missing}"):
        client_context(missing)
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate\n")
    with pytest.raises(ValueError, match=f"cannot load CA certificates from {garbage}"):
        client_context(garbage)
