"""Llm: one LLM backend mcpd may send chat requests to, and the pool it belongs to.

An Llm's effective pool key is ``poolName`` or, without one, its own name; the Llms sharing a
key form a load-balanced pool with failover (``domain/pools.py``, docs/llms.md).

``status`` in the spec is what the operator sets (``inactive`` takes a member out of its pool
without deleting it). The lifecycle fields (``providerSessionId``, ``lastHeartbeatAt``,
``inactiveSince``) live in the object's status: mcpd sets them (for virtual Llms, which a
user's machine publishes) and keeps them across applies; they are never read from input.

References: ``spec.apiKey`` names a Secret key (checked on write; the Secret cannot be deleted
while an Llm uses it). Agents name an Llm in ``spec.llm`` (restrict): the generic delete refuses
with 409 naming every agent that uses the Llm (``resources/agents.py``).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator

from mcpctl.domain.names import NAME_RULE, is_valid_name
from mcpctl.resources.envelope import Strict
from mcpctl.resources.references import Reference
from mcpctl.resources.servers import SecretKeyRef

Provider = Literal["openai", "anthropic"]
LlmStatus = Literal["active", "inactive", "hibernating"]
# Set by mcpd in the object's status, never by the user.
LIFECYCLE_FIELDS = ("providerSessionId", "lastHeartbeatAt", "inactiveSince")
MAX_TIER_LENGTH = 63


class LlmParams(Strict):
    """Sampling defaults sent with every request to this Llm (a request's own values win)."""

    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, gt=0, le=1)
    max_tokens: int | None = Field(default=None, ge=1)
    stop: list[str] | None = Field(default=None, max_length=4)
    seed: int | None = None
    presence_penalty: float | None = Field(default=None, ge=-2, le=2)
    frequency_penalty: float | None = Field(default=None, ge=-2, le=2)
    top_k: int | None = Field(default=None, ge=1)

    def as_mapping(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True)


class LlmSpec(Strict):
    kind: str = Field(
        default="public",
        description="public: a backend mcpd calls itself. (virtual: published by mcplocal; "
        "not accepted yet.)",
    )
    provider: Provider = Field(
        description="openai: any OpenAI-compatible server (OpenAI, vLLM, llama.cpp, Ollama); "
        "anthropic: the Anthropic messages API.",
    )
    url: str = Field(
        description="openai: the API base (https://api.openai.com/v1); anthropic: the host.",
    )
    model: str = Field(description="The backend's own model name.")
    apiKey: SecretKeyRef | None = Field(
        default=None, description="The API key, from a Secret; none for servers that need none."
    )
    tier: str | None = Field(
        default=None, description="Free text the operator groups Llms by (fast, cheap, gpu...)."
    )
    poolName: str | None = Field(
        default=None, description="The pool to join; default: a pool of its own name."
    )
    defaultParams: LlmParams = Field(default_factory=LlmParams)
    status: LlmStatus = Field(
        default="active",
        description="inactive takes the Llm out of its pool; hibernating ones still serve.",
    )

    @field_validator("kind")
    @classmethod
    def _public_only(cls, v: str) -> str:
        if v == "virtual":
            raise ValueError(
                "virtual Llms are not supported yet (mcplocal publishes them in a later "
                "release); use kind public"
            )
        if v != "public":
            raise ValueError(f"unknown Llm kind {v!r}: use public")
        return v

    @field_validator("url")
    @classmethod
    def _http_url(cls, v: str) -> str:
        if not v.startswith(("http://", "https://")) or len(v) <= len("https://"):
            raise ValueError("required: an http:// or https:// URL")
        return v.rstrip("/")

    @field_validator("model")
    @classmethod
    def _model(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("required: the backend's model name")
        return v

    @field_validator("tier")
    @classmethod
    def _tier(cls, v: str | None) -> str | None:
        if v is not None and not 1 <= len(v) <= MAX_TIER_LENGTH:
            raise ValueError(f"must be 1 to {MAX_TIER_LENGTH} characters")
        return v

    @field_validator("poolName")
    @classmethod
    def _pool_name(cls, v: str | None) -> str | None:
        if v is not None and not is_valid_name(v):
            raise ValueError(f"must be {NAME_RULE}")
        return v


spec_model = LlmSpec


def references(spec: LlmSpec) -> list[Reference]:
    if spec.apiKey is None:
        return []
    return [Reference("Secret", spec.apiKey.name, "spec.apiKey", spec.apiKey.key)]
