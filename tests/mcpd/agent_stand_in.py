"""A stand-in for the Agent kind (not built yet), used only by tests: an object that names one
Llm in ``spec.llm``, as the real Agent will. Its ``references`` is the one line the real
Agent spec module needs for "an Llm in use by an agent cannot be deleted"."""

from __future__ import annotations

from mcpctl.resources.envelope import Strict
from mcpctl.resources.kinds import KindInfo
from mcpctl.resources.references import Reference


class StandInAgentSpec(Strict):
    llm: str


spec_model = StandInAgentSpec


def references(spec: StandInAgentSpec) -> list[Reference]:
    return [Reference("Llm", spec.llm, "spec.llm")]


AGENT = KindInfo(
    kind="Agent",
    plural="agents",
    singular="agent",
    short_names=(),
    module=__name__,
    apply_order=1000,
    columns=(),
)
