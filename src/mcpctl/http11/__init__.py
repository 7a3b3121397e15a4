"""A lean HTTP/1.1 client over httptools, shared by mcplocal (upstream JSON-RPC) and mcpd (LLM
backends): kept-alive, bounded connection pools, https with verified certificates, timeouts,
request bodies, responses read whole or as they stream, server-sent events.

    client = HttpClient("https://api.example.com", headers={"authorization": "Bearer k"})
    async with client.request("POST", "/v1/chat/completions", body=data) as response:
        if response.status == 200:
            async for event in response.events():   # or: await response.read()
                ...
    await client.aclose()

Modules: ``client`` (``HttpClient``, ``Timeout``), ``response`` (``Response``), ``events``
(``Event``, the event-stream parser), ``origins`` (a client per origin), ``tls``, ``proxy``, and
``errors`` (the exception tree, drawn in its docstring).
"""

from __future__ import annotations

from mcpctl.http11.client import HttpClient, Timeout
from mcpctl.http11.errors import (
    ConnectError,
    ConnectionLost,
    ConnectTimeout,
    HttpError,
    HttpTimeout,
    InvalidResponse,
    PoolTimeout,
    ReadTimeout,
    WriteTimeout,
)
from mcpctl.http11.events import Event, EventStream
from mcpctl.http11.origins import Origins
from mcpctl.http11.proxy import Proxy, environment_proxies
from mcpctl.http11.response import Response
from mcpctl.http11.tls import client_context

__all__ = [
    "ConnectError",
    "ConnectTimeout",
    "ConnectionLost",
    "Event",
    "EventStream",
    "HttpClient",
    "HttpError",
    "HttpTimeout",
    "InvalidResponse",
    "Origins",
    "PoolTimeout",
    "Proxy",
    "ReadTimeout",
    "Response",
    "Timeout",
    "WriteTimeout",
    "client_context",
    "environment_proxies",
]
