"""The pool dispatcher: one chat request to the pool a word addresses, with failover.

    pools = PoolDispatcher(uows, secrets, authz, origins)
    done = await pools.complete("fast", request)            # .answer, .llm (who served), .pool
    async with aclosing(pools.stream("fast", request)) as events:
        async for event in events:   # TextDelta | ToolCallDelta | Finish | Usage | StreamFailed
            ...                      # events.served_by: the Llm that serves, once known

The rules of membership, addressing, ordering and cooldown are ``mcpctl.domain.pools``; this
module does the calling. Per request: the viable members of the pool (status not inactive,
not cooling down), shuffled, the pinned Llm first; each is tried in turn while it fails in a
retryable way (``BackendUnreachable``, ``BackendFailed`` with ``retryable``: 5xx, 408, 429)
before its first event. A non-retryable answer (400, 401, 403, 404, 422) ends the request at
once: a sibling with the same model and key would fail alike. Once a streamed event has been
passed on, the request is committed to that member: a later failure ends the stream with a
``StreamFailed`` event, never with a retry.

Errors before the stream (raised from ``complete`` or from the stream's first ``__anext__``)
are ``mcpctl.errors``: NotFound (no such Llm or pool), Unavailable (no active member, all
cooling down, or every member failed; RateLimited when all of them answered 429), and for a
refusal the backend's status mapped as ``REFUSALS`` says, with ``details.backendStatus``.

What the dispatcher remembers (failures, cooldowns, requests in flight) is per process and in
memory: each mcpd replica keeps its own, and a restart forgets it. The Llms themselves are read
from the database and cached for ``catalog_seconds`` (dropped at once when an Llm is written
through this mcpd). An Llm's API key is read from its Secret on each attempt, so a rotated key
takes effect at once; it goes into the request's headers and nowhere else (never logged).

Backends are reached through one ``mcpctl.http11.Origins``: kept-alive HTTP/1.1 connections,
at most ``MAX_CONNECTIONS`` open per origin (a request waits up to the connect timeout for one),
``MAX_IDLE`` of them kept for reuse and each closed after ``IDLE_EXPIRY`` seconds idle (under
the 5 s after which uvicorn-based servers and llama.cpp close theirs), never a request sent
twice; https verified against the system's CAs plus ``MCPD_LLM_CA_FILE``; the environment's
``HTTPS_PROXY``/``HTTP_PROXY``/``NO_PROXY`` honoured (docs/llms.md, "How mcpd reaches backends").
"""

from __future__ import annotations

import dataclasses
import logging
import random
import time
from collections.abc import AsyncGenerator, Callable, Mapping
from contextlib import aclosing
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mcpctl.domain.caller import Caller
from mcpctl.domain.pools import (
    CooldownPolicy,
    MemberHealth,
    PoolMember,
    Target,
    candidates,
    resolve,
)
from mcpctl.errors import (
    AppError,
    InvalidInput,
    NotFound,
    PermissionDenied,
    RateLimited,
    Unavailable,
)
from mcpctl.http11 import Origins, client_context, environment_proxies
from mcpctl.mcpd.db.uow import UnitOfWorkFactory
from mcpctl.mcpd.llm.adapters import (
    Adapter,
    BackendError,
    BackendFailed,
    Timeouts,
    adapter_for,
)
from mcpctl.mcpd.llm.messages import Answer, Params, Request, StreamEvent
from mcpctl.mcpd.services.authz import Authorizer
from mcpctl.mcpd.services.secrets import SecretBehaviour
from mcpctl.mcpd.settings import Settings
from mcpctl.resources.llms import LlmSpec
from mcpctl.resources.servers import SecretKeyRef

log = logging.getLogger(__name__)

MAX_CONNECTIONS = 100  # per backend origin, open at once
MAX_IDLE = 32  # per backend origin, kept for reuse
IDLE_EXPIRY = 4.0  # seconds

# A backend's refusal as the caller sees it; any other 4xx is InvalidInput.
REFUSALS: dict[int, type[AppError]] = {
    400: InvalidInput,
    401: PermissionDenied,
    403: PermissionDenied,
    404: NotFound,
    422: InvalidInput,
}


@dataclass(frozen=True, slots=True)
class LlmBackend:
    """One stored Llm as the dispatcher calls it."""

    member: PoolMember
    provider: str
    url: str
    model: str
    api_key: SecretKeyRef | None
    params: Params

    @property
    def name(self) -> str:
        return self.member.name


