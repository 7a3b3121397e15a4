"""The OpenAI-compatible endpoint: ``GET /v1/models`` and ``POST /v1/chat/completions``
(docs/llms.md, "OpenAI-compatible endpoint"). ``model`` is an Llm name, a pool key or
``agent:NAME`` (``llm/agent_calls.py``); the pool dispatcher (``state.pools``) does the calling,
with its failover; ``llm/openai_wire.py`` parses and renders the OpenAI wire.

It is a gateway's hot path, so, like the MCP relay (``routes/relay.py``), the app hands these
requests' raw ASGI scope to ``OpenAIMount`` ahead of FastAPI's router and middleware
(``app.py``), and the mount does itself what the generic stack would: the request id, the
metrics under the route's path, and the last-resort 500. Errors are OpenAI's
``{"error": {...}}`` with ``x-should-retry``, never problem+json: the callers are OpenAI SDKs.

Who may call what. The caller's mcpctl token, as everywhere. A bearer token that authenticated
is trusted again for ``MCPD_RBAC_CACHE_SECONDS`` without a database read (the bound mcpd already
puts on changed permissions; grants are read fresh on every request). Calling a model needs
``run`` on llms/NAME: for an Llm name, that Llm (its pool may serve the request through a
sibling: granting an Llm grants its pool); for a pool key that is no Llm's name, ``run`` on the
key itself or on any member of the pool; ``agent:NAME`` needs ``run`` on agents/NAME.
``/v1/models`` lists exactly what the caller may run, agents included.
"""

from __future__ import annotations

import asyncio
import logging
import time
from contextlib import aclosing

from starlette.types import Receive, Scope, Send

from mcpctl.domain.caller import ANONYMOUS, Caller
from mcpctl.domain.pools import pools, resolve
from mcpctl.errors import AppError, InvalidInput, NotFound
from mcpctl.jsonrpc import wire
from mcpctl.jsonrpc.protocol import encode
from mcpctl.mcpd.llm.agent_calls import (
    PERSONALITY_HEADER,
    THREAD_HEADER,
    AgentCall,
    agent_call,
    agent_of,
)
from mcpctl.mcpd.llm.messages import Finish, Usage
from mcpctl.mcpd.llm.openai_wire import (
    AGENT_PREFIX,
    DONE,
    ChatCall,
    ChunkWriter,
    completion,
    error_body,
    error_event,
    error_headers,
    parse_call,
    status_of,
)
from mcpctl.mcpd.llm.pools import LlmBackend, PoolEvent, StreamFailed
from mcpctl.mcpd.metrics import HttpMetrics
from mcpctl.mcpd.rawasgi import app_path, bearer, header
from mcpctl.mcpd.request_id import HEADER_KEY, SendWithId, accept
from mcpctl.mcpd.services.auth import IMPERSONATE_HEADER, hash_token
from mcpctl.mcpd.state import AppState

log = logging.getLogger(__name__)

MODELS = "/v1/models"
CHAT = "/v1/chat/completions"
PATHS = frozenset({MODELS, CHAT})
_AUTHORIZATION = b"authorization"
_IMPERSONATE = IMPERSONATE_HEADER.lower().encode("latin-1")
_PERSONALITY = PERSONALITY_HEADER.lower().encode("latin-1")
_THREAD = THREAD_HEADER.lower().encode("latin-1")
MAX_CACHED_TOKENS = 1024


def path_of(scope: Scope) -> str | None:
    """The endpoint path of an OpenAI-compatible request, or None for any other request."""
    path = app_path(scope)
    return path if path in PATHS else None


async def _send_error(send: Send, exc: AppError) -> None:
    body = encode(error_body(exc))
    await wire.send_body(send, status_of(exc), body, wire.JSON, error_headers(exc))


