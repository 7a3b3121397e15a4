"""Requests a server makes of its client (sampling, elicitation, roots), passed back along a
shared connection to the one client session they can be tied to.

mcpd's connection to a stdio server, and mcplocal's session with the relay, each serve many
client sessions at once. A request the server makes (``sampling/createMessage``,
``elicitation/create``, ``roots/list``) names no client, so it is handed to the session whose
request is in flight on that connection when it comes (the tool call that needs the model's
answer, say):

- every request sent on the shared connection for a session holds a ``Tie`` while in flight:
  the session's ``Asks`` (the requests it is asked, waiting for answers), its client's
  capabilities, and where a message reaches it (the request's own stream, if it has one;
  else the session's stream); a request made for nobody who can be asked (mcpd's own, say)
  is in flight untied;
- ``InFlight.choose`` picks the one session with ties, when no untied request is in flight;
  otherwise the server gets a JSON-RPC error saying why (``Untied``);
- the request goes to that session with an id of ours (``Asks.ask``); the client's answer
  (a JSON-RPC response it sends like any other message) resolves it, and is passed back to
  the server under the server's own id;
- a server request still waiting when its session's last tied request ends (answered,
  cancelled, the client went away) is cancelled, and the server gets an error.

A client that did not declare the capability is not asked (``unsupported``).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from mcpctl.jsonrpc import protocol
from mcpctl.jsonrpc.protocol import JsonObject

log = logging.getLogger(__name__)

Outlet = Callable[[JsonObject], None]

# A server request's method -> the client capability it needs.
FEATURES = {
    "sampling/createMessage": "sampling",
    "elicitation/create": "elicitation",
    "roots/list": "roots",
}
FEATURE_NAMES = ("sampling", "elicitation", "roots")
# What a client declares for each feature when it passes them on (elicitation: both modes;
# the client behind is checked per request).
DECLARED: dict[str, JsonObject] = {
    "sampling": {},
    "elicitation": {"form": {}, "url": {}},
    "roots": {},
}


class Untied(Exception):
    """The server's request cannot be handed to a client; ``code`` is its JSON-RPC error."""

    def __init__(self, message: str, code: int = protocol.INTERNAL_ERROR) -> None:
        super().__init__(message)
        self.code = code


def declared(features: object) -> JsonObject:
    """The client capabilities that declare ``features`` (names of FEATURE_NAMES)."""
    if not isinstance(features, list | tuple | frozenset | set):
        return {}
    return {name: dict(DECLARED[name]) for name in FEATURE_NAMES if name in features}


def capabilities_of(initialize_params: object) -> JsonObject:
    """The client capabilities an ``initialize`` request declares."""
    params = initialize_params if isinstance(initialize_params, dict) else {}
    capabilities = params.get("capabilities")
    return capabilities if isinstance(capabilities, dict) else {}


def unsupported(method: str, params: object, capabilities: JsonObject) -> str | None:
    """Why a client with ``capabilities`` cannot be asked ``method``, or None if it can."""
    feature = FEATURES.get(method)
    if feature is None:
        return f"{method}: not a request a server may make of its client"
    offered = capabilities.get(feature)
    if not isinstance(offered, dict):
        return f"{method}: the client did not declare the {feature} capability"
    url_mode = isinstance(params, dict) and params.get("mode") == "url"
    if feature == "elicitation" and url_mode and "url" not in offered:
        return f"{method}: the client does not support URL elicitation"
    return None


class Asks:
    """The requests one session is asked, waiting for its answers (ids of ours)."""

    def __init__(self, prefix: str) -> None:
        self._prefix = prefix
        self._ids = itertools.count(1)
        self._waiting: dict[str, asyncio.Future[JsonObject]] = {}

    async def ask(self, outlet: Outlet, method: str, params: object) -> JsonObject:
        """Send the request through ``outlet``; the client's answer (result or error)."""
        request_id = f"{self._prefix}-{next(self._ids)}"
        future: asyncio.Future[JsonObject] = asyncio.get_running_loop().create_future()
        self._waiting[request_id] = future
        message: JsonObject = {"jsonrpc": "2.0", "id": request_id, "method": method}
        if params is not None:
            message["params"] = params
        try:
            outlet(message)
            return await future
        finally:
            self._waiting.pop(request_id, None)

    def answered(self, message: JsonObject) -> bool:
        """Take a response of the client; False when it answers nothing we asked."""
        request_id = message.get("id")
        future = self._waiting.get(request_id) if isinstance(request_id, str) else None
        if future is None or future.done():
            return False
        future.set_result(message)
        return True

    def cancel_all(self) -> None:
        for future in self._waiting.values():
            future.cancel()


