"""Raw pass-through to servers that speak streamable HTTP themselves (docker ``transport:
http``, ``runtime: external``).

The relay authenticates and authorizes the request as for any server, then forwards it to
the instance's URL with one pooled ``httpx`` client: the body as is, the MCP headers
(``Accept``, ``Content-Type``, ``Mcp-Session-Id``, ``MCP-Protocol-Version``,
``Last-Event-ID``, ``Mcp-Method``, ``Mcp-Name``) plus the server's configured headers (its
secret ``Authorization``, say) — never the client's own token. The answer streams back
unchanged (JSON or SSE, status, ``Mcp-Session-Id``): sessions are the upstream's, mcpd keeps
none for these servers. A client that goes away closes the upstream request.

An upstream that cannot be reached answers 503, and so does one that refuses mcpd's
credentials (401, 403): an MCP client must never mistake that for its own token being refused.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx
from starlette.datastructures import Headers
from starlette.types import Receive, Send

from mcpctl.errors import Unavailable
from mcpctl.jsonrpc import protocol, wire
from mcpctl.mcpd.instances.supervisor import Instance
from mcpctl.mcpd.relay.audit import CallOutcome

FORWARDED = (
    "accept",
    "content-type",
    "mcp-session-id",
    "mcp-protocol-version",
    "last-event-id",
    "mcp-method",
    "mcp-name",
)
RETURNED = ("content-type", "mcp-session-id", "cache-control", "retry-after")
OUTCOME_LIMIT = 4 * 1024 * 1024


class AnswerWatch:
    """Finds the answer to one request in the bytes passing by (JSON or SSE), for the
    audit; keeps at most ``OUTCOME_LIMIT`` bytes."""

    def __init__(self, request_id: object, content_type: str) -> None:
        self.request_id = request_id
        self.sse = content_type.startswith("text/event-stream")
        self.buffer = bytearray()
        self.answer: object = None

    def feed(self, chunk: bytes) -> None:
        if self.answer is not None or len(self.buffer) + len(chunk) > OUTCOME_LIMIT:
            return
        self.buffer += chunk
        if not self.sse:
            return
        *lines, rest = bytes(self.buffer).split(b"\n")
        self.buffer = bytearray(rest)
        for line in lines:
            if line.startswith(b"data:"):
                self._consider(line[5:])

    def finish(self) -> CallOutcome:
        if not self.sse and self.answer is None:
            self._consider(bytes(self.buffer))
        return CallOutcome.of_answer(self.answer)

    def _consider(self, data: bytes) -> None:
        try:
            message = protocol.decode(data)
        except ValueError:
            return
        if (
            isinstance(message, dict)
            and message.get("id") == self.request_id
            and ("result" in message or "error" in message)
        ):
            self.answer = message


class HttpForwarder:
    def __init__(self, client: httpx.AsyncClient | None = None) -> None:
        self.client = client or httpx.AsyncClient(
            timeout=httpx.Timeout(30.0, read=None),
            limits=httpx.Limits(max_connections=500, max_keepalive_connections=100),
            follow_redirects=False,
        )

    async def aclose(self) -> None:
        await self.client.aclose()

    async def forward(
        self,
        instance: Instance,
        method: str,
        headers: Headers,
        body: bytes,
        receive: Receive,
        send: Send,
        on_answer: Callable[[CallOutcome], None] | None = None,
        request_id: object = None,
    ) -> None:
        """Forward one HTTP request to ``instance`` and stream its answer back.

        Raises:
            Unavailable: the instance cannot be reached or refused mcpd's credentials (nothing
                was sent to the client then).
        """
        url = instance.url
        if url is None:
            raise Unavailable(f"server {instance.server!r} has no URL")
        outgoing = {k: v for k in FORWARDED if (v := headers.get(k)) is not None}
        outgoing.update(instance.headers)
        outgoing["accept-encoding"] = "identity"
        request = self.client.build_request(method, url, headers=outgoing, content=body or None)
        try:
            response = await self.client.send(request, stream=True)
        except httpx.HTTPError as exc:
            raise Unavailable(
                f"server {instance.server!r} cannot be reached at {url}: {exc or type(exc).__name__}"
            ) from exc
        try:
            if response.status_code in (401, 403):
                raise Unavailable(
                    f"server {instance.server!r} refused mcpd's request with HTTP "
                    f"{response.status_code}: check the headers configured for it"
                )
            await self._relay(response, receive, send, on_answer, request_id)
        finally:
            await response.aclose()

    async def _relay(
        self,
        response: httpx.Response,
        receive: Receive,
        send: Send,
        on_answer: Callable[[CallOutcome], None] | None,
        request_id: object,
    ) -> None:
        content_type = response.headers.get("content-type", "")
        watch = AnswerWatch(request_id, content_type) if on_answer is not None else None
        returned = [
            (k.encode(), v.encode("latin-1"))
            for k in RETURNED
            if (v := response.headers.get(k)) is not None
        ]
        await send(
            {"type": "http.response.start", "status": response.status_code, "headers": returned}
        )

        async def pump() -> None:
            async for chunk in response.aiter_raw():
                if watch is not None:
                    watch.feed(chunk)
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})

        work = asyncio.ensure_future(pump())
        try:
            gone = await wire.until_disconnect(receive, work)
            if not gone:
                work.result()
        except httpx.HTTPError:
            # The upstream broke off mid-answer: the client sees its stream end.
            await wire.end_stream(send)
        if on_answer is not None and watch is not None:
            on_answer(watch.finish() if not work.cancelled() else CallOutcome("cancelled"))
