"""Instances (read-only), `POST /api/v1/servers/{name}/restart` and the server logs."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, Field

from mcpctl.mcpd.deps import CallerDep, StateDep
from mcpctl.mcpd.instances.logs import LogLine, ServerLog
from mcpctl.mcpd.problems import problem_responses

router = APIRouter(tags=["instances"])

NDJSON = "application/x-ndjson"


class InstanceList(BaseModel):
    apiVersion: str = "mcpctl/v1"
    kind: str = "InstanceList"
    items: list[dict[str, Any]] = Field(description="Instance objects, by name.")


@router.get(
    "/api/v1/instances",
    response_model=InstanceList,
    responses=problem_responses(401, 403),
    summary="The running copies of servers this mcpd knows (of servers you may view)",
)
async def list_instances(state: StateDep, caller: CallerDep) -> JSONResponse:
    return JSONResponse(InstanceList(items=state.instances.list(caller)).model_dump())


@router.get(
    "/api/v1/instances/{name}",
    responses=problem_responses(401, 403, 404),
    summary="One instance: state, pid or container, restarts, last error",
)
async def get_instance(state: StateDep, caller: CallerDep, name: str) -> JSONResponse:
    return JSONResponse(state.instances.get(caller, name))


@router.post(
    "/api/v1/servers/{name}/restart",
    responses=problem_responses(401, 403, 404, 503),
    summary="Stop the server's instance and start a new one from its current spec",
)
async def restart_server(state: StateDep, caller: CallerDep, name: str) -> JSONResponse:
    return JSONResponse(await state.instances.restart(caller, name))


@router.get(
    "/api/v1/servers/{name}/logs",
    responses={
        200: {"content": {NDJSON: {}}, "description": "One JSON object per line."},
        **problem_responses(401, 403, 404, 422),
    },
    summary="A server's stderr and lifecycle events: {time, stream, text} per line",
)
async def server_logs(
    state: StateDep,
    caller: CallerDep,
    name: str,
    tail: Annotated[int | None, Query(ge=0, description="Only the last N lines.")] = None,
    follow: Annotated[bool, Query(description="Keep streaming new lines.")] = False,
) -> StreamingResponse:
    server_log = await state.instances.logs(caller, name)
    body = _follow(server_log, tail) if follow else _lines(server_log.tail(tail))
    return StreamingResponse(body, media_type=NDJSON)


def _encode(line: LogLine) -> bytes:
    return json.dumps(line.to_json(), ensure_ascii=False).encode() + b"\n"


async def _lines(lines: list[LogLine]) -> AsyncIterator[bytes]:
    yield b"".join(_encode(line) for line in lines)


async def _follow(server_log: ServerLog, tail: int | None) -> AsyncIterator[bytes]:
    async for line in server_log.follow(tail):
        yield _encode(line)
