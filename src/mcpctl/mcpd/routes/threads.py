"""`GET /api/v1/threads[?agent=A]`, `GET /api/v1/threads/{id}` (with its messages) and
`DELETE /api/v1/threads/{id}`: chat threads are read-mostly; the chat endpoint writes them."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel

from mcpctl.mcpd.deps import CallerDep, StateDep
from mcpctl.mcpd.problems import problem_responses

router = APIRouter(tags=["ChatThread"])


class ThreadOut(BaseModel):
    id: str
    agent: str
    owner: str
    title: str
    createdAt: str
    lastTurnAt: str
    messageCount: int


class ToolCallOut(BaseModel):
    id: str
    name: str
    arguments: str


class MessageOut(BaseModel):
    turnIndex: int
    role: Literal["system", "user", "assistant", "tool"]
    content: str | None
    toolCalls: list[ToolCallOut] | None
    toolCallId: str | None
    createdAt: str


class ThreadList(BaseModel):
    apiVersion: str = "mcpctl/v1"
    kind: str = "ChatThreadList"
    items: list[ThreadOut]


class ThreadWithMessages(ThreadOut):
    apiVersion: str = "mcpctl/v1"
    kind: str = "ChatThread"
    messages: list[MessageOut]


@router.get(
    "/api/v1/threads",
    response_model=ThreadList,
    responses=problem_responses(401, 403, 422),
    summary="Chat threads, most recently active first: your own, or everyone's with view on "
    "threads",
)
async def list_threads(
    state: StateDep,
    caller: CallerDep,
    agent: Annotated[str | None, Query(description="Only this agent's threads.")] = None,
    owner: Annotated[str | None, Query(description="Only this user's threads.")] = None,
) -> ThreadList:
    threads = await state.threads.list_threads(caller, agent=agent, owner=owner)
    return ThreadList(items=[ThreadOut.model_validate(t.as_json()) for t in threads])


@router.get(
    "/api/v1/threads/{id}",
    response_model=ThreadWithMessages,
    responses=problem_responses(401, 403, 404),
    summary="A chat thread with its messages in order",
)
async def read_thread(state: StateDep, caller: CallerDep, id: str) -> ThreadWithMessages:
    thread, messages = await state.threads.read(caller, id)
    return ThreadWithMessages.model_validate(
        {**thread.as_json(), "messages": [m.as_json() for m in messages]}
    )


@router.delete(
    "/api/v1/threads/{id}",
    response_model=ThreadOut,
    responses=problem_responses(401, 403, 404),
    summary="Delete a chat thread and its messages (your own, or any with delete on threads)",
)
async def delete_thread(state: StateDep, caller: CallerDep, id: str) -> ThreadOut:
    return ThreadOut.model_validate((await state.threads.delete(caller, id)).as_json())