class OpenAIMount:
    """Request id, metrics, authentication and the last resort around the two endpoints."""

    def __init__(self, metrics: HttpMetrics) -> None:
        self.metrics = metrics
        # token digest -> (authenticated at, the caller as authenticated)
        self._callers: dict[str, tuple[float, Caller]] = {}

    async def __call__(
        self, state: AppState, path: str, scope: Scope, receive: Receive, send: Send
    ) -> None:
        start = time.perf_counter()
        request_id = accept(header(scope, HEADER_KEY))
        send_with_id = SendWithId(send, request_id)

        try:
            await self._serve(state, path, scope, receive, send_with_id, request_id)
        except AppError as exc:
            if not send_with_id.status:
                await _send_error(send_with_id, exc)
        except wire.BodyTooLarge as exc:
            await _send_error(send_with_id, InvalidInput(str(exc), details={"param": "body"}))
        except ConnectionResetError:
            pass  # the client went away
        except Exception:  # the top-level handler of these requests
            if send_with_id.status:
                raise  # mid-answer: uvicorn logs it and closes the connection
            log.exception("unexpected error on %s %s", scope["method"], scope["path"])
            await _send_error(send_with_id, AppError("internal error; the mcpd log has details"))
        finally:
            self.metrics.observe(
                scope["method"], path, send_with_id.status or 500, time.perf_counter() - start
            )

    async def _serve(
        self, state: AppState, path: str, scope: Scope, receive: Receive, send: Send, rid: str
    ) -> None:
        method = scope["method"]
        expected = "GET" if path == MODELS else "POST"
        if method != expected:
            allow = [(b"allow", expected.encode())]
            error = InvalidInput(f"{method} is not allowed on {path}: use {expected}")
            await wire.send_body(send, 405, encode(error_body(error)), wire.JSON, allow)
            return
        if path == MODELS:
            caller = await self._caller(state, scope, rid)
            await wire.send_body(send, 200, await models(state, caller), wire.JSON, [])
            return
        body = await wire.read_body(receive)
        caller = await self._caller(state, scope, rid)
        call = parse_call(body)
        agent = agent_of(call.model)
        if agent is not None:
            await _agent(state, caller, agent, call, scope, receive, send)
            return
        await authorize_run(state, caller, call.model)
        if call.stream:
            await _stream(state, call, receive, send)
            return
        done = await state.pools.complete(call.model, call.request)
        await wire.send_body(send, 200, completion(call.model, done.answer), wire.JSON, [])

    async def _caller(self, state: AppState, scope: Scope, request_id: str) -> Caller:
        """The authenticated caller (see the module's docstring on the cache).

        Raises:
            Unauthenticated, PermissionDenied (impersonation), InvalidInput (its header).
        """
        token = bearer(header(scope, _AUTHORIZATION))
        peer = scope.get("client")
        client = peer[0] if peer else None
        impersonating = any(name == _IMPERSONATE for name, _ in scope["headers"])
        digest = hash_token(token) if token else ""
        now = time.monotonic()
        known = self._callers.get(digest) if token and not impersonating else None
        if known is not None and now - known[0] < state.settings.rbac_cache_seconds:
            user, token_id = known[1].user, known[1].token_id
            grants = await state.auth.grants.grants_for(user)
            return Caller(user, grants, token_id, request_id, client)
        origin = Caller(user=ANONYMOUS, request_id=request_id, client=client)
        caller = await state.auth.authenticate(token, origin, f"{scope['method']} {scope['path']}")
        if impersonating:
            target = _impersonated(scope)
            return await state.auth.impersonate(caller, target, state.authz)
        if len(self._callers) >= MAX_CACHED_TOKENS:
            self._callers.clear()
        self._callers[digest] = (now, caller)
        return caller


def _impersonated(scope: Scope) -> str:
    values: list[str] = [
        str(v.decode("latin-1")).strip() for k, v in scope["headers"] if k == _IMPERSONATE
    ]
    if len(values) != 1 or not values[0]:
        raise InvalidInput(f"{IMPERSONATE_HEADER}: give exactly one user name")
    return values[0]


async def _backends(state: AppState) -> dict[str, LlmBackend]:
    # The dispatcher's own cached view of the Llms, the one it routes by.
    return await state.pools.backends()


async def authorize_run(state: AppState, caller: Caller, word: str) -> None:
    """Raises:
    PermissionDenied: the caller may not run ``word`` (audited). NotFound: no such model."""
    authz = state.authz
    if authz.allows(caller, "run", "llms", word):
        return
    target = resolve(word, [b.member for b in (await _backends(state)).values()])
    if target is None:
        raise NotFound(
            f"The model {word!r} does not exist: name an Llm or a pool", details={"param": "model"}
        )
    if target.pinned is None and any(
        authz.allows(caller, "run", "llms", m.name) for m in target.members
    ):
        return
    authz.authorize(caller, "run", "llms", word)


