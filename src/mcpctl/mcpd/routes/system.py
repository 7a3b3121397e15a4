"""Health, metrics, the OpenAPI document and authentication."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, ConfigDict, Field

from mcpctl.domain.rbac import has_full_access
from mcpctl.errors import PermissionDenied
from mcpctl.mcpd.deps import CallerDep, OriginDep, StateDep, impersonation_of
from mcpctl.mcpd.problems import problem_responses
from mcpctl.mcpd.services.auth import IMPERSONATE_HEADER
from mcpctl.mcpd.services.authz import Verb
from mcpctl.resources.rbacdefinitions import normalise_request_resource

router = APIRouter()


class Health(BaseModel):
    status: str


class LoginRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    user: str
    password: str


class TokenResponse(BaseModel):
    token: str
    user: str


class PasswordChange(BaseModel):
    model_config = ConfigDict(extra="forbid")
    current: str
    new: str


class WhoAmI(BaseModel):
    user: str = Field(description="Who requests act as: the impersonated user, if any.")
    admin: bool = Field(description="Whether the user has full access (every role and action).")
    impersonatedBy: str | None = Field(
        default=None,
        description="The token's own user; present only when impersonating (Impersonate-User).",
    )


class CanI(BaseModel):
    allowed: bool


@router.get("/healthz", response_model=Health, tags=["system"], summary="Liveness (no token)")
async def healthz() -> Health:
    return Health(status="ok")


@router.get(
    "/metrics",
    tags=["system"],
    summary="Prometheus metrics",
    responses={200: {"content": {"text/plain": {}}}, **problem_responses(401, 403)},
)
async def metrics(state: StateDep, caller: CallerDep) -> Response:
    state.authz.authorize(caller, "view", "metrics", None)
    return Response(generate_latest(state.metrics), media_type=CONTENT_TYPE_LATEST)


@router.get(
    "/openapi.json", tags=["system"], summary="This API's OpenAPI document", include_in_schema=False
)
async def openapi(request: Request, state: StateDep, caller: CallerDep) -> JSONResponse:
    state.authz.authorize(caller, "view", "openapi", None)
    schema: dict[str, Any] = request.app.openapi()
    return JSONResponse(schema)


@router.post(
    "/api/v1/auth/login",
    response_model=TokenResponse,
    tags=["auth"],
    summary="Exchange a user name and password for a token (no token needed)",
    responses=problem_responses(401, 403, 422),
)
async def login(
    request: Request, state: StateDep, origin: OriginDep, body: LoginRequest
) -> TokenResponse:
    if impersonation_of(request) is not None:
        # A person's credentials are their own: no token is ever issued to an impersonator.
        raise PermissionDenied(f"cannot log in while impersonating: drop {IMPERSONATE_HEADER}")
    token = await state.auth.login(body.user, body.password, origin)
    return TokenResponse(token=token, user=body.user)


@router.get(
    "/api/v1/auth/whoami",
    response_model=WhoAmI,
    tags=["auth"],
    summary="Who the token is (and who it acts as, with Impersonate-User)",
    responses=problem_responses(401, 403),
    # impersonatedBy appears only while impersonating.
    response_model_exclude_none=True,
)
async def whoami(caller: CallerDep) -> WhoAmI:
    return WhoAmI(
        user=caller.user,
        admin=has_full_access(caller.grants),
        impersonatedBy=caller.impersonated_by,
    )


@router.get(
    "/api/v1/auth/can-i",
    response_model=CanI,
    tags=["auth"],
    summary="Whether you may do VERB on RESOURCE (a kind, tokens, backup, ...), or one object",
    responses=problem_responses(401, 422),
)
async def can_i(
    state: StateDep,
    caller: CallerDep,
    verb: Verb,
    resource: Annotated[str, Query(description="A kind (any spelling) or a non-kind resource.")],
    name: str | None = None,
) -> CanI:
    target = normalise_request_resource(verb, resource)
    return CanI(allowed=state.authz.allows(caller, verb, target, name))


@router.post(
    "/api/v1/auth/password",
    status_code=204,
    tags=["auth"],
    summary="Change your own password (the current one is required; never while impersonating)",
    responses=problem_responses(401, 403, 422),
)
async def change_password(state: StateDep, caller: CallerDep, body: PasswordChange) -> Response:
    await state.auth.change_password(caller, body.current, body.new)
    return Response(status_code=204)
