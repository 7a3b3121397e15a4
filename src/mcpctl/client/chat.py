"""Agent chat over mcpd's REST API: ``POST /api/v1/agents/{name}/chat`` as server-sent events
(the event vocabulary is in docs/agents.md, "Chat").

    for name, data in chat_events(client, "helper", {"message": "Hi"}):
        ...   # ("thread", {...}), ("delta", {"text": ...}), ..., ("done", {...}) or ("error", {...})

Each chat streams on a connection of its own, without a read timeout: an LLM may think for a
long while before its first word. Closing the iterator early closes the connection, which
stops the turn in mcpd.
"""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

from mcpctl.errors import AppError, Unavailable, from_problem

if TYPE_CHECKING:
    from mcpctl.client.http import McpdClient

Event = tuple[str, dict[str, Any]]


def error_of(data: dict[str, Any]) -> AppError:
    """The error an ``error`` event (a problem document) reports."""
    status = data.get("status")
    return from_problem(data, status if isinstance(status, int) else 500)


def _refusal(status: int, body: bytes) -> AppError:
    try:
        payload = json.loads(body) if body else None
    except ValueError:
        payload = None
    if isinstance(payload, dict) and "code" in payload:
        return from_problem(payload, status)
    return AppError(f"mcpd answered HTTP {status}: {body[:200]!r}")


def _events(response: http.client.HTTPResponse) -> Iterator[Event]:
    name, data = "message", []
    for raw in response:
        line = raw.decode("utf-8").rstrip("\r\n")
        if line.startswith("event:"):
            name = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].strip())
        elif not line and data:
            yield name, json.loads("\n".join(data))
            name, data = "message", []


def chat_events(client: McpdClient, agent: str, body: dict[str, Any]) -> Iterator[Event]:
    """The events of one chat turn, as they come.

    Raises:
        AppError: mcpd refused the message (as the error it reported), or Unavailable when it
            cannot be reached or the stream broke off.
    """
    parts = urlsplit(client.server)
    cls = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    conn = cls(parts.hostname or "127.0.0.1", parts.port, timeout=None)
    headers = {"Accept": "text/event-stream", "Content-Type": "application/json"}
    if client.token:
        headers["Authorization"] = f"Bearer {client.token}"
    if client.impersonate:
        headers["Impersonate-User"] = client.impersonate
    path = parts.path.rstrip("/") + f"/api/v1/agents/{quote(agent, safe='')}/chat"
    try:
        try:
            conn.request("POST", path, body=json.dumps({**body, "stream": True}), headers=headers)
            response = conn.getresponse()
        except (OSError, http.client.HTTPException) as exc:
            raise Unavailable(f"cannot reach mcpd at {client.server} ({exc})") from exc
        if response.status >= 400:
            raise _refusal(response.status, response.read())
        try:
            yield from _events(response)
        except (OSError, http.client.HTTPException, ValueError) as exc:
            raise Unavailable(f"the answer from mcpd broke off ({exc})") from exc
    finally:
        conn.close()
