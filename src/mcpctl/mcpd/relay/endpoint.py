"""The relay's endpoint: ``/api/v1/servers/{name}/mcp`` for POST, GET and DELETE, answered by
``Relay.serve`` with the raw ASGI scope (mounted ahead of the REST API: ``routes/relay.py``).

Every request: the bearer token (401), ``authorize(caller, "run", "servers", name)`` (403,
audited by the authorizer), then by the server's transport:

- stdio servers: relay sessions of our own (``stdio.py``). ``initialize`` starts the
  instance if needed (404 for an unknown server, 503 when it cannot run) and opens a
  session; every other message needs its ``Mcp-Session-Id`` (400 without, 404 for an
  unknown or ended one, or one of another server or user). ``GET`` opens the session's
  notification stream, ``DELETE`` ends it, and a POST of ``application/x-ndjson`` opens
  its channel (``channel.py``: the session's messages both ways on one connection).
- http servers: forwarded as they are (``http.py``).

Within a session the token is checked again at most every ``MCPD_RBAC_CACHE_SECONDS``
(the same bound as for changed permissions); permissions are checked on every request.
A request naming 2026-07-28 (no handshake: ``server/discover`` or that
``MCP-Protocol-Version``) is answered 400 with -32022 and the versions we speak, on which the
SDK client falls back to ``initialize``.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from starlette.datastructures import Headers
from starlette.types import Receive, Scope, Send

from mcpctl.domain.caller import ANONYMOUS, Caller
from mcpctl.errors import AppError, InvalidInput, Unauthenticated, Unavailable
from mcpctl.jsonrpc import protocol, wire
from mcpctl.jsonrpc.asks import FEATURE_NAMES
from mcpctl.jsonrpc.protocol import BadRequest, JsonObject
from mcpctl.mcpd.instances.supervisor import Instance, Supervisor
from mcpctl.mcpd.rawasgi import bearer
from mcpctl.mcpd.relay.audit import CallOutcome, record_call
from mcpctl.mcpd.relay.channel import Channel, wants_channel
from mcpctl.mcpd.relay.http import HttpForwarder
from mcpctl.mcpd.relay.sessions import RelaySession, SessionStore
from mcpctl.mcpd.relay.stdio import TOOLS_CALL, StdioRelay
from mcpctl.mcpd.services.audit import AuditLog
from mcpctl.mcpd.services.auth import IMPERSONATE_HEADER, AuthService, hash_token
from mcpctl.mcpd.services.authz import Authorizer

log = logging.getLogger(__name__)


class Relay:
    """Everything the relay holds: its sessions, the stdio path and the http forwarder."""

    def __init__(
        self,
        *,
        auth: AuthService,
        authz: Authorizer,
        audit: AuditLog,
        supervisor: Supervisor,
        auth_cache_seconds: float = 5.0,
        sessions: SessionStore | None = None,
        forwarder: HttpForwarder | None = None,
    ) -> None:
        self.auth = auth
        self.authz = authz
        self.audit = audit
        self.supervisor = supervisor
        self.auth_cache_seconds = auth_cache_seconds
        self.sessions = sessions or SessionStore()
        self.stdio = StdioRelay(supervisor, self.sessions, audit)
        self.http = forwarder or HttpForwarder()

    async def aclose(self) -> None:
        """End every session (their streams close) and the http client."""
        self.sessions.close()
        await self.stdio.aclose()
        await self.http.aclose()

    # -- the ASGI entry ------------------------------------------------------------------

    async def serve(
        self, scope: Scope, receive: Receive, send: Send, name: str, request_id: str
    ) -> None:
        """Answer one HTTP request to server ``name``'s endpoint (``request_id`` is recorded
        in its audit events)."""
        headers = Headers(scope=scope)
        method = scope["method"]
        if method not in ("POST", "GET", "DELETE"):
            await wire.send_empty(send, 405, [(b"allow", b"GET, POST, DELETE")])
            return
        try:
            session = self._session_of(headers, name)
            credentials = _Credentials.of(scope, headers)
            caller = await self._caller(credentials, scope, headers, session, request_id)
            self.authz.authorize(caller, "run", "servers", name)
            if session is not None and not session.owned_by(caller):
                session = None  # another user's: as unknown as any other
            if method == "POST" and wants_channel(headers.get("content-type")):
                await self._channel(scope, headers, credentials, session, request_id, receive, send)
            elif method == "POST":
                await self._post(scope, headers, credentials, name, caller, session, receive, send)
            elif method == "GET":
                await self._get(headers, name, session, receive, send)
            else:
                await self._delete(headers, name, session, receive, send)
        except AppError as exc:
            await self._refuse(send, exc)
        except wire.BodyTooLarge as exc:
            await wire.send_json(
                send, 413, protocol.error(None, protocol.INVALID_REQUEST, str(exc))
            )
        except ConnectionResetError:
            return

    async def _refuse(self, send: Send, exc: AppError, request_id: object = None) -> None:
        headers: wire.Headers = []
        if isinstance(exc, Unauthenticated):
            headers.append((b"www-authenticate", b'Bearer realm="mcpd"'))
        if isinstance(exc, Unavailable) and exc.retry_after is not None:
            headers.append((b"retry-after", str(max(1, round(exc.retry_after))).encode()))
        await wire.send_json(send, exc.http_status, protocol.error_of(request_id, exc), headers)

    # -- who is asking -------------------------------------------------------------------

    def _session_of(self, headers: Headers, name: str) -> RelaySession | None:
        session_id = headers.get(wire.SESSION_HEADER)
        if session_id is None:
            return None
        session = self.sessions.get(session_id)
        if session is None or session.server != name:
            return None
        return session

    async def _caller(
        self,
        credentials: _Credentials,
        scope: Scope,
        headers: Headers,
        session: RelaySession | None,
        request_id: str,
    ) -> Caller:
        """The authenticated caller; within a session, its earlier check is reused for up to
        ``auth_cache_seconds`` when the same token comes (with fresh grants).

        Raises:
            Unauthenticated, PermissionDenied (impersonation), InvalidInput (the header).
        """
        token, digest = credentials.token, credentials.digest
        now = time.monotonic()
        if (
            session is not None
            and token
            and session.token_digest == digest
            and session.caller.impersonated_by is None
            and now - session.authenticated_at < self.auth_cache_seconds
            and not credentials.impersonating
        ):
            known = session.caller
            grants = await self.auth.grants.grants_for(known.user)
            # The constructor, not dataclasses.replace: this runs for every request.
            return Caller(known.user, grants, known.token_id, request_id, credentials.client)
        origin = Caller(user=ANONYMOUS, request_id=request_id, client=credentials.client)
        caller = await self.auth.authenticate(token, origin, f"{scope['method']} {scope['path']}")
        target = _impersonated(headers)
        if target is not None:
            caller = await self.auth.impersonate(caller, target, self.authz)
        if session is not None and session.owned_by(caller):
            session.caller = caller
            session.token_digest = digest
            session.authenticated_at = now
        return caller

    # -- POST: one JSON-RPC message ----------------------------------------------------------

    async def _post(
        self,
        scope: Scope,
        headers: Headers,
        credentials: _Credentials,
        name: str,
        caller: Caller,
        session: RelaySession | None,
        receive: Receive,
        send: Send,
    ) -> None:
        body = await wire.read_body(receive)
        message = protocol.parse_message(body)
        request_id = message.get("id")
        method = message.get("method")
        if session is None:
            instance = await self.supervisor.acquire(name)
            if instance.connection is None:
                await self._forward(instance, scope, headers, body, message, caller, receive, send)
                return
            version = headers.get(wire.VERSION_HEADER)
            if method == "server/discover" or (
                version is not None and version not in protocol.SUPPORTED_VERSIONS
            ):
                await wire.send_json(send, 400, protocol.unsupported_version(request_id, version))
                return
            if method != "initialize" or "id" not in message:
                await self._no_session(send, headers, request_id)
                return
            await self.stdio.initialize(send, message, caller, credentials.digest, instance)
            return
        self._check_version(headers, session)
        session.last_seen = time.monotonic()
        if method is None:
            session.asks.answered(message)  # the client's answer to a server request
            await wire.send_empty(send, 202)
        elif "id" not in message:
            await self.stdio.notification(session, message)
            await wire.send_empty(send, 202)
        else:
            accept = headers.get("accept", "")
            await self.stdio.request(
                session,
                caller,
                message,
                sse="text/event-stream" in accept,
                receive=receive,
                send=send,
            )

    @staticmethod
    def _check_version(headers: Headers, session: RelaySession) -> None:
        """Raises: BadRequest when the header names another version than the session's."""
        version = headers.get(wire.VERSION_HEADER)
        if version is not None and version != session.protocol_version:
            raise BadRequest(
                f"MCP-Protocol-Version {version!r} is not this session's "
                f"({session.protocol_version})"
            )

    async def _no_session(self, send: Send, headers: Headers, request_id: object) -> None:
        if headers.get(wire.SESSION_HEADER) is None:
            answer = protocol.error(
                request_id,
                protocol.INVALID_REQUEST,
                "Bad Request: no Mcp-Session-Id; start with initialize",
            )
            await wire.send_json(send, 400, answer)
            return
        answer = protocol.error(
            request_id,
            protocol.INVALID_REQUEST,
            protocol.SESSION_TERMINATED,
            {"code": "session_not_found", "detail": "unknown or expired session; initialize again"},
        )
        await wire.send_json(send, 404, answer)

    # -- a session's channel ---------------------------------------------------------------

    async def _channel(
        self,
        scope: Scope,
        headers: Headers,
        credentials: _Credentials,
        session: RelaySession | None,
        request_id: str,
        receive: Receive,
        send: Send,
    ) -> None:
        """Serve ``session``'s channel (``channel.py``); each request in it is authorized
        as a plain POST would be. Only relay sessions have one: 400 without a session id,
        404 for an unknown session (an http server's sessions are the server's own)."""
        if session is None:
            await self._no_session(send, headers, None)
            return
        self._check_version(headers, session)

        # A channel's headers are those of its one POST: read once, not per message.
        async def caller() -> Caller:
            return await self._caller(credentials, scope, headers, session, request_id)

        await Channel(self.stdio, self.authz, session, caller).run(receive, send)

    # -- GET: the session's notification stream; DELETE: its end ---------------------------

    async def _get(
        self,
        headers: Headers,
        name: str,
        session: RelaySession | None,
        receive: Receive,
        send: Send,
    ) -> None:
        if session is not None:
            await self.stdio.listen(session, receive, send)
            return
        instance = await self.supervisor.acquire(name)
        if instance.connection is None:
            await self.http.forward(instance, "GET", headers, b"", receive, send)
            return
        await self._no_session(send, headers, None)

    async def _delete(
        self,
        headers: Headers,
        name: str,
        session: RelaySession | None,
        receive: Receive,
        send: Send,
    ) -> None:
        if session is not None:
            self.sessions.end(session)
            await wire.send_empty(send, 200)
            return
        instance = await self.supervisor.acquire(name)
        if instance.connection is None:
            await self.http.forward(instance, "DELETE", headers, b"", receive, send)
            return
        await self._no_session(send, headers, None)

    # -- http servers --------------------------------------------------------------------

    async def _forward(
        self,
        instance: Instance,
        scope: Scope,
        headers: Headers,
        body: bytes,
        message: JsonObject,
        caller: Caller,
        receive: Receive,
        send: Send,
    ) -> None:
        if message.get("method") == "initialize":
            body = _offered_features(message, instance.client_features)
        if message.get("method") != TOOLS_CALL:
            await self.http.forward(instance, "POST", headers, body, receive, send)
            return
        params = message.get("params")
        tool = params.get("name") if isinstance(params, dict) else None
        started = time.perf_counter()

        def audit(outcome: CallOutcome) -> None:
            duration = time.perf_counter() - started
            record_call(self.audit, caller, instance.server, tool, duration, outcome)

        try:
            await self.http.forward(
                instance, "POST", headers, body, receive, send, audit, message.get("id")
            )
        except AppError as exc:
            audit(CallOutcome(error=exc))
            raise


