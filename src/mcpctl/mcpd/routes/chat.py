"""`POST /api/v1/agents/{name}/chat`: one user message to an agent (docs/agents.md, "Chat").

With ``stream: true`` (or, without ``stream``, ``Accept: text/event-stream``) the answer is a
server-sent event stream, each event ``event: NAME`` with one JSON ``data`` line:

- ``thread``: the thread (``id``, ``title``, ...), ``created`` and ``personality``; first.
- ``delta``: ``{"text"}``, a piece of the answer as the Llm writes it.
- ``tool_call``: ``{"id", "name", "arguments"}``, a call the Llm made (before it runs).
- ``tool_result``: ``{"id", "name", "content", "isError"}``, what the call gave the Llm.
- ``done``: the end: ``answer``, ``finishReason``, ``llm``, ``usage``, ``toolRounds`` and
  ``messages`` (everything stored during the turn, in order).
- ``error``: the end of a turn that failed, as a problem document (``code``, ``status``,
  ``detail``, ``thread``).

Otherwise one JSON answer: the ``done`` event's fields with the ``thread``. Refusals come
before any answer as problem+json, like every route; a failure once the user's message is
stored is an ``error`` event (streamed) or problem+json naming the ``thread`` (JSON).
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Annotated, Any

from fastapi import APIRouter, Header
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from mcpctl.errors import AppError
from mcpctl.mcpd.deps import CallerDep, StateDep
from mcpctl.mcpd.llm.chat import (
    ChatEvent,
    ChatRequest,
    ChatTurn,
    Done,
    Failed,
    TextChunk,
    ThreadOpened,
    ToolAnswered,
    ToolCalled,
)
from mcpctl.mcpd.llm.messages import Params, Usage
from mcpctl.mcpd.problems import problem_of, problem_responses
from mcpctl.resources.llms import LlmParams

log = logging.getLogger(__name__)
router = APIRouter(tags=["Agent"])

SSE = "text/event-stream"


class ChatIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    message: str = Field(min_length=1, description="The user's message.")
    thread: str | None = Field(
        default=None, description="Continue this thread of yours; a new one without."
    )
    personality: str | None = Field(
        default=None, description="A personality of the agent (default: the agent's default)."
    )
    params: LlmParams | None = Field(
        default=None, description="Sampling parameters over the agent's defaultParams."
    )
    toolChoice: str | None = Field(
        default=None,
        description="auto, none, required or the name of one of the agent's tools, for the "
        "first request of the turn.",
    )
    stream: bool | None = Field(
        default=None, description="Server-sent events; default: when Accept asks for them."
    )


def _usage(usage: Usage | None) -> dict[str, int] | None:
    if usage is None:
        return None
    return {
        "promptTokens": usage.prompt_tokens,
        "completionTokens": usage.completion_tokens,
        "totalTokens": usage.total_tokens,
    }


def _done(done: Done) -> dict[str, Any]:
    return {
        "answer": done.answer,
        "finishReason": done.finish_reason,
        "llm": done.llm,
        "usage": _usage(done.usage),
        "toolRounds": done.tool_rounds,
        "messages": [m.as_json() for m in done.stored],
    }


def event_json(event: ChatEvent, thread: str) -> tuple[str, dict[str, Any]]:
    """The SSE event name and data of one chat event."""
    if isinstance(event, ThreadOpened):
        data = {**event.thread.as_json(), "created": event.created}
        return "thread", {**data, "personality": event.personality}
    if isinstance(event, TextChunk):
        return "delta", {"text": event.text}
    if isinstance(event, ToolCalled):
        call = event.call
        return "tool_call", {"id": call.id, "name": call.name, "arguments": call.arguments}
    if isinstance(event, ToolAnswered):
        result = event.result
        return "tool_result", {
            "id": result.call.id,
            "name": result.call.name,
            "content": result.text,
            "isError": result.is_error,
        }
    if isinstance(event, Done):
        return "done", {"thread": thread, **_done(event)}
    return "error", {**problem_of(event.error), "thread": thread}


def sse(name: str, data: dict[str, Any]) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n".encode()


async def _stream(turn: ChatTurn) -> AsyncIterator[bytes]:
    thread = turn.thread.id
    try:
        async for event in turn.events():
            yield sse(*event_json(event, thread))
    except Exception as exc:  # the top-level handler of a stream that has started
        log.exception("agent chat in thread %s failed", thread)
        error = AppError(f"internal error; the mcpd log has details ({exc.__class__.__name__})")
        yield sse("error", {**problem_of(error), "thread": thread})


async def _answer(state: StateDep, turn: ChatTurn) -> JSONResponse:
    """Raises: the error that ended the turn, naming the thread."""
    done: Done | None = None
    async with aclosing(turn.events()) as events:
        async for event in events:
            if isinstance(event, Failed):
                event.error.details["thread"] = turn.thread.id
                raise event.error
            if isinstance(event, Done):
                done = event
    assert done is not None
    thread = await state.chat.store.get_thread(turn.thread.id)
    body = {
        "thread": thread.as_json(),
        "created": turn.opened.created,
        "personality": turn.opened.personality,
        **_done(done),
    }
    return JSONResponse(body)


@router.post(
    "/api/v1/agents/{name}/chat",
    response_model=None,
    responses={
        200: {
            "content": {SSE: {}},
            "description": "The answer: JSON, or server-sent events (see docs/agents.md).",
        },
        **problem_responses(401, 403, 404, 422, 429, 503),
    },
    summary="Send a message to an agent, in a new thread or one of yours",
)
async def chat(
    state: StateDep,
    caller: CallerDep,
    name: str,
    body: ChatIn,
    accept: Annotated[str | None, Header()] = None,
) -> StreamingResponse | JSONResponse:
    params = Params.from_mapping(body.params.as_mapping()) if body.params else Params()
    request = ChatRequest(
        name, body.message, body.thread, body.personality, params, body.toolChoice
    )
    turn = await state.chat.start(caller, request)
    streaming = body.stream if body.stream is not None else SSE in (accept or "")
    if not streaming:
        return await _answer(state, turn)
    headers = {"Cache-Control": "no-cache", "X-Mcpctl-Thread": turn.thread.id}
    return StreamingResponse(_stream(turn), media_type=SSE, headers=headers)
