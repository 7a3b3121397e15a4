"""Secret: named key/value data, encrypted at rest and masked in output."""

from __future__ import annotations

import re

from pydantic import Field, field_validator

from mcpctl.resources.envelope import Strict
from mcpctl.resources.references import Reference

_KEY = re.compile(r"^[-._A-Za-z0-9]{1,253}$")


class SecretSpec(Strict):
    data: dict[str, str | None] = Field(
        default_factory=dict,
        description="Key to value. Output shows null unless values are revealed; on apply, a null "
        "value keeps the stored value of that key.",
    )

    @field_validator("data")
    @classmethod
    def _keys(cls, v: dict[str, str | None]) -> dict[str, str | None]:
        for key in v:
            if not _KEY.fullmatch(key):
                raise ValueError(f"invalid key {key!r}: use letters, digits, '-', '_' and '.'")
        return v


spec_model = SecretSpec


def references(spec: SecretSpec) -> list[Reference]:
    return []