@dataclass(eq=False)
class Tie:
    """A request in flight for one session: whom the server's requests may be meant for."""

    session: object  # what identifies the session (several ties may share it)
    asks: Asks
    capabilities: JsonObject
    outlet: Outlet | None = None  # the request's own stream, if it has one
    stream: Callable[[], Outlet | None] = field(default=lambda: None)  # the session's

    def where(self) -> Outlet | None:
        return self.outlet or self.stream()


class InFlight:
    """The ties of the requests in flight on one shared connection, and the server requests
    being answered for them."""

    def __init__(self) -> None:
        self._ties: list[Tie] = []
        self._untied = 0
        self._tasks: dict[object, set[asyncio.Task[None]]] = {}

    def enter(self, tie: Tie | None) -> None:
        """A request goes out for ``tie``'s session (None: for nobody who can be asked)."""
        if tie is None:
            self._untied += 1
        else:
            self._ties.append(tie)

    def leave(self, tie: Tie | None) -> None:
        """``tie``'s request ended; when it was its session's last, what the server still
        asked of that session is cancelled."""
        if tie is None:
            self._untied -= 1
            return
        self._ties.remove(tie)
        if any(t.session is tie.session for t in self._ties):
            return
        for task in self._tasks.pop(tie.session, ()):
            task.cancel()

    def choose(self, method: str) -> Tie:
        """The tie to hand a server request to: the newest of the one session in flight.

        Raises:
            Untied: no request in flight, or requests of several sessions.
        """
        if not self._ties:
            raise Untied(f"{method}: no client request is in flight to tie it to")
        newest = self._ties[-1]
        if self._untied or any(t.session is not newest.session for t in self._ties):
            sessions = len({id(t.session) for t in self._ties}) + self._untied
            raise Untied(
                f"{method}: cannot be tied to one client: {sessions} client sessions have "
                "requests in flight on this server"
            )
        for tie in reversed(self._ties):
            if tie.outlet is not None:
                return tie
        return newest

    def spawn(self, tie: Tie, work: Coroutine[Any, Any, None]) -> None:
        """Run ``work`` (answering a server request for ``tie``'s session) until it ends or
        the session's requests do."""
        task = asyncio.ensure_future(work)
        tasks = self._tasks.setdefault(tie.session, set())
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    def cancel_all(self) -> None:
        for tasks in self._tasks.values():
            for task in tasks:
                task.cancel()
        self._tasks.clear()


async def relay(tie: Tie, message: JsonObject) -> JsonObject:
    """Ask ``tie``'s client the server's request ``message``; the answer to send back to the
    server, under the server's id (an error answer when the client cannot be asked)."""
    request_id = message.get("id")
    method = str(message.get("method"))
    params = message.get("params")
    why = unsupported(method, params, tie.capabilities)
    if why is not None:
        return protocol.error(request_id, protocol.METHOD_NOT_FOUND, why)
    outlet = tie.where()
    if outlet is None:
        why = f"{method}: the client has no open stream to receive the request on"
        return protocol.error(request_id, protocol.INTERNAL_ERROR, why)
    try:
        answer = await tie.asks.ask(outlet, method, params)
    except asyncio.CancelledError:
        return protocol.error(
            request_id,
            protocol.REQUEST_CANCELLED,
            f"{method}: the client request it belonged to ended first",
        )
    error = answer.get("error")
    if isinstance(error, dict):
        return {"jsonrpc": "2.0", "id": request_id, "error": error}
    result = answer.get("result")
    return protocol.result(request_id, result if isinstance(result, dict) else {})
