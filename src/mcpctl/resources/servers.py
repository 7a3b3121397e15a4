"""Server: the definition of an MCP server; instances are its running copies."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from mcpctl.resources.envelope import Strict, no_repeats
from mcpctl.resources.references import Reference

Transport = Literal["stdio", "http"]
Runtime = Literal["process", "docker", "external"]
ClientFeature = Literal["sampling", "elicitation", "roots"]
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
HEADER_NAME = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$")


class SecretKeyRef(Strict):
    name: str = Field(description="Name of a Secret.")
    key: str = Field(description="Key inside the Secret's data.")


class EnvSource(Strict):
    secretRef: SecretKeyRef


class EnvVar(Strict):
    """An environment variable: a literal ``value`` or a ``valueFrom.secretRef``."""

    name: str
    value: str | None = None
    valueFrom: EnvSource | None = None

    @field_validator("name")
    @classmethod
    def _env_name(cls, v: str) -> str:
        if not ENV_NAME.fullmatch(v):
            raise ValueError(
                "must be a shell variable name: letters, digits, '_', not starting with a digit"
            )
        return v

    @model_validator(mode="after")
    def _one_source(self) -> EnvVar:
        if (self.value is None) == (self.valueFrom is None):
            raise ValueError("set exactly one of value or valueFrom")
        return self


class ServerFields(Strict):
    """The fields that a Server and a Template share (None means: not set here)."""

    description: str = ""
    transport: Transport | None = Field(default=None, description="stdio (default) or http.")
    runtime: Runtime | None = Field(
        default=None, description="process (default), docker or external."
    )
    command: str | None = None
    args: list[str] = Field(default_factory=list)
    image: str | None = None
    url: str | None = None
    env: list[EnvVar] = Field(default_factory=list)
    clientFeatures: list[ClientFeature] = Field(
        default_factory=list,
        description=(
            "Client features the server's tools need (sampling, elicitation, roots): mcpd "
            "declares them to a stdio server and passes its requests to the client whose "
            "call is in flight (docs/relay.md)."
        ),
    )

    @field_validator("clientFeatures")
    @classmethod
    def _unique_features(cls, v: list[ClientFeature]) -> list[ClientFeature]:
        return no_repeats(v, "a feature")

    @field_validator("env")
    @classmethod
    def _unique_env(cls, v: list[EnvVar]) -> list[EnvVar]:
        seen: set[str] = set()
        for entry in v:
            if entry.name in seen:
                raise ValueError(f"duplicate env name {entry.name!r}")
            seen.add(entry.name)
        return v


class HttpHeader(Strict):
    """A header sent to an external server: a literal ``value`` or a ``valueFrom.secretRef``."""

    name: str
    value: str | None = None
    valueFrom: EnvSource | None = None

    @field_validator("name")
    @classmethod
    def _header_name(cls, v: str) -> str:
        if not HEADER_NAME.fullmatch(v):
            raise ValueError("must be an HTTP header name (letters, digits, '-', ...)")
        return v

    @model_validator(mode="after")
    def _one_source(self) -> HttpHeader:
        if (self.value is None) == (self.valueFrom is None):
            raise ValueError("set exactly one of value or valueFrom")
        return self


class ServerSpec(ServerFields):
    fromTemplate: str | None = Field(
        default=None, description="A Template whose fields fill what this spec leaves unset."
    )
    keepAlive: bool = Field(
        default=False,
        description="Start an instance when mcpd starts and never stop it for being idle.",
    )
    headers: list[HttpHeader] = Field(
        default_factory=list,
        description="HTTP headers for runtime external, e.g. Authorization from a Secret.",
    )


def runnable_problem(spec: ServerFields) -> str | None:
    """Say what an effective (template-merged) spec lacks to be run, or None if complete."""
    runtime = spec.runtime or "process"
    transport = spec.transport or "stdio"
    if runtime == "process" and not spec.command:
        return "spec.command: required for runtime process"
    if runtime == "docker" and not spec.image:
        return "spec.image: required for runtime docker"
    if runtime == "external":
        if not spec.url:
            return "spec.url: required for runtime external"
        if transport != "http":
            return "spec.transport: runtime external needs transport http"
    if transport == "http" and runtime == "process" and not spec.url:
        return "spec.url: required for an http server run as a process"
    return None


spec_model = ServerSpec


def references(spec: ServerSpec) -> list[Reference]:
    refs = []
    if spec.fromTemplate:
        refs.append(Reference("Template", spec.fromTemplate, "spec.fromTemplate"))
    refs.extend(secret_references(spec))
    refs.extend(
        Reference(
            "Secret",
            header.valueFrom.secretRef.name,
            f"spec.headers[{i}].valueFrom.secretRef",
            header.valueFrom.secretRef.key,
        )
        for i, header in enumerate(spec.headers)
        if header.valueFrom is not None
    )
    return refs


def secret_references(spec: ServerFields) -> list[Reference]:
    return [
        Reference(
            "Secret",
            env.valueFrom.secretRef.name,
            f"spec.env[{i}].valueFrom.secretRef",
            env.valueFrom.secretRef.key,
        )
        for i, env in enumerate(spec.env)
        if env.valueFrom is not None
    ]
