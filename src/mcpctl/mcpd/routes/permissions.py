"""`GET /api/v1/users/{name}/permissions` and `/api/v1/groups/{name}/permissions`: every
permission of a user or group with where it comes from (for `describe user|group`)."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field

from mcpctl.domain.rbac import Permission
from mcpctl.mcpd.deps import CallerDep, StateDep
from mcpctl.mcpd.problems import problem_responses
from mcpctl.mcpd.services.rbac import permissions_of_group, permissions_of_user

router = APIRouter(tags=["access control"], responses=problem_responses(401, 403, 404))


class PermissionOut(BaseModel):
    role: str
    resource: str | None = Field(description="A kind's plural, tokens, metrics, openapi or *.")
    name: str | None = Field(description="The one object the grant covers (else all of them).")
    action: str | None = Field(description="The operation of an operation binding.")
    via: str = Field(description="direct, or group NAME.")
    definition: str = Field(description="The RbacDefinition holding the binding.")

    @classmethod
    def of(cls, permission: Permission) -> PermissionOut:
        grant = permission.grant
        return cls(
            role=grant.role,
            resource=grant.resource,
            name=grant.name,
            action=grant.action,
            via=permission.via,
            definition=permission.definition,
        )


class PermissionList(BaseModel):
    apiVersion: str = "mcpctl/v1"
    kind: str = "PermissionList"
    subject: str = Field(description="user:NAME or group:NAME.")
    items: list[PermissionOut]


def _list(subject: str, permissions: list[Permission]) -> PermissionList:
    return PermissionList(subject=subject, items=[PermissionOut.of(p) for p in permissions])


@router.get(
    "/api/v1/users/{name}/permissions",
    response_model=PermissionList,
    summary="A user's permissions: their own and their groups', each with its RbacDefinition",
)
async def user_permissions(state: StateDep, caller: CallerDep, name: str) -> PermissionList:
    found = await permissions_of_user(state.objects.uows, state.authz, caller, name)
    return _list(f"user:{name}", found)


@router.get(
    "/api/v1/groups/{name}/permissions",
    response_model=PermissionList,
    summary="A group's permissions, each with its RbacDefinition",
)
async def group_permissions(state: StateDep, caller: CallerDep, name: str) -> PermissionList:
    found = await permissions_of_group(state.objects.uows, state.authz, caller, name)
    return _list(f"group:{name}", found)
