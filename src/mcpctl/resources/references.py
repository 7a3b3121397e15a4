"""A reference from one object to another, as each kind's spec module reports them.

What happens to the referring object when its target is deleted (``on_delete``):

- ``restrict``: the delete is refused (409 ``in_use``, naming every such referrer);
- ``set-null``: the field is cleared from the referrer's spec (its resourceVersion moves on);
  only for optional top-level spec fields (``spec.project``);
- ``cascade``: the referrer is deleted too, and whatever refers to it is handled the same way.

A ``deferrable`` reference may name an object that a batch (``apply -f``, bulk apply, restore)
writes later than the referrer: it is checked when the batch ends, not when the referrer is
written. That is how an Agent names its default Personality although a Personality needs its
Agent to exist first.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

OnDelete = Literal["restrict", "set-null", "cascade"]
ON_DELETE: tuple[OnDelete, ...] = ("restrict", "set-null", "cascade")
_TOP_LEVEL = re.compile(r"^spec\.[A-Za-z][A-Za-z0-9]*$")


@dataclass(frozen=True)
class Reference:
    """An object pointing at another one: ``field`` is the path in the referring spec."""

    kind: str
    name: str
    field: str
    key: str | None = None
    on_delete: OnDelete = "restrict"
    deferrable: bool = False

    def __post_init__(self) -> None:
        if self.on_delete == "set-null" and not _TOP_LEVEL.fullmatch(self.field):
            raise ValueError(f"set-null needs a top-level spec field, not {self.field!r}")

    @property
    def spec_field(self) -> str:
        """The spec key a set-null reference clears (``spec.project`` → ``project``)."""
        return self.field.removeprefix("spec.")
