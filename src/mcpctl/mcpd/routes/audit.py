"""`GET /api/v1/auditevents`: the audit trail, newest first (read-only; needs `audit`)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel

from mcpctl.mcpd.deps import CallerDep, StateDep
from mcpctl.mcpd.problems import problem_responses
from mcpctl.mcpd.services.audit import MAX_PAGE

router = APIRouter(tags=["audit"])


class AuditEventOut(BaseModel):
    time: str
    user: str
    impersonatedBy: str | None
    verb: str
    kind: str
    name: str | None
    outcome: Literal["ok", "denied", "error"]
    code: str | None
    requestId: str | None
    client: str | None
    details: dict[str, Any]


class AuditEventList(BaseModel):
    apiVersion: str = "mcpctl/v1"
    kind: str = "AuditEventList"
    metadata: dict[str, str]
    items: list[AuditEventOut]


@router.get(
    "/api/v1/auditevents",
    response_model=AuditEventList,
    responses=problem_responses(401, 403, 422),
    summary="Audit events, newest first (needs the `audit` operation)",
)
async def list_audit_events(
    state: StateDep,
    caller: CallerDep,
    since: Annotated[
        str | None,
        Query(description="RFC 3339 time, or a duration back from now: 90s, 15m, 1h, 7d"),
    ] = None,
    user: Annotated[str | None, Query(description="Only this user's events.")] = None,
    kind: Annotated[str | None, Query(description="Only this kind (any of its names).")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = MAX_PAGE,
    continue_: Annotated[str | None, Query(alias="continue")] = None,
) -> AuditEventList:
    page = await state.audit_events.list_page(
        caller, since=since, user=user, kind=kind, limit=limit, continue_token=continue_
    )
    metadata = {"continue": page.continue_token} if page.continue_token else {}
    return AuditEventList(
        metadata=metadata, items=[AuditEventOut.model_validate(i) for i in page.items]
    )