def _offered_features(initialize: JsonObject, opted_in: frozenset[str]) -> bytes:
    """``initialize`` for an http server, declaring of the client's sampling, elicitation
    and roots only those the server's spec opts in to (``clientFeatures``), as mcpd does for
    a stdio server: a server never learns of one its spec did not ask for."""
    params = initialize.get("params")
    capabilities = params.get("capabilities") if isinstance(params, dict) else None
    if isinstance(params, dict) and isinstance(capabilities, dict):
        kept = {k: v for k, v in capabilities.items() if k not in FEATURE_NAMES or k in opted_in}
        initialize = {**initialize, "params": {**params, "capabilities": kept}}
    return protocol.encode(initialize)


@dataclass(frozen=True)
class _Credentials:
    """What a request's headers say about who makes it: its bearer token (and the token's
    digest), the peer's address, whether it impersonates someone."""

    token: str | None
    digest: str
    client: str | None
    impersonating: bool

    @classmethod
    def of(cls, scope: Scope, headers: Headers) -> _Credentials:
        token = bearer(headers.get("authorization"))
        peer = scope.get("client")
        return cls(
            token,
            hash_token(token) if token else "",
            peer[0] if peer else None,
            IMPERSONATE_HEADER.lower() in headers,
        )


def _impersonated(headers: Headers) -> str | None:
    """Raises: InvalidInput for an empty or repeated Impersonate-User header."""
    values = headers.getlist(IMPERSONATE_HEADER)
    if not values:
        return None
    if len(values) > 1 or not values[0].strip():
        raise InvalidInput(f"{IMPERSONATE_HEADER}: give exactly one user name")
    return values[0].strip()
