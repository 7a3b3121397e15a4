"""FastAPI dependencies, as ``Annotated`` aliases routes can name."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from mcpctl.domain.caller import Caller
from mcpctl.mcpd.state import AppState

_bearer = HTTPBearer(auto_error=False, description="An mcpctl token (see `mcpctl login`).")


def get_state(request: Request) -> AppState:
    state: AppState = request.app.state.mcpd
    return state


StateDep = Annotated[AppState, Depends(get_state)]


async def get_caller(
    state: StateDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Caller:
    return await state.auth.authenticate(credentials.credentials if credentials else None)


CallerDep = Annotated[Caller, Depends(get_caller)]
