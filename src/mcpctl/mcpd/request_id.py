"""Request ids: honour the caller's ``X-Request-Id`` (or make one) and echo it on the answer.

The id ties an audit event to the request, the client's logs and the proxy's in between. The
middleware does it for every route; the MCP relay, mounted ahead of the middleware
(``routes/relay.py``), does the same with ``accept`` and ``HEADER_KEY``.
"""

from __future__ import annotations

import re
import uuid

from starlette.datastructures import MutableHeaders
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

HEADER = "X-Request-Id"
HEADER_KEY = HEADER.lower().encode("latin-1")  # as it appears in a raw ASGI header list
# Anything else (too long, spaces, control characters) is replaced, not trusted into logs.
_ACCEPTED = re.compile(r"[A-Za-z0-9._:/+=-]{1,128}")
_STATE_KEY = "request_id"


def accept(incoming: str | None) -> str:
    """The request's id: the caller's when it is a plain token, else a new one."""
    if incoming and _ACCEPTED.fullmatch(incoming):
        return incoming
    return uuid.uuid4().hex


def request_id_of(conn: HTTPConnection) -> str | None:
    """The id the middleware gave this request (None outside it)."""
    value = conn.scope.get("state", {}).get(_STATE_KEY)
    return value if isinstance(value, str) else None


class RequestIdMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = accept(HTTPConnection(scope).headers.get(HEADER))
        scope.setdefault("state", {})[_STATE_KEY] = request_id

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)[HEADER] = request_id
            await send(message)

        await self.app(scope, receive, send_with_id)


class SendWithId:
    """``send`` for the raw mounts (relay, OpenAI endpoint) that bypass the middleware: adds
    the ``X-Request-Id`` header to the answer and remembers its status (0 until it started)."""

    def __init__(self, send: Send, request_id: str) -> None:
        self.status = 0
        self._send = send
        self._header = (HEADER_KEY, request_id.encode("latin-1"))

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = int(message["status"])
            message["headers"] = [*message.get("headers", ()), self._header]
        await self._send(message)
