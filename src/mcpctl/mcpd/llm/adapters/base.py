"""The ``Adapter`` interface, its timeouts and its errors.

An adapter speaks one provider's HTTP API and nothing else: no retries, no failover, no
fallback. It tells its caller exactly what went wrong, and whether trying another backend
could help, through one small tree of plain exceptions (the dispatcher maps them to
``mcpctl.errors`` at its edge)::

    BackendError                    retryable
    ├── BackendUnreachable          always    connection refused or reset, connect/read/write
    │                                         timeout, the connection dropped before any event
    ├── BackendFailed               5xx, 408, 429 (``status``, ``message``, ``retry_after``);
    │                                         not 400/401/403/404/422: a sibling would fail alike
    ├── StreamBroken                never     the stream failed after the caller saw an event
    └── RequestNotMappable          never     the request cannot be said in this provider's API

A backend whose 2xx answer is not what its API promises raises ``BackendFailed`` with status
502, as a gateway would answer: retryable, since another member may be healthy.

"Before the first event" is the line that decides between the retryable errors and
``StreamBroken``: an event is what ``stream`` yields, so a role-only preamble chunk, a ping or a
``message_start`` do not cross it. Until then nothing reached the caller and the dispatcher may
try a sibling; after it the request is committed to this backend.
"""

from __future__ import annotations

import datetime
import email.utils
import time
from collections.abc import AsyncGenerator, Mapping
from dataclasses import dataclass
from typing import Protocol

from mcpctl.http11 import Timeout
from mcpctl.mcpd.llm.messages import Answer, Request, StreamEvent

RETRYABLE_STATUSES = frozenset({408, 429})


@dataclass(frozen=True, slots=True)
class Timeouts:
    """How long an adapter waits: ``connect`` for a connection (and for a free one in the shared
    pool), ``read`` between two pieces of the answer (for a non-streamed answer, that is the
    whole generation, so keep it generous), ``write`` for sending the request."""

    connect: float = 5.0
    read: float = 120.0
    write: float = 30.0

    def for_http11(self) -> Timeout:
        return Timeout(connect=self.connect, read=self.read, write=self.write)


class Adapter(Protocol):
    """One backend of one provider. Built with ``(url, api_key, timeouts, origins)``: the
    ``http11.Origins`` (kept-alive connections by origin) is shared and owned by the caller (its
    own timeouts are ignored; its pool limits apply), ``api_key`` may be ``None`` for servers
    that need none."""

    async def complete(self, request: Request) -> Answer:
        """The whole answer in one piece.

        Raises:
            BackendUnreachable: no answer came (retryable).
            BackendFailed: the backend answered with an error (``retryable`` says).
            RequestNotMappable: the request cannot be sent to this provider.
        """
        ...

    def stream(self, request: Request) -> AsyncGenerator[StreamEvent, None]:
        """The answer as events; nothing is sent until the first ``__anext__``. Close it
        (``aclose()`` or ``contextlib.aclosing``) when stopping early: that closes the
        connection to the backend, which stops the generation.

        Raises (from ``__anext__``):
            BackendUnreachable, BackendFailed, RequestNotMappable: before the first event.
            StreamBroken: after it.
        """
        ...


class BackendError(Exception):
    """Base of the adapter errors; ``retryable`` says whether another backend might serve."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    @property
    def retryable(self) -> bool:
        return False


class BackendUnreachable(BackendError):
    """No usable answer arrived: the connection failed, timed out or dropped before any event."""

    @property
    def retryable(self) -> bool:
        return True


class BackendFailed(BackendError):
    """The backend answered with an error: its HTTP ``status`` (or the status its in-stream
    error event stands for), its ``message`` and ``retry_after`` in seconds when it sent one."""

    def __init__(self, status: int, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after

    @property
    def retryable(self) -> bool:
        return self.status >= 500 or self.status in RETRYABLE_STATUSES

    def __str__(self) -> str:
        return f"HTTP {self.status}: {self.message}"


class StreamBroken(BackendError):
    """The stream failed after the caller had seen at least one event; never retried."""


class RequestNotMappable(BackendError):
    """The request cannot be expressed in this provider's API (e.g. tool call arguments that
    are not a JSON object, for Anthropic); no backend of the provider would take it."""


def retry_after(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds to wait from ``Retry-After`` (seconds or an HTTP date) or OpenAI's
    ``retry-after-ms``; ``None`` when absent or unreadable."""
    millis = headers.get("retry-after-ms")
    if millis is not None:
        try:
            return max(float(millis) / 1000.0, 0.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # "-0000": a date in UTC whose source zone is unknown
        when = when.replace(tzinfo=datetime.UTC)
    return max(when.timestamp() - (time.time() if now is None else now), 0.0)
