"""Project: a set of servers served as one MCP endpoint by mcplocal."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from mcpctl.resources.envelope import Strict, no_repeats
from mcpctl.resources.references import Reference


class ProjectSpec(Strict):
    description: str = ""
    servers: list[str] = Field(
        default_factory=list, description="Names of Servers; each must exist."
    )
    gated: bool = False
    proxyModel: str = Field(default="default", description="Content pipeline used by mcplocal.")
    llm: str | None = Field(
        default=None, description="Llm used by the pipeline (checked once Llms exist)."
    )
    toolPrefix: Literal["always", "never"] = Field(
        default="always",
        description=(
            "always: mcplocal names tools {server}__{name}; never: plain names (for one-server "
            "projects; a name offered by two servers is then left out and reported)."
        ),
    )

    @field_validator("servers")
    @classmethod
    def _unique(cls, v: list[str]) -> list[str]:
        return no_repeats(v, "a server")


spec_model = ProjectSpec


def references(spec: ProjectSpec) -> list[Reference]:
    return [Reference("Server", name, f"spec.servers[{i}]") for i, name in enumerate(spec.servers)]
