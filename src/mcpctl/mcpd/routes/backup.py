"""`POST /api/v1/backup` and `POST /api/v1/restore` (the passphrase travels in the body only)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from mcpctl.mcpd.deps import CallerDep, StateDep
from mcpctl.mcpd.problems import problem_responses
from mcpctl.resources.backup import (
    BackupDocument,
    BackupRequest,
    ConflictPolicy,
    RestoreRequest,
    RestoreResult,
)

router = APIRouter(tags=["backup"])


@router.post(
    "/api/v1/backup",
    response_model=BackupDocument,
    responses=problem_responses(401, 403, 422),
    summary="Every object of every kind and the users; secret values sealed with the passphrase",
)
async def backup(state: StateDep, caller: CallerDep, body: BackupRequest) -> JSONResponse:
    return JSONResponse(await state.backup.backup(caller, body.passphrase.get_secret_value()))


@router.post(
    "/api/v1/restore",
    response_model=RestoreResult,
    responses=problem_responses(401, 403, 409, 422),
    summary="Restore a backup in one transaction; nothing changes if any part fails",
)
async def restore(
    state: StateDep,
    caller: CallerDep,
    body: RestoreRequest,
    dry_run: Annotated[bool, Query(alias="dryRun")] = False,
    conflict: Annotated[
        ConflictPolicy, Query(description="skip: leave existing objects; overwrite: replace them")
    ] = "skip",
) -> RestoreResult:
    return await state.backup.restore(
        caller,
        body.passphrase.get_secret_value(),
        body.backup,
        conflict=conflict,
        dry_run=dry_run,
    )
