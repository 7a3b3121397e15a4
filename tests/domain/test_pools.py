"""Pool rules: membership by effective key, what a word addresses, the order members are tried
in, and the cooldown of a failing member."""

from __future__ import annotations

import random

from mcpctl.domain.pools import (
    CooldownPolicy,
    MemberHealth,
    PoolMember,
    Target,
    candidates,
    key_clash,
    pool_key,
    pools,
    resolve,
)

A = PoolMember("a", "fast")
B = PoolMember("b", "fast")
SOLO = PoolMember("solo")


def test_effective_key_is_the_pool_name_else_the_name() -> None:
    assert pool_key("a", "fast") == "fast"
    assert pool_key("solo", None) == "solo"
    assert A.key == "fast"
    assert SOLO.key == "solo"


def test_rows_sharing_a_key_form_a_pool_and_a_solo_row_is_a_pool_of_one() -> None:
    assert pools([B, SOLO, A]) == {"fast": [A, B], "solo": [SOLO]}


def test_a_solo_row_named_like_another_rows_pool_name_joins_that_pool() -> None:
    seed = PoolMember("gpu")
    joiner = PoolMember("gpu-2", "gpu")

    assert pools([seed, joiner]) == {"gpu": [seed, joiner]}
    target = resolve("gpu", [seed, joiner])
    assert target == Target("gpu", (seed, joiner), pinned="gpu")


def test_a_name_addresses_its_pool_with_itself_pinned() -> None:
    assert resolve("a", [A, B, SOLO]) == Target("fast", (A, B), pinned="a")


def test_a_pool_key_addresses_the_pool_with_nothing_pinned() -> None:
    assert resolve("fast", [A, B, SOLO]) == Target("fast", (A, B), pinned=None)


def test_a_solo_row_is_addressable_by_its_own_name() -> None:
    assert resolve("solo", [A, B, SOLO]) == Target("solo", (SOLO,), pinned="solo")


def test_an_unknown_word_addresses_nothing() -> None:
    assert resolve("nope", [A, B, SOLO]) is None


def test_a_pool_name_that_is_another_pools_member_name_is_a_clash() -> None:
    member_elsewhere = PoolMember("x", "z")

    problem = key_clash(PoolMember("y", "x"), [member_elsewhere])

    assert problem is not None
    assert "llm/x" in problem
    assert "'z'" in problem


def test_moving_a_seed_out_of_the_pool_named_after_it_is_a_clash() -> None:
    problem = key_clash(PoolMember("gpu", "other"), [PoolMember("gpu-2", "gpu")])

    assert problem is not None
    assert "llm/gpu-2" in problem


def test_joining_a_seed_or_a_plain_pool_is_no_clash() -> None:
    assert key_clash(PoolMember("gpu-2", "gpu"), [PoolMember("gpu")]) is None
    assert key_clash(PoolMember("c", "fast"), [A, B]) is None
    assert key_clash(PoolMember("gpu", "gpu"), [PoolMember("gpu-2", "gpu")]) is None


def test_candidates_skip_inactive_and_cooling_members_and_put_the_pinned_first() -> None:
    members = tuple(PoolMember(n, "p") for n in "abcdef")
    off = PoolMember("g", "p", status="inactive")
    napping = PoolMember("h", "p", status="hibernating")
    target = Target("p", (*members, off, napping), pinned="d")

    for seed in range(20):
        viable, cooling = candidates(target, {"b"}, random.Random(seed))
        assert viable[0].name == "d"
        assert sorted(m.name for m in viable) == ["a", "c", "d", "e", "f", "h"]
        assert [m.name for m in cooling] == ["b"]


def test_candidates_are_shuffled_and_the_same_seed_gives_the_same_order() -> None:
    target = Target("p", tuple(PoolMember(n, "p") for n in "abcdef"))

    orders = {tuple(m.name for m in candidates(target, (), random.Random(s))[0]) for s in range(20)}
    first = candidates(target, (), random.Random(3))[0]

    assert len(orders) > 1
    assert candidates(target, (), random.Random(3))[0] == first


def test_a_cooling_pinned_member_is_not_tried_and_its_siblings_are() -> None:
    target = Target("p", (PoolMember("a", "p"), PoolMember("b", "p")), pinned="a")

    viable, cooling = candidates(target, {"a"}, random.Random(1))

    assert [m.name for m in viable] == ["b"]
    assert [m.name for m in cooling] == ["a"]


def test_a_member_cools_down_at_the_nth_failure_in_the_window() -> None:
    policy = CooldownPolicy(allowed_fails=3, window=60, cooldown=5)
    health = MemberHealth()

    assert not health.failed(100.0, "HTTP 503", policy)
    assert not health.failed(110.0, "HTTP 503", policy)
    assert health.failed(120.0, "HTTP 503", policy)
    assert health.is_cooling(124.9)
    assert not health.is_cooling(125.0)


def test_failures_older_than_the_window_do_not_count() -> None:
    policy = CooldownPolicy(allowed_fails=2, window=10, cooldown=5)
    health = MemberHealth()

    health.failed(0.0, "x", policy)

    assert not health.failed(10.0, "x", policy)
    assert not health.is_cooling(10.0)


def test_a_429_cools_down_at_once_for_its_retry_after_within_the_cap() -> None:
    policy = CooldownPolicy(cooldown=5, max_cooldown=60)
    health = MemberHealth()

    assert health.failed(0.0, "HTTP 429", policy, rate_limited=True, retry_after=30)
    assert health.is_cooling(29.9)
    assert not health.is_cooling(30.0)
    assert MemberHealth().failed(0.0, "x", policy, rate_limited=True, retry_after=1)
    capped = MemberHealth()
    capped.failed(0.0, "x", policy, rate_limited=True, retry_after=3600)
    assert capped.cooling_until == 60.0


def test_recent_failures_keep_the_last_few_with_their_errors() -> None:
    policy = CooldownPolicy(allowed_fails=100)
    health = MemberHealth()
    for i in range(8):
        health.failed(float(i), f"error {i}", policy)

    assert [f.error for f in health.recent] == [f"error {i}" for i in range(3, 8)]
