"""`GET /api/v1/llms/{name}/members`: the pool of an Llm as this mcpd sees it (no writes).

Included ahead of the per-kind routes, like the other ``/api/v1/{plural}/{name}/...`` routers.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from mcpctl.mcpd.deps import CallerDep, StateDep
from mcpctl.mcpd.problems import problem_responses

router = APIRouter(tags=["Llm"])


@router.get(
    "/api/v1/llms/{name}/members",
    responses=problem_responses(401, 403, 404),
    summary="The pool of an Llm: each member's status, cooldown, recent failures, in-flight",
)
async def llm_members(state: StateDep, caller: CallerDep, name: str) -> JSONResponse:
    return JSONResponse(await state.pools.members(caller, name))
