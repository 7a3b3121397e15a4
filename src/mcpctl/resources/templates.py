"""Template: a Server spec plus the parameters a user fills in when creating from it."""

from __future__ import annotations

import re

from pydantic import Field, field_validator, model_validator

from mcpctl.resources.envelope import Strict
from mcpctl.resources.servers import ENV_NAME, ServerFields, secret_references

# Kubernetes-style references in args, expanded from the server's env when it starts.
_ARG_REFERENCE = re.compile(r"\$\(([^)]*)\)")


class TemplateParameter(Strict):
    """A value the user supplies as an env entry of the same name."""

    name: str
    description: str = ""
    required: bool = False
    secret: bool = Field(
        default=False, description="Must come from a Secret (valueFrom.secretRef)."
    )
    default: str | None = None

    @field_validator("name")
    @classmethod
    def _env_name(cls, v: str) -> str:
        if not ENV_NAME.fullmatch(v):
            raise ValueError("must be an environment variable name: letters, digits and '_'")
        return v


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

    @model_validator(mode="after")
    def _args_name_known_values(self) -> TemplateSpec:
        known = {p.name for p in self.parameters} | {e.name for e in self.env}
        for i, arg in enumerate(self.args):
            for ref in _ARG_REFERENCE.findall(arg):
                if ref not in known:
                    raise ValueError(
                        f"args[{i}]: $({ref}) names no parameter or env entry of this template"
                    )
        return self


spec_model = TemplateSpec
references = secret_references
