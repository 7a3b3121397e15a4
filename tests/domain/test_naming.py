"""Namespaced names: always valid, deterministic, unchanged when they fit, reversible."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from mcpctl.domain.naming import (
    HASH_LENGTH,
    MAX_LENGTH,
    NameMap,
    Origin,
    exposed_name,
    is_valid_exposed_name,
)

servers = st.from_regex(r"\A[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\Z")
names = st.text(min_size=0, max_size=200)
valid_names = st.from_regex(r"\A[A-Za-z0-9_-]{1,64}\Z")


@given(servers, names)
def test_an_exposed_name_always_fits_the_client_rule(server: str, name: str) -> None:
    assert is_valid_exposed_name(exposed_name(server, name))
    assert is_valid_exposed_name(exposed_name(None, name))


@given(servers, names)
def test_the_same_origin_always_gets_the_same_name(server: str, name: str) -> None:
    assert exposed_name(server, name) == exposed_name(server, name)


@given(servers, valid_names)
def test_a_name_that_fits_is_kept_as_it_is(server: str, name: str) -> None:
    if len(server) + 2 + len(name) <= MAX_LENGTH:
        assert exposed_name(server, name) == f"{server}__{name}"
    assert exposed_name(None, name) == name


@given(servers, names, names)
def test_different_names_of_one_server_never_share_an_exposed_name(
    server: str, a: str, b: str
) -> None:
    if a != b:
        assert exposed_name(server, a) != exposed_name(server, b)


@given(st.lists(st.tuples(servers, names), max_size=30))
def test_the_map_resolves_every_exposed_name_to_its_origin(pairs: list[tuple[str, str]]) -> None:
    mapping = NameMap()
    for server, name in pairs:
        exposed = mapping.add(server, name)
        assert exposed is not None
        assert mapping.resolve(exposed) == Origin(server, name)


def test_a_long_name_is_shortened_with_a_hash_and_keeps_both_parts_readable() -> None:
    server = "a-server-with-a-rather-long-name-for-a-project-endpoint"
    exposed = exposed_name(server, "search_repositories_by_topic_and_language")
    assert len(exposed) == MAX_LENGTH
    assert exposed.startswith("a-server-with-a-rather-lon__search_rep")
    suffix = exposed.rsplit("-", 1)[1]
    assert len(suffix) == HASH_LENGTH
    assert int(suffix, 16) >= 0


def test_characters_outside_the_set_are_replaced_and_hashed() -> None:
    exposed = exposed_name("git", "log.show")
    assert exposed.startswith("git__log_show-")
    assert exposed != exposed_name("git", "log_show")
    assert exposed_name("git", "log_show") == "git__log_show"


def test_without_a_prefix_two_servers_offering_one_name_collide() -> None:
    mapping = NameMap(prefix=False)
    assert mapping.add("time", "get_current_time") == "get_current_time"
    assert mapping.add("clock", "get_current_time") is None
    assert mapping.collisions == [
        (
            "get_current_time",
            Origin("time", "get_current_time"),
            Origin("clock", "get_current_time"),
        )
    ]
    assert mapping.resolve("get_current_time") == Origin("time", "get_current_time")


def test_adding_the_same_origin_twice_is_no_collision() -> None:
    mapping = NameMap()
    assert mapping.add("time", "now") == mapping.add("time", "now") == "time__now"
    assert not mapping.collisions
    assert len(mapping) == 1
