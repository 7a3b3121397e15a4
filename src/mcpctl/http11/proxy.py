"""Forward proxies, as curl and httpx take them from the environment: ``HTTP_PROXY`` for http
origins, ``HTTPS_PROXY`` for https ones, ``NO_PROXY`` for the hosts to reach directly (the
upper- or lower-case names, as ``urllib.request`` reads them; ``bypassed`` says how NO_PROXY
entries match).

Only ``http://`` proxies (the usual kind): an https origin is reached through a ``CONNECT``
tunnel, with TLS to the origin inside it; an http origin by sending the proxy each request in
absolute form. ``user:password@`` in the proxy URL becomes ``Proxy-Authorization: Basic``.
"""

from __future__ import annotations

import asyncio
import base64
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from mcpctl.http11.errors import ConnectError


@dataclass(frozen=True, slots=True)
class Proxy:
    """A forward proxy; ``label`` is its URL without credentials, for messages."""

    scheme: str
    host: str
    port: int
    authorization: str | None
    label: str

    @classmethod
    def parse(cls, url: str) -> Proxy:
        """The proxy at ``url`` (``host:port`` alone means ``http://host:port``).

        Raises:
            ValueError: ``url`` names no host.
        """
        parts = urlsplit(url if "://" in url else f"http://{url}")
        if not parts.hostname:
            raise ValueError(f"not a proxy URL: {url!r}")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        authorization = None
        if parts.username is not None:
            pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
            authorization = "Basic " + base64.b64encode(pair.encode()).decode("ascii")
        host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
        return cls(
            parts.scheme, parts.hostname, port, authorization, f"{parts.scheme}://{host}:{port}"
        )

    def check(self) -> None:
        """Raises:
        ConnectError: the proxy is not of a kind this client speaks (only http://)."""
        if self.scheme != "http":
            raise ConnectError(
                f"proxy {self.label}: only http:// proxies are supported",
                f"proxy {self.label}: only http:// proxies are supported",
            )


def environment_proxies() -> dict[str, str]:
    """The proxy settings of the environment, by scheme ("http", "https", "no")."""
    return urllib.request.getproxies_environment()


def proxy_for(scheme: str, netloc: str, proxies: Mapping[str, str]) -> Proxy | None:
    """The proxy ``proxies`` (from ``environment_proxies``) says an origin is reached through.

    Raises:
        ValueError: the proxy URL names no host.
    """
    url = proxies.get(scheme)
    if not url:
        return None
    parts = urlsplit(f"{scheme}://{netloc}")
    host = (parts.hostname or "").lower()
    port = parts.port or (443 if scheme == "https" else 80)
    if bypassed(host, port, proxies.get("no", "")):
        return None
    return Proxy.parse(url)


def bypassed(host: str, port: int, no_proxy: str) -> bool:
    """Whether ``NO_PROXY`` (comma-separated) names the host: ``*`` names every host; a name
    names itself and its subdomains (a leading dot or ``*.`` changes nothing); an entry with
    ``:PORT`` only that port. IP addresses match exactly (no CIDR ranges)."""
    for raw in no_proxy.split(","):
        entry = raw.strip().lower()
        if entry == "*":
            return True
        name, colon, entry_port = entry.rpartition(":")
        if colon and entry_port.isdigit() and not name.endswith(":"):
            if int(entry_port) != port:
                continue
            entry = name
        entry = entry.strip("[]").removeprefix("*").lstrip(".")
        if entry and (host == entry or host.endswith(f".{entry}")):
            return True
    return False


async def open_tunnel(
    proxy: Proxy, authority: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    """Ask ``proxy`` (connected through ``reader``/``writer``) for a tunnel to ``authority``.

    Raises:
        ConnectError: the proxy refused, or did not answer HTTP.
    """
    head = f"CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n"
    if proxy.authorization:
        head += f"Proxy-Authorization: {proxy.authorization}\r\n"
    writer.write(f"{head}\r\n".encode("latin-1"))
    await writer.drain()
    try:
        answer = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
        why = f"proxy {proxy.label} gave no answer to CONNECT {authority}"
        raise ConnectError(why, why) from exc
    status_line = answer.split(b"\r\n", 1)[0].decode("latin-1")
    parts = status_line.split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or parts[1] != "200":
        why = f"proxy {proxy.label} refused CONNECT {authority}: {status_line[:200]}"
        raise ConnectError(why, why)
