"""Agent: an LLM persona with its own system prompt, prompts, personalities and chat threads.

References (docs/agents.md): ``spec.llm`` names an Llm (restrict: an Llm in use by agents
cannot be deleted), ``spec.project`` a Project (set-null: deleting the project clears it),
``spec.defaultPersonality`` one of the agent's own Personalities by its short name (set-null;
deferrable, so one ``apply -f`` may hold the agent, its personalities and the default).
Prompts with ``spec.agent`` and Personalities cascade from their agent; chat threads too.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator

from mcpctl.domain.names import NAME_RULE, is_valid_name
from mcpctl.resources.envelope import Strict
from mcpctl.resources.llms import LlmParams
from mcpctl.resources.references import Reference


def personality_name(agent: str, personality: str) -> str:
    """The object name of an agent's personality: ``AGENT.NAME``."""
    return f"{agent}.{personality}"


def _name(v: str | None) -> str | None:
    if v is not None and not is_valid_name(v):
        raise ValueError(f"must be {NAME_RULE}")
    return v


class AgentSpec(Strict):
    llm: str = Field(description="The Llm (or the seed of a pool) the agent talks to.")
    project: str | None = Field(
        default=None, description="A Project whose tools the agent may use (cleared if deleted)."
    )
    systemPrompt: str = Field(default="", description="First part of every system block.")
    defaultParams: LlmParams = Field(
        default_factory=LlmParams,
        description="Sampling parameters for every call (over the Llm's; a call's own win).",
    )
    extras: dict[str, Any] = Field(default_factory=dict, description="Reserved; stored as is.")
    defaultPersonality: str | None = Field(
        default=None,
        description="Short name of one of this agent's personalities (cleared if deleted).",
    )

    @field_validator("llm")
    @classmethod
    def _llm(cls, v: str) -> str:
        if not is_valid_name(v):
            raise ValueError(f"must be {NAME_RULE}")
        return v

    @field_validator("project", "defaultPersonality")
    @classmethod
    def _optional_name(cls, v: str | None) -> str | None:
        return _name(v)


spec_model = AgentSpec


def references_by_name(name: str, spec: AgentSpec) -> list[Reference]:
    refs = [Reference("Llm", spec.llm, "spec.llm")]
    if spec.project:
        refs.append(Reference("Project", spec.project, "spec.project", on_delete="set-null"))
    if spec.defaultPersonality:
        refs.append(
            Reference(
                "Personality",
                personality_name(name, spec.defaultPersonality),
                "spec.defaultPersonality",
                on_delete="set-null",
                deferrable=True,
            )
        )
    return refs
