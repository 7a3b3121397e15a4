"""Prompt: text attached to a project (gating in mcplocal) or to an agent (its system block).

A prompt has at most one owner: ``project`` or ``agent``; deleting the owner deletes the prompt
(cascade). A prompt with neither is a shared one that personalities of any agent may name.
"""

from __future__ import annotations

from pydantic import Field, model_validator

from mcpctl.resources.envelope import Strict
from mcpctl.resources.references import Reference


class PromptSpec(Strict):
    project: str | None = Field(default=None, description="Project this prompt belongs to.")
    agent: str | None = Field(default=None, description="Agent this prompt belongs to.")
    content: str
    description: str = ""
    priority: int = Field(default=5, ge=1, le=10, description="1 (lowest) to 10 (highest).")
    tags: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _one_owner(self) -> PromptSpec:
        if self.project and self.agent:
            raise ValueError("set project or agent, not both")
        return self


spec_model = PromptSpec


def references(spec: PromptSpec) -> list[Reference]:
    # Prompts belong to their project or agent: deleting the owner deletes them.
    if spec.project:
        return [Reference("Project", spec.project, "spec.project", on_delete="cascade")]
    if spec.agent:
        return [Reference("Agent", spec.agent, "spec.agent", on_delete="cascade")]
    return []