def backend_of(name: str, stored: dict[str, Any]) -> LlmBackend:
    spec = LlmSpec.model_validate(stored)
    return LlmBackend(
        member=PoolMember(name, spec.poolName, spec.status),
        provider=spec.provider,
        url=spec.url,
        model=spec.model,
        api_key=spec.apiKey,
        params=Params.from_mapping(spec.defaultParams.as_mapping()),
    )


@dataclass(frozen=True, slots=True)
class Completion:
    """A whole answer, with the Llm that gave it and the pool it was asked of."""

    answer: Answer
    llm: str
    pool: str


@dataclass(frozen=True, slots=True)
class StreamFailed:
    """The last event of a stream that broke after it had started: ``error`` says why."""

    error: AppError
    llm: str


PoolEvent = StreamEvent | StreamFailed


class KeyUnavailable(BackendError):
    """The member's API key cannot be read (its Secret lost the key): try a sibling."""

    @property
    def retryable(self) -> bool:
        return True


class PoolStream:
    """The events of one streamed request; ``served_by`` names the Llm once one serves."""

    def __init__(self) -> None:
        self.served_by: str | None = None
        self._events: AsyncGenerator[PoolEvent, None] | None = None

    def __aiter__(self) -> PoolStream:
        return self

    async def __anext__(self) -> PoolEvent:
        assert self._events is not None
        return await self._events.__anext__()

    async def aclose(self) -> None:
        """Stop early: closes the backend's connection, which stops its generation."""
        if self._events is not None:
            await self._events.aclose()


