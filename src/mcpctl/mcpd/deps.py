"""FastAPI dependencies, as ``Annotated`` aliases routes can name."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from mcpctl.domain.caller import ANONYMOUS, Caller
from mcpctl.mcpd.request_id import request_id_of
from mcpctl.mcpd.services.auth import IMPERSONATE_HEADER
from mcpctl.mcpd.state import AppState
from mcpctl.resources.validation import invalid_input

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


def impersonation_of(request: Request) -> str | None:
    """The user named by the request's ``Impersonate-User`` header, if it has one.

    Raises:
        InvalidInput: an empty value, or the header given more than once (no chains).
    """
    values = request.headers.getlist(IMPERSONATE_HEADER)
    if not values:
        return None
    if len(values) > 1 or not values[0].strip():
        raise invalid_input([{"path": IMPERSONATE_HEADER, "message": "give exactly one user name"}])
    return values[0].strip()


async def get_caller(
    request: Request,
    state: StateDep,
    origin: OriginDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Caller:
    """The authenticated caller; with ``Impersonate-User``, the user it names, evaluated with
    that user's grants (read once, from the real caller: impersonation never chains)."""
    caller = await state.auth.authenticate(
        credentials.credentials if credentials else None,
        origin,
        f"{request.method} {request.url.path}",
    )
    target = impersonation_of(request)
    if target is not None:
        caller = await state.auth.impersonate(caller, target, state.authz)
    # Kept for the audit of requests whose body then fails validation (mcpd/problems.py).
    request.state.caller = caller
    return caller


CallerDep = Annotated[Caller, Depends(get_caller)]
