"""A kind used only by tests: each object may name one other of its own kind (``spec.next``),
for the one case no registered kind has yet, references within a kind."""

from __future__ import annotations

from mcpctl.resources.envelope import Strict
from mcpctl.resources.kinds import KindInfo
from mcpctl.resources.references import Reference


class LinkSpec(Strict):
    next: str | None = None


spec_model = LinkSpec


def references(spec: LinkSpec) -> list[Reference]:
    return [] if spec.next is None else [Reference("Link", spec.next, "spec.next")]


LINK = KindInfo(
    kind="Link",
    plural="links",
    singular="link",
    short_names=(),
    module=__name__,
    apply_order=1000,
    columns=(),
)