class Catalog:
    """The stored Llms, reread after ``ttl`` seconds or when told they changed."""

    def __init__(
        self, uows: UnitOfWorkFactory, ttl: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._uows = uows
        self._ttl = ttl
        self._clock = clock
        self._backends: dict[str, LlmBackend] | None = None
        self._read_at = 0.0

    def invalidate(self) -> None:
        self._backends = None

    async def backends(self) -> dict[str, LlmBackend]:
        if self._backends is not None and self._clock() - self._read_at < self._ttl:
            return self._backends
        read_at = self._clock()
        async with self._uows.read() as uow:
            rows = await uow.objects.select_page("Llm", [], None, None)
        self._backends = {row.name: backend_of(row.name, row.spec) for row in rows}
        self._read_at = read_at
        return self._backends


class PoolDispatcher:
    """Chat requests to pools of Llms, with failover and per-member cooldown (see above)."""

    def __init__(
        self,
        uows: UnitOfWorkFactory,
        secrets: SecretBehaviour,
        authz: Authorizer,
        client: Origins,
        *,
        policy: CooldownPolicy | None = None,
        timeouts: Timeouts | None = None,
        catalog_seconds: float = 5.0,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._uows = uows
        self._secrets = secrets
        self._authz = authz
        self._client = client
        self.policy = policy or CooldownPolicy()
        self._timeouts = timeouts or Timeouts()
        self._catalog = Catalog(uows, catalog_seconds)
        self._rng = rng or random.Random()
        self._clock = clock
        self._health: dict[str, MemberHealth] = {}

    def llms_changed(self) -> None:
        """Llms were written: read them again on the next request."""
        self._catalog.invalidate()

    async def backends(self) -> dict[str, LlmBackend]:
        """The Llms as the dispatcher routes by them (cached), by name."""
        return await self._catalog.backends()

    async def aclose(self) -> None:
        await self._client.aclose()

    # -- dispatch ------------------------------------------------------------------------

    async def complete(self, word: str, request: Request) -> Completion:
        """The whole answer from the first member of the pool ``word`` addresses that gives one.

        Raises:
            NotFound: no Llm or pool is called ``word``.
            Unavailable: no member is viable, or every one failed (RateLimited if all said 429).
            InvalidInput, PermissionDenied, NotFound: a member refused the request (not retried).
        """
        target, order = await self._plan(word)
        failures: list[tuple[str, BackendError]] = []
        for backend in order:
            health = self._health_of(backend.name)
            health.in_flight += 1
            try:
                adapter = await self._adapter(backend)
                answer = await adapter.complete(self._request_for(backend, request))
            except BackendError as exc:
                self._settle(target, backend, exc, failures)
                continue
            finally:
                health.in_flight -= 1
            return Completion(answer, backend.name, target.key)
        raise _exhausted(target, failures)

    def stream(self, word: str, request: Request) -> PoolStream:
        """The answer as events from the first member that starts one (nothing is sent until
        the first ``__anext__``, which raises what ``complete`` raises); a failure after the
        first event ends the stream with ``StreamFailed``. Close it when stopping early."""
        out = PoolStream()
        out._events = self._stream(word, request, out)
        return out

    async def _stream(
        self, word: str, request: Request, out: PoolStream
    ) -> AsyncGenerator[PoolEvent, None]:
        target, order = await self._plan(word)
        failures: list[tuple[str, BackendError]] = []
        for backend in order:
            health = self._health_of(backend.name)
            health.in_flight += 1
            try:
                adapter = await self._adapter(backend)
                async with aclosing(adapter.stream(self._request_for(backend, request))) as events:
                    try:
                        first = await anext(events)
                    except StopAsyncIteration:
                        out.served_by = backend.name
                        return
                    except BackendError as exc:
                        self._settle(target, backend, exc, failures)
                        continue
                    out.served_by = backend.name
                    yield first
                    try:
                        async for event in events:
                            yield event
                    except BackendError as exc:
                        self._failed(backend, exc)
                        yield StreamFailed(_broken(target, backend, exc), backend.name)
                    return
            except BackendError as exc:  # before the stream: the API key could not be read
                self._settle(target, backend, exc, failures)
            finally:
                health.in_flight -= 1
        raise _exhausted(target, failures)

    async def _plan(self, word: str) -> tuple[Target, list[LlmBackend]]:
        backends = await self._catalog.backends()
        target = resolve(word, [b.member for b in backends.values()])
        if target is None:
            raise NotFound(f"no Llm or pool is called {word!r}", details={"pool": word})
        now = self._clock()
        cooling = [
            m.name
            for m in target.members
            if m.name in self._health and self._health[m.name].is_cooling(now)
        ]
        viable, skipped = candidates(target, cooling, self._rng)
        if viable:
            return target, [backends[m.name] for m in viable]
        pinned = f" (pinned: {target.pinned})" if target.pinned else ""
        details = {"pool": target.key, "pinned": target.pinned}
        if skipped:
            wait = min(self._health[m.name].cooling_until for m in skipped) - now
            raise Unavailable(
                f"No Llm in pool '{target.key}' can serve: every active one is cooling down "
                f"after failures, the first for {wait:.1f}s more{pinned}",
                details=details,
                retry_after=wait,
            )
        raise Unavailable(f"No active Llm in pool '{target.key}'{pinned}", details=details)

    def _settle(
        self,
        target: Target,
        backend: LlmBackend,
        exc: BackendError,
        failures: list[tuple[str, BackendError]],
    ) -> None:
        """A member failed before answering: note it for the next one, or end the request.

        Raises:
            AppError: the member refused the request in a way a sibling would repeat.
        """
        if not exc.retryable:
            raise _refused(target, backend, exc) from exc
        self._failed(backend, exc)
        failures.append((backend.name, exc))

    def _failed(self, backend: LlmBackend, exc: BackendError) -> None:
        rate_limited = isinstance(exc, BackendFailed) and exc.status == 429
        retry_after = exc.retry_after if isinstance(exc, BackendFailed) else None
        cooled = self._health_of(backend.name).failed(
            self._clock(),
            str(exc),
            self.policy,
            rate_limited=rate_limited,
            retry_after=retry_after,
        )
        log.warning(
            "llm %s (pool %s) failed: %s%s",
            backend.name,
            backend.member.key,
            exc,
            "; cooling down" if cooled else "",
        )

    def _health_of(self, name: str) -> MemberHealth:
        health = self._health.get(name)
        if health is None:
            health = self._health[name] = MemberHealth()
        return health

    async def _adapter(self, backend: LlmBackend) -> Adapter:
        return adapter_for(
            backend.provider,
            url=backend.url,
            api_key=await self._api_key(backend),
            timeouts=self._timeouts,
            client=self._client,
        )

    async def _api_key(self, backend: LlmBackend) -> str | None:
        ref = backend.api_key
        if ref is None:
            return None
        async with self._uows.read() as uow:
            row = await uow.objects.get("Secret", ref.name)
        data = self._secrets.plaintext(row) if row is not None else {}
        if ref.key not in data:
            raise KeyUnavailable(f"spec.apiKey: secret {ref.name!r} has no key {ref.key!r}")
        return data[ref.key]

    @staticmethod
    def _request_for(backend: LlmBackend, request: Request) -> Request:
        return dataclasses.replace(
            request, model=backend.model, params=backend.params.merged(request.params)
        )

    # -- what `describe llm` shows -------------------------------------------------------

    async def members(self, caller: Caller, name: str) -> dict[str, Any]:
        """The pool of Llm ``name``: each member with its status and what this mcpd saw of it.

        Raises:
            PermissionDenied: the caller may not view llm/``name``. NotFound.
        """
        self._authz.authorize(caller, "view", "llms", name)
        backends = await self._catalog.backends()
        if name not in backends:
            self._catalog.invalidate()
            backends = await self._catalog.backends()
        target = resolve(name, [b.member for b in backends.values()])
        if target is None or target.pinned != name:
            raise NotFound(f"llm/{name} not found")
        visible = self._authz.viewable(caller, "llms")
        now = self._clock()
        return {
            "apiVersion": "mcpctl/v1",
            "kind": "LlmPool",
            "pool": target.key,
            "llm": name,
            "cooldown": {
                "allowedFails": self.policy.allowed_fails,
                "windowSeconds": self.policy.window,
                "cooldownSeconds": self.policy.cooldown,
            },
            "members": [
                self._member_json(backends[m.name], now)
                for m in target.members
                if visible is None or m.name in visible
            ],
        }

    def _member_json(self, backend: LlmBackend, now: float) -> dict[str, Any]:
        health = self._health.get(backend.name) or MemberHealth()
        return {
            "name": backend.name,
            "status": backend.member.status,
            "provider": backend.provider,
            "model": backend.model,
            "coolingDownUntil": _iso(health.cooling_until) if health.is_cooling(now) else None,
            "recentFailures": [{"at": _iso(f.at), "error": f.error} for f in health.recent],
            "inFlight": health.in_flight,
        }


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _refused(target: Target, backend: LlmBackend, exc: BackendError) -> AppError:
    details: dict[str, Any] = {"llm": backend.name, "pool": target.key}
    if isinstance(exc, BackendFailed):
        details["backendStatus"] = exc.status
        cls = REFUSALS.get(exc.status, InvalidInput)
        hint = "; check its spec.apiKey" if exc.status in (401, 403) else ""
        return cls(
            f"llm/{backend.name} refused the request (HTTP {exc.status}): {exc.message}{hint}",
            details=details,
        )
    return InvalidInput(f"llm/{backend.name}: {exc.message}", details=details)


def _broken(target: Target, backend: LlmBackend, exc: BackendError) -> AppError:
    return Unavailable(
        f"llm/{backend.name}: the answer broke off: {exc.message}",
        details={"llm": backend.name, "pool": target.key},
    )


def _exhausted(target: Target, failures: list[tuple[str, BackendError]]) -> Unavailable:
    tried = "; ".join(f"llm/{name}: {exc}" for name, exc in failures)
    waits = [
        exc.retry_after
        for _, exc in failures
        if isinstance(exc, BackendFailed) and exc.retry_after is not None
    ]
    details: dict[str, Any] = {
        "pool": target.key,
        "attempts": [{"llm": name, "error": str(exc)} for name, exc in failures],
    }
    limited = bool(failures) and all(
        isinstance(exc, BackendFailed) and exc.status == 429 for _, exc in failures
    )
    cls = RateLimited if limited else Unavailable
    return cls(
        f"every Llm tried in pool '{target.key}' failed: {tried}",
        details=details,
        retry_after=min(waits) if waits else None,
    )


def backend_origins(
    *,
    connect_timeout: float,
    ca_file: Path | None = None,
    proxies: Mapping[str, str] | None = None,
) -> Origins:
    """Connections to LLM backends as mcpd keeps them (see the module's docstring).

    Raises:
        ValueError: ``ca_file`` cannot be loaded.
    """
    return Origins(
        connect_timeout=connect_timeout,
        max_connections=MAX_CONNECTIONS,
        max_idle=MAX_IDLE,
        idle_expiry=IDLE_EXPIRY,
        resend_stale=False,
        ssl_context=client_context(ca_file),
        proxies=proxies or {},
    )


def build_dispatcher(
    settings: Settings, uows: UnitOfWorkFactory, secrets: SecretBehaviour, authz: Authorizer
) -> PoolDispatcher:
    """The dispatcher with its own connections to the backends (close it with ``aclose``)."""
    origins = backend_origins(
        connect_timeout=settings.llm_connect_timeout_seconds,
        ca_file=settings.llm_ca_file,
        proxies=environment_proxies(),
    )
    return PoolDispatcher(
        uows,
        secrets,
        authz,
        origins,
        policy=CooldownPolicy(
            allowed_fails=settings.llm_allowed_fails,
            window=settings.llm_failure_window_seconds,
            cooldown=settings.llm_cooldown_seconds,
            max_cooldown=settings.llm_max_cooldown_seconds,
        ),
        timeouts=Timeouts(
            connect=settings.llm_connect_timeout_seconds,
            read=settings.llm_read_timeout_seconds,
        ),
        catalog_seconds=settings.llm_catalog_seconds,
    )
