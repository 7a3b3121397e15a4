"""Login rate limiting: failed attempts per user name and per client address, in a sliding window.

In-process on purpose: it needs no table and no extra round trip per login. The cost is that
with several mcpd replicas each replica limits on its own, so a client spreading its attempts
over N replicas gets up to N times the allowance (docs/operations.md says so).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from mcpctl.errors import RateLimited

# Past this many tracked keys, keys with no failure left in the window are dropped, so names
# made up by a client cannot grow memory without bound.
_SWEEP_ABOVE = 10_000


@dataclass(frozen=True)
class LoginLimits:
    per_user: int = 5
    per_client: int = 20
    window_seconds: float = 300.0


class _Window:
    """Failure times per key within the last ``window`` seconds."""

    def __init__(self, limit: int, window: float) -> None:
        self.limit = limit
        self.window = window
        self._hits: dict[str, deque[float]] = {}

    def _live(self, key: str, now: float) -> deque[float] | None:
        hits = self._hits.get(key)
        if hits is None:
            return None
        while hits and hits[0] <= now - self.window:
            hits.popleft()
        if not hits:
            del self._hits[key]
            return None
        return hits

    def wait(self, key: str, now: float) -> float:
        """Seconds until ``key`` may try again; 0 when it may now."""
        hits = self._live(key, now)
        if hits is None or len(hits) < self.limit:
            return 0.0
        # The oldest failure that keeps the count at the limit must leave the window.
        return hits[len(hits) - self.limit] + self.window - now

    def hit(self, key: str, now: float) -> None:
        if len(self._hits) > _SWEEP_ABOVE:
            for stale in list(self._hits):
                self._live(stale, now)
        self._hits.setdefault(key, deque()).append(now)

    def clear(self, key: str) -> None:
        self._hits.pop(key, None)


class LoginLimiter:
    """At most ``per_user`` failed logins per user name and ``per_client`` per client address
    in a sliding window; past either, every login (even a right one) is refused until a slot
    frees. A success clears the user's failures, not the address's."""

    def __init__(
        self, limits: LoginLimits | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limits = limits or LoginLimits()
        self.clock = clock
        self._users = _Window(self.limits.per_user, self.limits.window_seconds)
        self._clients = _Window(self.limits.per_client, self.limits.window_seconds)

    def check(self, user: str, client: str | None) -> None:
        """Raises:
        RateLimited: with ``retry_after``, the seconds until a slot frees."""
        now = self.clock()
        wait = self._users.wait(user, now)
        if client is not None:
            wait = max(wait, self._clients.wait(client, now))
        if wait > 0:
            raise RateLimited(
                f"too many failed logins; try again in {max(1, round(wait))} s",
                retry_after=wait,
            )

    def failed(self, user: str, client: str | None) -> None:
        now = self.clock()
        self._users.hit(user, now)
        if client is not None:
            self._clients.hit(client, now)

    def succeeded(self, user: str) -> None:
        self._users.clear(user)