async def models(state: AppState, caller: Caller) -> bytes:
    """The ``/v1/models`` list: every Llm name, pool key and ``agent:NAME`` that ``caller``
    may run."""
    async with state.objects.uows.read() as uow:
        rows = await uow.objects.select_page("Llm", [], None, None)
        agents = await uow.objects.select_page("Agent", [], None, None)
    created = {row.name: int(row.created_at.timestamp()) for row in rows}
    backends = await _backends(state)
    allows = state.authz.allows
    data = [
        _model(name, created.get(name, 0), backend.provider)
        for name, backend in sorted(backends.items())
        if allows(caller, "run", "llms", name)
    ]
    for key, pool in sorted(pools(b.member for b in backends.values()).items()):
        if key in backends:
            continue  # a seed's pool key is its name, listed above
        if allows(caller, "run", "llms", key) or any(
            allows(caller, "run", "llms", m.name) for m in pool
        ):
            data.append(_model(key, min(created.get(m.name, 0) for m in pool), "mcpctl-pool"))
    data += [
        _model(f"{AGENT_PREFIX}{row.name}", int(row.created_at.timestamp()), "mcpctl-agent")
        for row in agents
        if allows(caller, "run", "agents", row.name)
    ]
    return encode({"object": "list", "data": data})


def _model(name: str, created: int, owner: str) -> dict[str, object]:
    return {"id": name, "object": "model", "created": created, "owned_by": owner}


async def _agent(
    state: AppState,
    caller: Caller,
    agent: str,
    call: ChatCall,
    scope: Scope,
    receive: Receive,
    send: Send,
) -> None:
    """``model: agent:NAME`` (``llm/agent_calls.py``): the agent's Llm, system block and
    params; stored in a thread only when ``X-Mcpctl-Thread`` says so."""
    prepared = await agent_call(
        state.chat,
        caller,
        agent,
        call.request,
        personality=header(scope, _PERSONALITY),
        thread=header(scope, _THREAD),
    )
    if call.stream:
        await _stream(state, call, receive, send, prepared)
        return
    done = await prepared.complete()
    body = completion(call.model, done.answer)
    await wire.send_body(send, 200, body, wire.JSON, prepared.headers)


async def _stream(
    state: AppState,
    call: ChatCall,
    receive: Receive,
    send: Send,
    agent: AgentCall | None = None,
) -> None:
    """The answer as ``chat.completion.chunk`` events. Nothing is sent until the pool has a
    first event, so every failure before it is an HTTP error with its status; a failure after
    it is an error event, and the stream ends without ``[DONE]``. A caller that goes away
    stops the work, which closes the backend's connection (and so its generation)."""
    work = asyncio.ensure_future(_pump(state, call, send, agent))
    if not await wire.until_disconnect(receive, work):
        work.result()


async def _pump(state: AppState, call: ChatCall, send: Send, agent: AgentCall | None) -> None:
    writer = ChunkWriter(call.model, include_usage=call.include_usage)
    stream = state.pools.stream(call.model, call.request) if agent is None else agent.stream()
    async with aclosing(stream) as events:
        try:
            first: PoolEvent | None = await anext(events)
        except StopAsyncIteration:
            first = None
        await wire.start_sse(send, agent.headers if agent is not None else None)
        head = writer.role()
        if first is not None:
            head += _chunk(writer, first)
        await send({"type": "http.response.body", "body": head, "more_body": True})
        failed = isinstance(first, StreamFailed)
        # Finish and Usage come last, together (the adapters hold them until the backend's
        # end marker): they go out with [DONE] and the end of the body, in one write.
        closing = b""
        async for event in events:
            if failed:
                break
            data = _chunk(writer, event)
            if isinstance(event, Finish | Usage):
                closing += data
                continue
            if closing:
                data, closing = closing + data, b""
            if data:
                await send({"type": "http.response.body", "body": data, "more_body": True})
            failed = isinstance(event, StreamFailed)
        closing += b"" if failed else DONE
        await send({"type": "http.response.body", "body": closing, "more_body": False})


def _chunk(writer: ChunkWriter, event: PoolEvent) -> bytes:
    if isinstance(event, StreamFailed):
        return error_event(event.error)
    return writer.event(event)
