"""A reference from one object to another, as each kind's spec module reports them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

OnDelete = Literal["restrict", "cascade"]


@dataclass(frozen=True)
class Reference:
    """An object pointing at another one: ``field`` is the path in the referring spec."""

    kind: str
    name: str
    field: str
    key: str | None = None
    on_delete: OnDelete = "restrict"
