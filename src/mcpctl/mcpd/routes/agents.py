"""`GET /api/v1/agents/{name}/system-block[?personality=P]`: what the agent sends as its system
block (its systemPrompt, its prompts, the personality's prompts), for `describe agent`.

Included ahead of the per-kind routes, like the other ``/api/v1/{plural}/{name}/...`` routers.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel

from mcpctl.mcpd.deps import CallerDep, StateDep
from mcpctl.mcpd.problems import problem_responses

router = APIRouter(tags=["Agent"])


class BlockPartOut(BaseModel):
    source: Literal["agent", "prompt", "personality"]
    name: str | None
    priority: int | None
    content: str


class SystemBlockOut(BaseModel):
    agent: str
    personality: str | None
    parts: list[BlockPartOut]
    text: str


@router.get(
    "/api/v1/agents/{name}/system-block",
    response_model=SystemBlockOut,
    responses=problem_responses(401, 403, 404),
    summary="The system block of an agent with a personality (default: the agent's default)",
)
async def system_block(
    state: StateDep,
    caller: CallerDep,
    name: str,
    personality: Annotated[
        str | None, Query(description="A personality of the agent (its short name).")
    ] = None,
) -> SystemBlockOut:
    block = await state.agents.system_block(caller, name, personality)
    return SystemBlockOut.model_validate(block.as_json())
