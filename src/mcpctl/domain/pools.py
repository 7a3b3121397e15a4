"""Pools of Llms: who belongs to which pool, what a name addresses, in which order members are
tried, and when a failing member cools down. Pure rules: no I/O, the clock and the random
source are passed in (the dispatcher in ``mcpd/llm/pools.py`` does the calling).

Membership. An Llm's effective pool key is ``poolName`` or its own name; the Llms sharing a
key form a pool. A solo Llm (no ``poolName``) is a pool of one under its own name, and it
joins the pool of any Llm whose ``poolName`` is its name: that is how an operator promotes an
existing Llm to seed a pool. ``key_clash`` refuses the one layout that would make a word
ambiguous (a ``poolName`` equal to the name of an Llm that sits in another pool).

Addressing. A word names an Llm first (the pool is that Llm's, the Llm is *pinned*: tried
first while it is viable), else a pool key (no pin, every member on an equal footing).

Cooldown (``CooldownPolicy``, defaults as LiteLLM's router: 3 allowed failures a minute, a
short cooldown). A retryable failure is counted per member in a sliding window; the
``allowed_fails``-th failure in ``window`` seconds cools the member down for ``cooldown``
seconds. A 429 cools it down at once, for its Retry-After when longer (at most
``max_cooldown``). A cooling member is skipped until its time is up.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

INACTIVE = "inactive"
RECENT_FAILURES = 5  # failures kept per member for `describe llm`


@dataclass(frozen=True, slots=True)
class PoolMember:
    """One stored Llm as pool rules see it."""

    name: str
    pool_name: str | None = None
    status: str = "active"

    @property
    def key(self) -> str:
        return pool_key(self.name, self.pool_name)


def pool_key(name: str, pool_name: str | None) -> str:
    """The effective pool key: ``poolName ?? name``."""
    return pool_name or name


def pools(members: Iterable[PoolMember]) -> dict[str, list[PoolMember]]:
    """Every pool by key, members by name."""
    out: dict[str, list[PoolMember]] = {}
    for member in sorted(members, key=lambda m: m.name):
        out.setdefault(member.key, []).append(member)
    return out


@dataclass(frozen=True, slots=True)
class Target:
    """What a word addresses: a pool, its members (by name) and the pinned Llm, if any."""

    key: str
    members: tuple[PoolMember, ...]
    pinned: str | None = None


def resolve(word: str, members: Sequence[PoolMember]) -> Target | None:
    """The pool ``word`` addresses (an Llm name first, then a pool key), or None."""
    named = next((m for m in members if m.name == word), None)
    key = named.key if named is not None else word
    pool = tuple(sorted((m for m in members if m.key == key), key=lambda m: m.name))
    if not pool:
        return None
    return Target(key, pool, named.name if named is not None else None)


def key_clash(member: PoolMember, others: Iterable[PoolMember]) -> str | None:
    """Why ``member`` (new or changed) would make a pool key ambiguous, or None.

    A ``poolName`` that is the name of another Llm must be that Llm's pool too, and an Llm
    whose name others use as their ``poolName`` must be in that pool.
    """
    rest = [m for m in others if m.name != member.name]
    if member.pool_name and member.pool_name != member.name:
        seed = next((m for m in rest if m.name == member.pool_name), None)
        if seed is not None and seed.key != member.pool_name:
            return (
                f"{member.pool_name!r} is the name of llm/{seed.name}, which is in pool "
                f"{seed.key!r}: name a pool that is not another Llm's name, or put "
                f"llm/{seed.name} in pool {member.pool_name!r}"
            )
    joiners = sorted(m.name for m in rest if m.pool_name == member.name)
    if joiners and member.key != member.name:
        return (
            f"llm/{joiners[0]} uses {member.name!r} as its pool, so this Llm must be in that "
            f"pool: leave poolName out or set it to {member.name!r}"
        )
    return None


def candidates(
    target: Target, cooling: Iterable[str], rng: random.Random
) -> tuple[list[PoolMember], list[PoolMember]]:
    """``(viable, cooling)``: the viable members in the order to try them (shuffled, the
    pinned one first), and the active members skipped because they are cooling down."""
    skipped = set(cooling)
    active = [m for m in target.members if m.status != INACTIVE]
    viable = [m for m in active if m.name not in skipped]
    rng.shuffle(viable)
    for i, member in enumerate(viable):
        if member.name == target.pinned:
            viable.insert(0, viable.pop(i))
            break
    return viable, [m for m in active if m.name in skipped]


@dataclass(frozen=True, slots=True)
class CooldownPolicy:
    """When a failing member is taken out of rotation, and for how long (seconds)."""

    allowed_fails: int = 3
    window: float = 60.0
    cooldown: float = 5.0
    max_cooldown: float = 300.0


@dataclass(frozen=True, slots=True)
class Failure:
    at: float  # wall-clock seconds
    error: str


class MemberHealth:
    """One member's recent failures, cooldown and requests in flight (kept by the caller)."""

    __slots__ = ("cooling_until", "failures", "in_flight", "recent")

    def __init__(self) -> None:
        self.failures: deque[float] = deque()
        self.recent: deque[Failure] = deque(maxlen=RECENT_FAILURES)
        self.cooling_until = 0.0
        self.in_flight = 0

    def is_cooling(self, now: float) -> bool:
        return now < self.cooling_until

    def failed(
        self,
        now: float,
        error: str,
        policy: CooldownPolicy,
        *,
        rate_limited: bool = False,
        retry_after: float | None = None,
    ) -> bool:
        """Count a failure at ``now``; True when it starts a cooldown."""
        self.recent.append(Failure(now, error))
        if rate_limited:
            wait = max(policy.cooldown, min(retry_after or 0.0, policy.max_cooldown))
            return self._cool(now, wait)
        self.failures.append(now)
        while self.failures and self.failures[0] <= now - policy.window:
            self.failures.popleft()
        if len(self.failures) >= policy.allowed_fails:
            return self._cool(now, policy.cooldown)
        return False

    def _cool(self, now: float, seconds: float) -> bool:
        self.cooling_until = max(self.cooling_until, now + seconds)
        self.failures.clear()
        return True
