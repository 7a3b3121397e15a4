"""The MCP relay's mount, ``/api/v1/servers/{name}/mcp`` (docs/relay.md).

It speaks MCP's streamable HTTP, not REST, and it is mcpd's hot path: the app hands a relay
request's raw ASGI scope to ``RelayMount`` before FastAPI's router and middleware run
(``app.py``), and the app's ``Relay`` (built in the lifespan) answers it. What the generic
stack does for every other route, the mount does itself, for what the relay needs of it:

- the request id (``request_id.accept``): the caller's ``X-Request-Id`` or a new one, echoed
  on the answer and recorded in the audit events of the request;
- the metrics of every request: ``mcpd_http_requests_total`` and
  ``mcpd_http_request_duration_seconds`` under the route template ``PATH``, as the
  middleware counts the other routes (a GET stream is observed when it ends);
- the last resort: an unexpected exception is logged once with its traceback and answered
  500 with a JSON-RPC error, if nothing was sent yet.

Access logs are uvicorn's and see every request, mounted here or not.
"""

from __future__ import annotations

import logging
import time

from starlette.types import Receive, Scope, Send

from mcpctl.jsonrpc import protocol, wire
from mcpctl.mcpd.metrics import HttpMetrics
from mcpctl.mcpd.rawasgi import app_path, header
from mcpctl.mcpd.relay.endpoint import Relay
from mcpctl.mcpd.request_id import HEADER_KEY, SendWithId, accept

log = logging.getLogger(__name__)

PATH = "/api/v1/servers/{name}/mcp"
_PREFIX = "/api/v1/servers/"
_SUFFIX = "/mcp"


def server_of(scope: Scope) -> str | None:
    """The server a relay request names; None when ``scope`` is no relay request (for the
    router, which then matches it as it matched ``PATH``: a name is one path segment)."""
    path = app_path(scope)
    if path is None or not (path.startswith(_PREFIX) and path.endswith(_SUFFIX)):
        return None
    name = path[len(_PREFIX) : -len(_SUFFIX)]
    return name if name and "/" not in name else None


class RelayMount:
    """Request id, metrics and the last-resort handler around ``Relay.serve``."""

    def __init__(self, metrics: HttpMetrics) -> None:
        self.metrics = metrics

    async def __call__(
        self, relay: Relay, name: str, scope: Scope, receive: Receive, send: Send
    ) -> None:
        start = time.perf_counter()
        request_id = accept(header(scope, HEADER_KEY))
        send_with_id = SendWithId(send, request_id)

        try:
            await relay.serve(scope, receive, send_with_id, name, request_id)
        except Exception:  # the top-level handler of the relay's requests
            if send_with_id.status:
                raise  # mid-answer: uvicorn logs it and closes the connection
            log.exception("unexpected error on %s %s", scope["method"], scope["path"])
            answer = protocol.error(
                None, protocol.INTERNAL_ERROR, "internal error; the mcpd log has the details"
            )
            await wire.send_json(send_with_id, 500, answer)
        finally:
            self.metrics.observe(
                scope["method"], PATH, send_with_id.status or 500, time.perf_counter() - start
            )
