"""RbacDefinition: subjects (users, groups) and the bindings granted to them.

A binding is either a resource binding ``{role, resource, name?}`` or an operation binding
``{role: run, action}``. ``resource`` is stored normalised: a kind's plural, one of the
non-kind resources, or ``*``.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, field_validator, model_validator

from mcpctl.domain.names import is_valid_name
from mcpctl.domain.rbac import OPERATIONS
from mcpctl.errors import InvalidInput
from mcpctl.resources.envelope import Strict, no_repeats
from mcpctl.resources.kinds import lookup
from mcpctl.resources.references import Reference
from mcpctl.resources.validation import invalid_input

Role = Literal["view", "create", "edit", "delete", "run"]
Action = Literal["backup", "restore", "logs", "impersonate", "audit", "reveal-secrets"]
NON_KIND_RESOURCES = ("tokens", "threads", "metrics", "openapi")
_SUBJECT = re.compile(r"^(user|group):(.+)$")


def normalise_resource(word: str) -> str:
    """A kind (plural, singular, short name or Kind), a non-kind resource or ``*``, as stored.

    Raises:
        InvalidInput: naming what is accepted.
    """
    if word in ("*", *NON_KIND_RESOURCES):
        return word
    try:
        return lookup(word).plural
    except InvalidInput as exc:
        raise InvalidInput(f"{exc.message}; or one of *, {', '.join(NON_KIND_RESOURCES)}") from exc


def normalise_request_resource(verb: str, word: str) -> str:
    """What a request names (``can-i``): a resource as ``normalise_resource``, or for ``run``
    an operation (``backup``, ``restore``, ``audit``, ``logs``, ``impersonate``).

    Raises:
        InvalidInput: at ``resource``.
    """
    if verb == "run" and word in OPERATIONS:
        return word
    try:
        return normalise_resource(word)
    except InvalidInput as exc:
        raise invalid_input([{"path": "resource", "message": exc.message}]) from exc


class Binding(Strict):
    role: Role
    resource: str | None = Field(
        default=None, description="A kind, tokens, threads, metrics, openapi or *."
    )
    name: str | None = Field(default=None, description="Only this object (resource bindings).")
    action: Action | None = Field(default=None, description="An operation (with role run).")

    @field_validator("resource")
    @classmethod
    def _resource(cls, v: str | None) -> str | None:
        if v is None:
            return v
        try:
            return normalise_resource(v)
        except InvalidInput as exc:
            raise ValueError(exc.message) from exc

    @model_validator(mode="after")
    def _one_kind_of_binding(self) -> Binding:
        if (self.resource is None) == (self.action is None):
            raise ValueError("give either resource (and maybe name) or action")
        if self.action is not None and (self.role != "run" or self.name is not None):
            raise ValueError("an action binding is {role: run, action: ...} with no name")
        if self.name is not None and self.resource == "*":
            raise ValueError("name needs a resource (not *)")
        return self


def _check_subject(subject: str) -> str:
    found = _SUBJECT.fullmatch(subject)
    if found is None or not is_valid_name(found.group(2)):
        raise ValueError(f"{subject!r} is not user:NAME or group:NAME")
    return subject


Subject = Annotated[str, AfterValidator(_check_subject)]


class RbacDefinitionSpec(Strict):
    description: str = ""
    subjects: list[Subject] = Field(
        default_factory=list, description="user:NAME or group:NAME; each must exist."
    )
    bindings: list[Binding] = Field(default_factory=list)

    @field_validator("subjects")
    @classmethod
    def _subjects(cls, v: list[str]) -> list[str]:
        return no_repeats(v, "a subject")


spec_model = RbacDefinitionSpec


def subject_users(spec: RbacDefinitionSpec) -> list[tuple[int, str]]:
    """(index, user name) of every ``user:`` subject, for mcpd to check against its users."""
    return [(i, s[5:]) for i, s in enumerate(spec.subjects) if s.startswith("user:")]


def references(spec: RbacDefinitionSpec) -> list[Reference]:
    return [
        Reference("Group", s[6:], f"spec.subjects[{i}]")
        for i, s in enumerate(spec.subjects)
        if s.startswith("group:")
    ]
