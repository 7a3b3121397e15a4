"""`POST /api/v1/apply`: many objects of any kinds in one request, each applied on its own."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from mcpctl.mcpd.deps import CallerDep, StateDep
from mcpctl.mcpd.problems import problem_of, problem_responses
from mcpctl.resources.envelope import BulkApplyRequest, BulkApplyResult, BulkItemResult

router = APIRouter(tags=["apply"])


@router.post(
    "/api/v1/apply",
    response_model=BulkApplyResult,
    responses=problem_responses(401, 403, 422),
    summary="Apply many objects in order; each succeeds or fails alone",
)
async def bulk_apply(
    state: StateDep,
    caller: CallerDep,
    body: BulkApplyRequest,
    dry_run: Annotated[bool, Query(alias="dryRun")] = False,
) -> BulkApplyResult:
    results = await state.objects.apply_many(caller, body.items, dry_run=dry_run)
    return BulkApplyResult(
        dryRun=dry_run,
        results=[
            BulkItemResult(
                kind=r.kind,
                name=r.name,
                outcome=r.outcome,
                object=r.object,
                error=None if r.error is None else problem_of(r.error),
            )
            for r in results
        ],
    )
