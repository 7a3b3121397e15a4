"""``Origins``: one ``HttpClient`` per origin, made on first use with the same settings, for a
caller that reaches many servers (mcpd's LLM backends)."""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from types import MappingProxyType
from urllib.parse import urlsplit

from mcpctl.http11.client import HttpClient
from mcpctl.http11.proxy import proxy_for
from mcpctl.http11.tls import client_context

_NONE: Mapping[str, str] = MappingProxyType({})


class Origins:
    """Keep-alive pools by origin (see ``HttpClient`` for what each setting does).

    ``ssl_context`` verifies every https origin (default: ``tls.client_context()``, built on
    the first https origin); ``proxies`` maps "http"/"https"/"no" to proxy settings, as
    ``proxy.environment_proxies()`` reads them (default: none, every origin reached directly).
    """

    def __init__(
        self,
        *,
        connect_timeout: float | None = 10.0,
        max_connections: int | None = None,
        max_idle: int = 16,
        idle_expiry: float | None = None,
        resend_stale: bool = True,
        ssl_context: ssl.SSLContext | None = None,
        proxies: Mapping[str, str] = _NONE,
    ) -> None:
        self._connect_timeout = connect_timeout
        self._max_connections = max_connections
        self._max_idle = max_idle
        self._idle_expiry = idle_expiry
        self._resend_stale = resend_stale
        self._ssl = ssl_context
        self._proxies = dict(proxies)
        self._clients: dict[str, HttpClient] = {}

    def for_url(self, url: str) -> tuple[HttpClient, str]:
        """The pool for ``url``'s origin, and the request target (path and query).

        Raises:
            ValueError: ``url`` is not an http(s) URL, or its proxy setting names no host.
        """
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}"
        client = self._clients.get(origin)
        if client is None:
            client = self._clients[origin] = self._client(origin, parts.scheme, parts.netloc)
        target = parts.path or "/"
        return client, f"{target}?{parts.query}" if parts.query else target

    def _client(self, origin: str, scheme: str, netloc: str) -> HttpClient:
        context = None
        if scheme == "https":
            if self._ssl is None:
                self._ssl = client_context()
            context = self._ssl
        return HttpClient(
            origin,
            connect_timeout=self._connect_timeout,
            max_connections=self._max_connections,
            max_idle=self._max_idle,
            idle_expiry=self._idle_expiry,
            resend_stale=self._resend_stale,
            ssl_context=context,
            proxy=proxy_for(scheme, netloc, self._proxies) if self._proxies else None,
        )

    async def aclose(self) -> None:
        """Close every pool; a later request opens new ones."""
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            await client.aclose()

    async def __aenter__(self) -> Origins:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()
