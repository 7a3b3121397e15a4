"""MCP requests from inside mcpd to the servers an agent's project holds (agent chat).

The same instances the relay serves, reached the same way: a stdio server through its
instance's shared ``Connection`` (started by the supervisor if needed), a server that speaks
streamable HTTP itself (docker ``transport: http``, ``runtime: external``) through one short
MCP session of its own, opened on first use and ended when the chat turn ends, with the
server's configured headers (never a caller's token).

    async with ServerLinks(supervisor, http, timeout=60) as links:
        link = await links.open("time")
        tools = await link.request("tools/list", {})

``request`` answers the JSON-RPC ``result``, or raises ``RpcError`` (the server's JSON-RPC
error) or an ``AppError`` (NotFound: no such server; Unavailable: it cannot run, cannot be
reached, or did not answer within the timeout).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from types import TracebackType
from typing import Protocol

import httpx

from mcpctl.errors import Unavailable
from mcpctl.jsonrpc import wire
from mcpctl.jsonrpc.protocol import LATEST_VERSION, JsonObject
from mcpctl.mcpd.instances.connection import CLIENT_INFO, Connection, RpcError
from mcpctl.mcpd.instances.supervisor import Instance, Supervisor

log = logging.getLogger(__name__)

ACCEPT = "application/json, text/event-stream"


class Link(Protocol):
    async def request(self, method: str, params: JsonObject) -> JsonObject:
        """The result of one request. Raises: RpcError, AppError (see the module)."""
        ...


class StdioLink:
    """A stdio server's shared connection."""

    def __init__(self, connection: Connection, timeout: float) -> None:
        self.connection = connection
        self.timeout = timeout

    async def request(self, method: str, params: JsonObject) -> JsonObject:
        return await self.connection.request(method, params, timeout=self.timeout)


class HttpLink:
    """One MCP session of ours on a server that speaks streamable HTTP."""

    def __init__(self, instance: Instance, client: httpx.AsyncClient, timeout: float) -> None:
        self.instance = instance
        self.client = client
        self.timeout = timeout
        self.session_id: str | None = None
        self.version: str | None = None
        self._ids = 0

    async def request(self, method: str, params: JsonObject) -> JsonObject:
        if self.version is None:
            await self._initialize()
        return await self._call(method, params)

    async def _initialize(self) -> None:
        params = {"protocolVersion": LATEST_VERSION, "capabilities": {}, "clientInfo": CLIENT_INFO}
        result = await self._call("initialize", params)
        self.version = str(result.get("protocolVersion") or LATEST_VERSION)
        await self._post({"jsonrpc": "2.0", "method": "notifications/initialized"})

    async def _call(self, method: str, params: JsonObject) -> JsonObject:
        self._ids += 1
        message = {"jsonrpc": "2.0", "id": self._ids, "method": method, "params": params}
        try:
            async with asyncio.timeout(self.timeout):
                answer = await self._post(message)
        except TimeoutError as exc:
            raise Unavailable(
                f"server {self.instance.server!r} did not answer {method} within {self.timeout:g} s"
            ) from exc
        error = answer.get("error")
        if isinstance(error, dict):
            raise RpcError(
                int(error.get("code", -32603)), str(error.get("message")), error.get("data")
            )
        result = answer.get("result")
        return result if isinstance(result, dict) else {}

    def _headers(self) -> dict[str, str]:
        headers = {"accept": ACCEPT, "content-type": "application/json"}
        headers.update(self.instance.headers)
        if self.session_id is not None:
            headers[wire.SESSION_HEADER] = self.session_id
        if self.version is not None:
            headers[wire.VERSION_HEADER] = self.version
        return headers

    async def _post(self, message: JsonObject) -> JsonObject:
        """POST one message; the answer to it (``{}`` for a notification).

        Raises:
            Unavailable: the server cannot be reached, refused, or answered no JSON-RPC.
        """
        server, url = self.instance.server, self.instance.url
        if url is None:
            raise Unavailable(f"server {server!r} has no URL")
        body = json.dumps(message).encode()
        try:
            async with self.client.stream("POST", url, headers=self._headers(), content=body) as r:
                if r.status_code >= 400:
                    raise Unavailable(f"server {server!r} answered HTTP {r.status_code} to mcpd")
                if self.session_id is None and (sid := r.headers.get(wire.SESSION_HEADER)):
                    self.session_id = sid
                if "id" not in message:
                    return {}
                if r.headers.get("content-type", "").startswith("text/event-stream"):
                    return await _answer_in_stream(r.aiter_lines(), message["id"], server)
                return _json_object(await r.aread(), server)
        except httpx.HTTPError as exc:
            raise Unavailable(f"server {server!r} cannot be reached at {url}: {exc}") from exc

    async def aclose(self) -> None:
        """End the session (best effort: the server forgets idle sessions anyway)."""
        if self.session_id is None or self.instance.url is None:
            return
        try:
            await self.client.delete(self.instance.url, headers=self._headers(), timeout=5)
        except httpx.HTTPError as exc:
            log.debug("ending the MCP session on %s: %s", self.instance.server, exc)


def _json_object(data: bytes, server: str) -> JsonObject:
    try:
        value = json.loads(data)
    except ValueError as exc:
        raise Unavailable(f"server {server!r} answered something that is not JSON") from exc
    if not isinstance(value, dict):
        raise Unavailable(f"server {server!r} answered something that is not JSON-RPC")
    return value


async def _answer_in_stream(
    lines: AsyncIterator[str], request_id: object, server: str
) -> JsonObject:
    data: list[str] = []
    async for line in lines:
        if line.startswith("data:"):
            data.append(line[5:].strip())
            continue
        if line or not data:
            continue
        event, data = "\n".join(data), []
        try:
            message = json.loads(event)
        except ValueError:
            continue
        if isinstance(message, dict) and message.get("id") == request_id:
            return message
    raise Unavailable(f"server {server!r} ended its answer without one")


class ServerLinks:
    """The links of one chat turn, by server; the http sessions end with it."""

    def __init__(self, supervisor: Supervisor, client: httpx.AsyncClient, timeout: float) -> None:
        self.supervisor = supervisor
        self.client = client
        self.timeout = timeout
        self._http: dict[str, HttpLink] = {}

    async def open(self, server: str) -> Link:
        """The link to ``server``, its instance started if needed.

        Raises:
            NotFound: no such server. Unavailable: it cannot run.
        """
        instance = await self.supervisor.acquire(server)
        if instance.connection is not None:
            return StdioLink(instance.connection, self.timeout)
        link = self._http.get(server)
        if link is None or link.instance.id != instance.id:
            link = self._http[server] = HttpLink(instance, self.client, self.timeout)
        return link

    async def __aenter__(self) -> ServerLinks:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        links, self._http = list(self._http.values()), {}
        for link in links:
            await link.aclose()
