"""RBAC evaluation: the grants a caller holds and whether they permit a request.

Grants only, no deny: a request is allowed when one grant covers it. Resource grants name a
role, a resource (a kind's plural, a non-kind resource such as ``tokens``, or ``*``) and
optionally one object name; action grants name an operation (``backup``, ``reveal-secrets``...).
This module is pure: mcpd compiles grants from stored RbacDefinitions and Groups (see
``grants_of``) and puts them on the ``Caller``; ``permits`` is then a set lookup.
``user_permissions`` and ``group_permissions`` give the same grants with where each comes from,
for ``describe user|group``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

ROLES: tuple[str, ...] = ("view", "create", "edit", "delete", "run")
ACTIONS: tuple[str, ...] = ("backup", "restore", "logs", "impersonate", "audit", "reveal-secrets")
ANY = "*"
# Requests ("run", X) for these X are operations, checked against action grants.
OPERATIONS = frozenset({"backup", "restore", "logs", "impersonate", "audit"})
REVEAL_ACTION = "reveal-secrets"


@dataclass(frozen=True, order=True)
class Grant:
    """One binding of one RbacDefinition: a resource grant, or an action grant (``action``)."""

    role: str
    resource: str | None = None
    name: str | None = None
    action: str | None = None


FULL_ACCESS: frozenset[Grant] = frozenset(
    [Grant(role, ANY) for role in ROLES] + [Grant("run", action=a) for a in ACTIONS]
)
"""Every role on every resource and every action: what the bootstrap admin holds."""


def permits(grants: frozenset[Grant], verb: str, resource: str, name: str | None) -> bool:
    """Whether ``grants`` allow ``verb`` on ``resource`` (object ``name``, or kind-wide)."""
    if verb == "reveal":
        return Grant("run", action=REVEAL_ACTION) in grants
    if verb == "run" and resource in OPERATIONS:
        return Grant("run", action=resource) in grants
    for target in (resource, ANY):
        if Grant(verb, target) in grants:
            return True
        if name is not None and Grant(verb, target, name) in grants:
            return True
    return False


def viewable_names(grants: frozenset[Grant], resource: str) -> frozenset[str] | None:
    """What a list of ``resource`` may show: None for everything, else just these names."""
    if permits(grants, "view", resource, None):
        return None
    return frozenset(
        g.name
        for g in grants
        if g.role == "view" and g.resource in (resource, ANY) and g.name is not None
    )


def has_full_access(grants: frozenset[Grant]) -> bool:
    return grants >= FULL_ACCESS


def grant_of(binding: Mapping[str, Any]) -> Grant:
    """A stored binding (``{role, resource, name?}`` or ``{role, action}``) as a Grant."""
    if binding.get("action"):
        return Grant(str(binding["role"]), action=str(binding["action"]))
    name = binding.get("name")
    return Grant(
        str(binding["role"]), str(binding["resource"]), None if name is None else str(name)
    )


def subjects_of(user: str, groups: Mapping[str, Iterable[str]]) -> frozenset[str]:
    """The subjects a user answers to: ``user:NAME`` and ``group:G`` for each group with them."""
    member_of = [f"group:{g}" for g, members in groups.items() if user in members]
    return frozenset([f"user:{user}", *member_of])


def grants_of(
    subjects: frozenset[str], definitions: Iterable[Mapping[str, Any]]
) -> frozenset[Grant]:
    """The union of the bindings of every definition (stored spec) naming one of ``subjects``."""
    out: set[Grant] = set()
    for spec in definitions:
        if subjects.intersection(spec.get("subjects", [])):
            out.update(grant_of(b) for b in spec.get("bindings", []))
    return frozenset(out)


DIRECT = "direct"


@dataclass(frozen=True)
class Permission:
    """A grant and where it comes from: ``via`` is ``direct`` (the definition names the subject
    itself) or ``group G``; ``definition`` is the RbacDefinition's name."""

    grant: Grant
    via: str
    definition: str


def _permissions(
    subjects: Iterable[tuple[str, str]], definitions: Mapping[str, Mapping[str, Any]]
) -> list[Permission]:
    """For each (subject, via) in order, then each definition by name, each binding as written."""
    out: dict[Permission, None] = {}  # ordered and without repeats
    for subject, via in subjects:
        for name in sorted(definitions):
            spec = definitions[name]
            if subject in spec.get("subjects", []):
                for binding in spec.get("bindings", []):
                    out[Permission(grant_of(binding), via, name)] = None
    return list(out)


def user_permissions(
    user: str,
    groups: Mapping[str, Iterable[str]],
    definitions: Mapping[str, Mapping[str, Any]],
) -> list[Permission]:
    """Every grant ``user`` holds with its origin: direct ones first, then those of each group
    they are a member of (by group name). ``definitions`` maps names to stored specs."""
    member_of = sorted(g for g, members in groups.items() if user in members)
    subjects = [(f"user:{user}", DIRECT), *((f"group:{g}", f"group {g}") for g in member_of)]
    return _permissions(subjects, definitions)


def group_permissions(group: str, definitions: Mapping[str, Mapping[str, Any]]) -> list[Permission]:
    """The grants of the definitions naming ``group:GROUP``, all ``direct``."""
    return _permissions([(f"group:{group}", DIRECT)], definitions)
