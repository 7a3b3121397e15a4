"""Template: a Server spec plus the parameters a user fills in when creating from it."""

from __future__ import annotations

from pydantic import Field, field_validator

from mcpctl.resources.envelope import Strict
from mcpctl.resources.servers import ServerFields, secret_references


class TemplateParameter(Strict):
    """A value the user supplies as an env entry of the same name."""

    name: str
    description: str = ""
    required: bool = False
    secret: bool = Field(
        default=False, description="Must come from a Secret (valueFrom.secretRef)."
    )
    default: str | None = None


class TemplateSpec(ServerFields):
    parameters: list[TemplateParameter] = Field(default_factory=list)

    @field_validator("parameters")
    @classmethod
    def _unique_parameters(cls, v: list[TemplateParameter]) -> list[TemplateParameter]:
        names = [p.name for p in v]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"duplicate parameter names: {', '.join(dupes)}")
        return v


spec_model = TemplateSpec
references = secret_references
