"""REST routes for every kind in the registry, written once: schema in, service call, schema out."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse

from mcpctl.jsonrpc import wire
from mcpctl.mcpd.deps import CallerDep, StateDep
from mcpctl.mcpd.problems import problem_responses
from mcpctl.mcpd.services.following import MAX_WAIT_SECONDS
from mcpctl.resources.envelope import ApplyResult, Resource, ResourceList, UsageReport
from mcpctl.resources.kinds import KINDS, KindInfo

DryRun = Annotated[bool, Query(alias="dryRun", description="Validate and report; change nothing.")]
ShowValues = Annotated[
    bool, Query(alias="showValues", description="Reveal masked values (Secret data).")
]
ChangedAfter = Annotated[
    str | None,
    Query(
        alias="changedAfter",
        description="The resourceVersion the client has: answer when the object is at another.",
    ),
]
WaitSeconds = Annotated[
    float,
    Query(
        alias="waitSeconds",
        ge=0,
        le=MAX_WAIT_SECONDS,
        description="With changedAfter: how long to wait for a change before answering 304.",
    ),
]
_ERRORS = problem_responses(401, 403, 404, 409, 422)
# nginx's "client closed request": the answer of a long-poll whose client went away (it is
# never sent; the request metrics count it).
CLIENT_GONE = 499


def _with_body_type(endpoint: Callable[..., Any], model: type[Any]) -> Callable[..., Any]:
    # Routes are generated per kind, so the body's static type is Resource[Any]; FastAPI reads
    # the signature to validate and document, so give it the kind's concrete model there.
    sig = inspect.signature(endpoint)
    params = [
        p.replace(annotation=model) if p.name == "body" else p for p in sig.parameters.values()
    ]
    endpoint.__signature__ = sig.replace(parameters=params)  # type: ignore[attr-defined]
    return endpoint


def kind_router(info: KindInfo) -> APIRouter:
    """All routes of one kind under /api/v1/{plural}."""
    router = APIRouter(prefix=f"/api/v1/{info.plural}", tags=[info.kind], responses=_ERRORS)
    item_model = Resource[info.spec_model]  # type: ignore[name-defined]
    list_model = ResourceList[info.spec_model]  # type: ignore[name-defined]

    @router.get("", response_model=list_model, summary=f"List {info.plural}")
    async def list_objects(
        state: StateDep,
        caller: CallerDep,
        show_values: ShowValues = False,
        label_selector: Annotated[str | None, Query(alias="labelSelector")] = None,
        limit: Annotated[int | None, Query(ge=1, le=500)] = None,
        continue_: Annotated[str | None, Query(alias="continue")] = None,
    ) -> Response:
        page = await state.objects.list_page(
            caller,
            info,
            selector=label_selector,
            limit=limit,
            continue_token=continue_,
            reveal=show_values,
        )
        metadata = {"continue": page.continue_token} if page.continue_token else {}
        return JSONResponse(
            {
                "apiVersion": "mcpctl/v1",
                "kind": f"{info.kind}List",
                "metadata": metadata,
                "items": page.items,
            }
        )

    @router.get(
        "/{name}",
        response_model=item_model,
        responses={304: {"description": "Not modified: still at `changedAfter` (no body)"}},
        summary=f"Get one {info.singular}, or follow it (changedAfter, waitSeconds)",
    )
    async def get_object(
        request: Request,
        state: StateDep,
        caller: CallerDep,
        name: str,
        show_values: ShowValues = False,
        changed_after: ChangedAfter = None,
        wait_seconds: WaitSeconds = 0.0,
    ) -> Response:
        if changed_after is None:
            return JSONResponse(await state.objects.get(caller, info, name, reveal=show_values))
        work = asyncio.ensure_future(
            state.follower.changed_after(
                caller, info, name, changed_after, wait_seconds, reveal=show_values
            )
        )
        # A client that goes away ends its wait (and its subscription) at once.
        if await wire.until_disconnect(request.receive, work):
            return Response(status_code=CLIENT_GONE)
        obj = work.result()
        return Response(status_code=304) if obj is None else JSONResponse(obj)

    @router.get(
        "/{name}/usage",
        response_model=UsageReport,
        summary=f"What uses this {info.singular} and what it uses",
    )
    async def object_usage(state: StateDep, caller: CallerDep, name: str) -> UsageReport:
        return await state.objects.usage(caller, info, name)

    async def create_object(
        state: StateDep, caller: CallerDep, body: Resource[Any], dry_run: DryRun = False
    ) -> Response:
        obj = await state.objects.create(caller, info, body, dry_run=dry_run)
        return JSONResponse(obj, status_code=201)

    router.post(
        "", response_model=item_model, status_code=201, summary=f"Create a {info.singular}"
    )(_with_body_type(create_object, item_model))

    async def apply_object(
        state: StateDep, caller: CallerDep, name: str, body: Resource[Any], dry_run: DryRun = False
    ) -> Response:
        outcome, obj = await state.objects.apply(caller, info, name, body, dry_run=dry_run)
        return JSONResponse(
            {"outcome": outcome, "dryRun": dry_run, "object": obj},
            status_code=201 if outcome == "created" else 200,
        )

    router.put(
        "/{name}",
        response_model=ApplyResult,
        responses={201: {"model": ApplyResult, "description": "Created"}},
        summary=f"Create or replace a {info.singular} (apply)",
    )(_with_body_type(apply_object, item_model))

    @router.delete("/{name}", response_model=item_model, summary=f"Delete a {info.singular}")
    async def delete_object(
        state: StateDep, caller: CallerDep, name: str, dry_run: DryRun = False
    ) -> Response:
        return JSONResponse(await state.objects.delete(caller, info, name, dry_run=dry_run))

    return router


def resource_routers() -> list[APIRouter]:
    return [kind_router(info) for info in KINDS]
