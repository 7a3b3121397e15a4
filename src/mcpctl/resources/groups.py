"""Group: a named set of users that RbacDefinitions can name as ``group:NAME``."""

from __future__ import annotations

from pydantic import Field, field_validator

from mcpctl.resources.envelope import Strict, no_repeats
from mcpctl.resources.references import Reference


class GroupSpec(Strict):
    description: str = ""
    members: list[str] = Field(default_factory=list, description="User names; each must exist.")

    @field_validator("members")
    @classmethod
    def _unique(cls, v: list[str]) -> list[str]:
        return no_repeats(v, "a member")


spec_model = GroupSpec


def references(spec: GroupSpec) -> list[Reference]:
    # Members are users, which live in their own table: mcpd checks them (GroupBehaviour).
    return []
