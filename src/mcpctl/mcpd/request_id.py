"""Request ids: honour the caller's ``X-Request-Id`` (or make one) and echo it on the answer.

The id ties an audit event to the request, the client's logs and the proxy's in between.
"""

from __future__ import annotations

import re
import uuid

from starlette.datastructures import MutableHeaders
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

HEADER = "X-Request-Id"
# Anything else (too long, spaces, control characters) is replaced, not trusted into logs.
_ACCEPTED = re.compile(r"[A-Za-z0-9._:/+=-]{1,128}")
_STATE_KEY = "request_id"


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
        incoming = HTTPConnection(scope).headers.get(HEADER, "")
        request_id = incoming if _ACCEPTED.fullmatch(incoming) else uuid.uuid4().hex
        scope.setdefault("state", {})[_STATE_KEY] = request_id

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)[HEADER] = request_id
            await send(message)

        await self.app(scope, receive, send_with_id)
