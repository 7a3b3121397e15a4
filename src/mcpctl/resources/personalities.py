"""Personality: a named overlay of prompts on one agent (``mcpctl chat --personality NAME``).

A personality belongs to one agent, and its name is unique per agent: the object is named
``AGENT.NAME`` (``reviewer.concise``), so two agents may each have a ``concise`` one. The part
before the dot must be ``spec.agent`` (checked by mcpd). Deleting the agent deletes its
personalities (cascade); a prompt a personality names cannot be deleted while it does
(restrict). Several personalities may name the same prompt.
"""

from __future__ import annotations

from pydantic import Field, field_validator

from mcpctl.domain.names import NAME_RULE, is_valid_name
from mcpctl.resources.envelope import Strict
from mcpctl.resources.references import Reference

SEPARATOR = "."


def split_name(name: str) -> tuple[str, str]:
    """``reviewer.concise`` → ``("reviewer", "concise")``; no dot → ``("", name)``."""
    agent, dot, short = name.partition(SEPARATOR)
    return (agent, short) if dot else ("", name)


class PromptBinding(Strict):
    name: str = Field(description="A Prompt.")
    priority: int | None = Field(
        default=None, ge=1, le=10, description="Overrides the prompt's own priority here."
    )

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not is_valid_name(v):
            raise ValueError(f"must be {NAME_RULE}")
        return v


class PersonalitySpec(Strict):
    agent: str = Field(description="The agent this personality belongs to (AGENT of AGENT.NAME).")
    description: str = ""
    priority: int = Field(
        default=5, ge=1, le=10, description="Orders an agent's personalities (higher first)."
    )
    prompts: list[PromptBinding] = Field(
        default_factory=list, description="Prompts added to the system block, by priority."
    )

    @field_validator("agent")
    @classmethod
    def _agent(cls, v: str) -> str:
        if not is_valid_name(v):
            raise ValueError(f"must be {NAME_RULE}")
        return v

    @field_validator("prompts")
    @classmethod
    def _unique(cls, v: list[PromptBinding]) -> list[PromptBinding]:
        names = [b.name for b in v]
        if len(set(names)) != len(names):
            raise ValueError("lists a prompt more than once")
        return v


spec_model = PersonalitySpec


def references(spec: PersonalitySpec) -> list[Reference]:
    refs = [Reference("Agent", spec.agent, "spec.agent", on_delete="cascade")]
    refs += [
        Reference("Prompt", binding.name, f"spec.prompts[{i}]")
        for i, binding in enumerate(spec.prompts)
    ]
    return refs
