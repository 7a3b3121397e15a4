"""The resource envelope shared by every kind: apiVersion, kind, metadata, spec, status."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

API_VERSION: Final = "mcpctl/v1"


class Strict(BaseModel):
    """Base of every wire model: unknown fields are rejected with their path."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


Item = TypeVar("Item")


def no_repeats(values: list[Item], what: str) -> list[Item]:
    """``values`` as they are; raises ValueError naming ``what`` when one comes twice."""
    if len(set(values)) != len(values):
        raise ValueError(f"lists {what} more than once")
    return values


class ObjectMeta(Strict):
    name: str = Field(description="Unique per kind; a DNS-1123 label of at most 63 characters.")
    labels: dict[str, str] = Field(default_factory=dict)
    uid: str | None = Field(default=None, description="Set by mcpd; ignored on input.")
    resourceVersion: str | None = Field(
        default=None,
        description="Set by mcpd. On PUT, a value makes the write conditional on it (409 if stale).",
    )
    createdAt: datetime | None = Field(default=None, description="Set by mcpd; ignored on input.")
    updatedAt: datetime | None = Field(default=None, description="Set by mcpd; ignored on input.")


SpecT = TypeVar("SpecT", bound=BaseModel)


class Resource(Strict, Generic[SpecT]):
    """One object of a kind, as it travels in YAML and JSON."""

    apiVersion: Literal["mcpctl/v1"] = API_VERSION
    kind: str
    metadata: ObjectMeta
    spec: SpecT
    status: dict[str, Any] = Field(
        default_factory=dict, description="What mcpd observed; ignored on input."
    )


class ListMeta(Strict):
    continue_: str | None = Field(
        default=None,
        alias="continue",
        serialization_alias="continue",
        description="Pass back as ?continue= to get the next chunk; absent on the last one.",
    )


class ResourceList(Strict, Generic[SpecT]):
    apiVersion: Literal["mcpctl/v1"] = API_VERSION
    kind: str
    metadata: ListMeta = Field(default_factory=ListMeta)
    items: list[Resource[SpecT]]


ApplyOutcome = Literal["created", "configured", "unchanged"]


class ApplyResult(Strict):
    """The answer to PUT: what happened, and the object as stored."""

    outcome: ApplyOutcome
    dryRun: bool = False
    object: dict[str, Any]


class Usage(Strict):
    """One reference between two objects (``field`` is the path in the referring object)."""

    kind: str
    name: str
    field: str


class UsageReport(Strict):
    usedBy: list[Usage]
    uses: list[Usage]


class BulkApplyRequest(Strict):
    """Objects of any kinds, applied in the order given (put dependencies first)."""

    items: list[dict[str, Any]] = Field(max_length=500)


class BulkItemResult(Strict):
    kind: str
    name: str
    outcome: ApplyOutcome | None = None
    object: dict[str, Any] | None = None
    error: dict[str, Any] | None = Field(
        default=None, description="A problem document (code, status, detail, errors)."
    )


class BulkApplyResult(Strict):
    dryRun: bool
    results: list[BulkItemResult]
