"""FastAPI dependencies, as ``Annotated`` aliases routes can name."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from mcpctl.domain.caller import ANONYMOUS, Caller
from mcpctl.mcpd.request_id import request_id_of
from mcpctl.mcpd.state import AppState

_bearer = HTTPBearer(auto_error=False, description="An mcpctl token (see `mcpctl login`).")


def get_state(request: Request) -> AppState:
    state: AppState = request.app.state.mcpd
    return state


StateDep = Annotated[AppState, Depends(get_state)]


def get_origin(request: Request) -> Caller:
    """The anonymous caller of this request: its id and client address, no identity yet."""
    client = request.client.host if request.client else None
    return Caller(user=ANONYMOUS, request_id=request_id_of(request), client=client)


OriginDep = Annotated[Caller, Depends(get_origin)]


async def get_caller(
    request: Request,
    state: StateDep,
    origin: OriginDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Caller:
    caller = await state.auth.authenticate(
        credentials.credentials if credentials else None,
        origin,
        f"{request.method} {request.url.path}",
    )
    # Kept for the audit of requests whose body then fails validation (mcpd/problems.py).
    request.state.caller = caller
    return caller


CallerDep = Annotated[Caller, Depends(get_caller)]
