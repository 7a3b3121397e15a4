"""Agents at run time: the system block of an agent and personality, and the Personality rules
the generic object service does not know.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from mcpctl.domain.caller import Caller
from mcpctl.domain.system_block import PromptText, SystemBlock, system_block
from mcpctl.errors import NotFound
from mcpctl.mcpd.db.tables import ObjectRow
from mcpctl.mcpd.db.uow import UnitOfWork, UnitOfWorkFactory
from mcpctl.mcpd.services.authz import Authorizer
from mcpctl.mcpd.services.behaviours import Behaviour, Prepared, invalid
from mcpctl.resources.agents import AgentSpec, personality_name
from mcpctl.resources.personalities import PersonalitySpec, split_name
from mcpctl.resources.prompts import PromptSpec


class PersonalityBehaviour(Behaviour):
    """A personality named ``AGENT.NAME`` must belong to the agent AGENT."""

    async def prepare(
        self, uow: UnitOfWork, name: str, spec: BaseModel, existing: ObjectRow | None
    ) -> Prepared:
        assert isinstance(spec, PersonalitySpec)
        agent, _ = split_name(name)
        if spec.agent != agent:
            raise invalid(
                "spec.agent",
                f"must be {agent!r}: a personality is named AGENT.NAME and {name!r} "
                f"belongs to agent {agent!r}",
            )
        return await super().prepare(uow, name, spec, existing)


@dataclass(frozen=True)
class AgentBlock:
    """An agent ready to chat: its spec, the personality chosen (short name) and the block."""

    agent: str
    spec: AgentSpec
    personality: str | None
    block: SystemBlock

    def as_json(self) -> dict[str, Any]:
        return {
            "agent": self.agent,
            "personality": self.personality,
            "parts": [
                {"source": p.source, "name": p.name, "priority": p.priority, "content": p.content}
                for p in self.block.parts
            ],
            "text": self.block.text,
        }


async def _prompts(uow: UnitOfWork, names: list[str]) -> dict[str, PromptSpec]:
    rows = await uow.objects.ids_by_name("Prompt", names)
    return {name: PromptSpec.model_validate(row.spec) for name, row in rows.items()}


async def agent_block(uow: UnitOfWork, agent: str, personality: str | None = None) -> AgentBlock:
    """The agent ``agent`` with the system block for ``personality`` (a short name; None: the
    agent's default personality, if it has one).

    Raises:
        NotFound: no such agent, or no such personality of it (naming the ones it has).
    """
    row = await uow.objects.get("Agent", agent)
    if row is None:
        raise NotFound(f"agent/{agent} not found")
    spec = AgentSpec.model_validate(row.spec)
    users = await uow.objects.refs_to(row.id)
    own = await _prompts(uow, [r.name for r in users if r.kind == "Prompt"])
    agent_prompts = [PromptText(name, p.content, p.priority) for name, p in own.items()]
    chosen = personality or spec.defaultPersonality
    bound: list[PromptText] = []
    if chosen:
        found = await uow.objects.get("Personality", personality_name(agent, chosen))
        if found is None:
            known = sorted(split_name(r.name)[1] for r in users if r.kind == "Personality")
            raise NotFound(
                f"agent/{agent} has no personality {chosen!r} "
                f"(it has: {', '.join(known) if known else 'none'})"
            )
        bindings = PersonalitySpec.model_validate(found.spec).prompts
        prompts = await _prompts(uow, [b.name for b in bindings])
        bound = [
            PromptText(b.name, prompts[b.name].content, b.priority or prompts[b.name].priority)
            for b in bindings
            if b.name in prompts
        ]
    return AgentBlock(agent, spec, chosen, system_block(spec.systemPrompt, agent_prompts, bound))


class AgentService:
    def __init__(self, uow_factory: UnitOfWorkFactory, authz: Authorizer) -> None:
        self.uows = uow_factory
        self.authz = authz

    async def resolve(self, agent: str, personality: str | None = None) -> AgentBlock:
        """``agent_block`` in a read transaction of its own, for mcpd's own callers (chat),
        which check permissions themselves.

        Raises:
            NotFound: see ``agent_block``.
        """
        async with self.uows.read() as uow:
            return await agent_block(uow, agent, personality)

    async def system_block(
        self, caller: Caller, agent: str, personality: str | None = None
    ) -> AgentBlock:
        """What the agent will send as its system block, for someone who may view it.

        Raises:
            PermissionDenied: without ``view`` on the agent. NotFound: see ``agent_block``.
        """
        self.authz.authorize(caller, "view", "agents", agent)
        return await self.resolve(agent, personality)
