"""`GET /api/v1/tokens` and `DELETE /api/v1/tokens/{id}`: list and revoke bearer tokens."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel

from mcpctl.mcpd.deps import CallerDep, StateDep
from mcpctl.mcpd.problems import problem_responses
from mcpctl.mcpd.services.tokens import TOKEN_KIND, TokenInfo

router = APIRouter(tags=["auth"])


class TokenOut(BaseModel):
    id: str
    user: str
    description: str
    createdAt: str
    expiresAt: str | None
    current: bool

    @classmethod
    def of(cls, info: TokenInfo) -> TokenOut:
        return cls(
            id=info.id,
            user=info.user,
            description=info.description,
            createdAt=info.created_at.isoformat(),
            expiresAt=info.expires_at.isoformat() if info.expires_at else None,
            current=info.current,
        )


class TokenList(BaseModel):
    apiVersion: str = "mcpctl/v1"
    kind: str = "TokenList"
    items: list[TokenOut]


class Revoked(BaseModel):
    id: str
    revoked: bool = True


@router.get(
    "/api/v1/tokens",
    response_model=TokenList,
    responses=problem_responses(401, 403, 422),
    summary="Your unexpired tokens (every user's with all=true, which needs permission)",
)
async def list_tokens(
    state: StateDep,
    caller: CallerDep,
    all_: Annotated[bool, Query(alias="all", description="Every user's tokens.")] = False,
) -> TokenList:
    infos = await state.tokens.list(caller, all_users=all_)
    return TokenList(items=[TokenOut.of(i) for i in infos])


@router.delete(
    "/api/v1/tokens/{id}",
    response_model=Revoked,
    responses=problem_responses(401, 403, 404),
    summary="Revoke a token at once (your own, or another user's with permission; never while "
    "impersonating)",
)
async def revoke_token(state: StateDep, caller: CallerDep, id: str) -> Revoked:
    state.auth.refuse_if_impersonating(caller, "delete", TOKEN_KIND, id, "revoke a token")
    await state.tokens.revoke(caller, id)
    return Revoked(id=id)
