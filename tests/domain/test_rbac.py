"""Grants and what they permit: roles on resources, name scoping, actions, groups."""

from __future__ import annotations

from mcpctl.domain.rbac import (
    FULL_ACCESS,
    Grant,
    Permission,
    grants_of,
    group_permissions,
    has_full_access,
    permits,
    subjects_of,
    user_permissions,
    viewable_names,
)

VIEW_SERVERS = Grant("view", "servers")
EDIT_ONE = Grant("edit", "servers", "web")


def test_no_grants_permit_nothing() -> None:
    assert not permits(frozenset(), "view", "servers", None)
    assert not permits(frozenset(), "run", "backup", None)


def test_a_kind_wide_grant_covers_every_object_and_the_list() -> None:
    grants = frozenset({VIEW_SERVERS})
    assert permits(grants, "view", "servers", None)
    assert permits(grants, "view", "servers", "web")
    assert not permits(grants, "edit", "servers", "web")
    assert not permits(grants, "view", "projects", None)


def test_a_name_scoped_grant_covers_that_object_only() -> None:
    grants = frozenset({EDIT_ONE})
    assert permits(grants, "edit", "servers", "web")
    assert not permits(grants, "edit", "servers", "db")
    assert not permits(grants, "edit", "servers", None)


def test_star_covers_every_resource() -> None:
    grants = frozenset({Grant("delete", "*")})
    assert permits(grants, "delete", "prompts", "x")
    assert permits(grants, "delete", "tokens", None)


def test_operations_and_reveal_need_their_action() -> None:
    every_role = frozenset(Grant(r, "*") for r in ("view", "create", "edit", "delete", "run"))
    assert not permits(every_role, "run", "backup", None)
    assert not permits(every_role, "reveal", "secrets", "s")
    with_actions = every_role | {
        Grant("run", action="backup"),
        Grant("run", action="reveal-secrets"),
    }
    assert permits(with_actions, "run", "backup", None)
    assert not permits(with_actions, "run", "restore", None)
    assert permits(with_actions, "reveal", "secrets", "s")


def test_run_on_a_kind_is_a_resource_grant() -> None:
    assert permits(frozenset({Grant("run", "servers", "web")}), "run", "servers", "web")


def test_viewable_names_is_none_for_kind_wide_and_the_names_otherwise() -> None:
    assert viewable_names(frozenset({VIEW_SERVERS}), "servers") is None
    scoped = frozenset({Grant("view", "servers", "a"), Grant("view", "*", "b"), EDIT_ONE})
    assert viewable_names(scoped, "servers") == frozenset({"a", "b"})
    assert viewable_names(frozenset(), "servers") == frozenset()


def test_full_access_is_every_role_on_star_and_every_action() -> None:
    assert has_full_access(FULL_ACCESS)
    assert not has_full_access(FULL_ACCESS - {Grant("run", action="logs")})


def test_grants_come_from_definitions_naming_the_user_or_their_groups() -> None:
    definitions = [
        {"subjects": ["user:alice"], "bindings": [{"role": "view", "resource": "servers"}]},
        {"subjects": ["group:ops"], "bindings": [{"role": "run", "action": "backup"}]},
        {"subjects": ["user:bob"], "bindings": [{"role": "edit", "resource": "*"}]},
    ]
    subjects = subjects_of("alice", {"ops": ["alice"], "dev": ["bob"]})
    assert subjects == {"user:alice", "group:ops"}
    assert grants_of(subjects, definitions) == {VIEW_SERVERS, Grant("run", action="backup")}


DEFINITIONS = {
    "readers": {
        "subjects": ["group:ops", "group:dev"],
        "bindings": [{"role": "view", "resource": "*"}],
    },
    "alice-servers": {
        "subjects": ["user:alice"],
        "bindings": [
            {"role": "edit", "resource": "servers", "name": "web"},
            {"role": "run", "action": "logs"},
        ],
    },
    "ops-backup": {
        "subjects": ["group:ops", "user:alice"],
        "bindings": [{"role": "run", "action": "backup"}],
    },
    "bob-only": {"subjects": ["user:bob"], "bindings": [{"role": "delete", "resource": "*"}]},
}
GROUPS = {"ops": ["alice", "bob"], "dev": ["alice"], "empty": []}


def test_a_users_permissions_name_their_origin_direct_first_then_each_group() -> None:
    found = user_permissions("alice", GROUPS, DEFINITIONS)

    assert found == [
        Permission(Grant("edit", "servers", "web"), "direct", "alice-servers"),
        Permission(Grant("run", action="logs"), "direct", "alice-servers"),
        Permission(Grant("run", action="backup"), "direct", "ops-backup"),
        Permission(Grant("view", "*"), "group dev", "readers"),
        Permission(Grant("run", action="backup"), "group ops", "ops-backup"),
        Permission(Grant("view", "*"), "group ops", "readers"),
    ]


def test_a_users_permissions_hold_exactly_the_grants_they_are_authorized_with() -> None:
    for user in ("alice", "bob", "carol"):
        held = {p.grant for p in user_permissions(user, GROUPS, DEFINITIONS)}
        assert held == grants_of(subjects_of(user, GROUPS), DEFINITIONS.values())


def test_a_user_in_no_definition_has_no_permissions() -> None:
    assert user_permissions("carol", GROUPS, DEFINITIONS) == []


def test_a_groups_permissions_are_those_of_the_definitions_naming_it() -> None:
    assert group_permissions("ops", DEFINITIONS) == [
        Permission(Grant("run", action="backup"), "direct", "ops-backup"),
        Permission(Grant("view", "*"), "direct", "readers"),
    ]
    assert group_permissions("empty", DEFINITIONS) == []


def test_a_binding_written_twice_in_one_definition_is_listed_once() -> None:
    twice = {"d": {"subjects": ["group:g"], "bindings": [{"role": "view", "resource": "x"}] * 2}}
    assert group_permissions("g", twice) == [Permission(Grant("view", "x"), "direct", "d")]
