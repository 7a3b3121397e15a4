"""Forward proxies as ``Origins`` takes them from HTTPS_PROXY/HTTP_PROXY/NO_PROXY, against a
small forward proxy of ours (``servers.forward_proxy``): a CONNECT tunnel (with TLS to the
origin inside it) for https, the absolute form for http, Basic credentials from the proxy URL,
NO_PROXY, and the failures."""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path

import pytest

from mcpctl.http11 import ConnectError, Origins, client_context
from mcpctl.http11.proxy import bypassed
from tests.http11.certs import make_ca
from tests.http11.servers import Raw, forward_proxy, ok, raw_server, read_request

pytestmark = pytest.mark.anyio


async def echo_forever(
    raw: Raw, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    while True:
        writer.write(ok(await read_request(raw, reader)))


async def post(origins: Origins, url: str, body: bytes) -> bytes:
    client, target = origins.for_url(url)
    async with client.request("POST", target, body=body) as response:
        assert response.status == 200
        return await response.read()


async def test_an_https_origin_is_reached_through_a_connect_tunnel_with_credentials(
    tmp_path: Path,
) -> None:
    ca = make_ca(tmp_path)

    async def handler(n: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await echo_forever(raw, reader, writer)

    async with forward_proxy() as proxy, raw_server(handler, tls=ca.server_context()) as raw:
        proxies = {"https": f"http://bench:p%40ss@{proxy.url}"}
        async with Origins(proxies=proxies, ssl_context=client_context(ca.ca_file)) as origins:
            assert await post(origins, f"{raw.url}/v1/x", b"one") == b"one"
            assert await post(origins, f"{raw.url}/v1/x", b"two") == b"two"
    credentials = base64.b64encode(b"bench:p@ss").decode()
    assert proxy.heads == [
        f"CONNECT 127.0.0.1:{raw.port} HTTP/1.1\r\nHost: 127.0.0.1:{raw.port}\r\n"
        f"Proxy-Authorization: Basic {credentials}\r\n\r\n".encode()
    ], "one tunnel, kept alive for both requests"
    assert raw.heads[0].startswith(b"POST /v1/x HTTP/1.1\r\n")


async def test_an_http_origin_is_asked_through_the_proxy_in_absolute_form() -> None:
    async def handler(n: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await echo_forever(raw, reader, writer)

    async with (
        forward_proxy() as proxy,
        raw_server(handler) as raw,
        Origins(proxies={"http": f"http://u:pw@{proxy.url}"}) as origins,
    ):
        assert await post(origins, f"{raw.url}/v1/x", b"hi") == b"hi"
    (head,) = proxy.heads
    assert head.startswith(f"POST {raw.url}/v1/x HTTP/1.1\r\n".encode())
    assert b"Proxy-Authorization: Basic " + base64.b64encode(b"u:pw") in head
    assert raw.heads[0].startswith(b"POST /v1/x HTTP/1.1\r\n")
    assert b"Proxy-Authorization" not in raw.heads[0]


async def test_a_host_named_in_no_proxy_is_reached_directly() -> None:
    async def handler(n: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await echo_forever(raw, reader, writer)

    async with forward_proxy() as proxy, raw_server(handler) as raw:
        proxies = {"http": f"http://{proxy.url}", "no": "localhost, 127.0.0.1"}
        async with Origins(proxies=proxies) as origins:
            assert await post(origins, f"{raw.url}/x", b"direct") == b"direct"
    assert proxy.heads == []


async def test_a_proxy_that_refuses_the_tunnel_is_a_connect_error_naming_it(
    tmp_path: Path,
) -> None:
    refusal = b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n"
    async with (
        forward_proxy(refusal) as proxy,
        Origins(proxies={"https": f"http://{proxy.url}"}) as origins,
    ):
        with pytest.raises(ConnectError, match="refused CONNECT") as failed:
            await post(origins, "https://backend.internal:8443/x", b"")
    assert "407 Proxy Authentication Required" in failed.value.reason


async def test_a_proxy_of_another_scheme_is_a_connect_error() -> None:
    async with Origins(proxies={"https": "https://proxy.internal:3128"}) as origins:
        with pytest.raises(ConnectError, match="only http:// proxies are supported"):
            await post(origins, "https://backend.internal/x", b"")


@pytest.mark.parametrize(
    ("host", "port", "no_proxy", "expected"),
    [
        ("api.example.com", 443, "example.com", True),
        ("example.com", 443, ".example.com", True),
        ("api.example.com", 443, "*.example.com", True),
        ("badexample.com", 443, "example.com", False),
        ("anything", 80, "*", True),
        ("127.0.0.1", 8080, "127.0.0.1:8080", True),
        ("127.0.0.1", 8081, "127.0.0.1:8080", False),
        ("::1", 80, "[::1]", True),
        ("gpu", 80, "", False),
    ],
)
def test_no_proxy_entries_match_hosts_their_subdomains_and_ports(
    host: str, port: int, no_proxy: str, expected: bool
) -> None:
    assert bypassed(host, port, no_proxy) is expected
