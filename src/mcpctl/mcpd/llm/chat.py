"""Agent chat: one user message to an agent, in a new or an existing thread, answered by the
agent's Llm with the tools of its project (docs/agents.md, "Chat").

    turn = await chat.start(caller, ChatRequest("helper", "What time is it in Tokyo?"))
    async for event in turn.events():   # ThreadOpened, TextChunk, ToolCalled, ToolAnswered,
        ...                             # then Done or Failed (always last)

``start`` does everything that can refuse the request (problem+json before any answer):
``run`` on the agent, the agent and personality, the thread (the caller's own, of this agent),
the tool choice. Then it stores the user's message (a new thread is titled from it) before
any LLM is asked, so a crash loses nothing the user wrote. ``events`` runs the loop:

- the messages sent are the system block (rebuilt at every turn, never stored), the thread's
  stored messages, and the new one; the request goes to the agent's Llm through the pool
  dispatcher (its pool fails over before the first chunk), with the agent's ``defaultParams``
  under the caller's ``params`` (and the Llm's own under both);
- when the answer calls tools, each is run (``agent_tools.py``) and the assistant's message
  with its calls and every result are stored together, in one append, so that a stored
  thread never holds a call without its result; then the LLM is asked again with them;
- at most ``max_tool_rounds`` rounds of tool calls per user message: the next request offers
  the tools with ``tool_choice: none``; calls the model makes anyway are answered
  ``error: not run`` and the turn ends;
- the final assistant message is stored, and ``Done`` says what was said and what it cost.

A failure after ``start`` (no active Llm, every member failed, the stream broke after its
first chunk) ends the events with ``Failed``. The answer being written when it broke is not
stored: the thread keeps the user's message and every complete tool round before it, and
the next message continues from there.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Callable, Sequence
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any

from mcpctl.domain.caller import Caller
from mcpctl.errors import AppError, InvalidInput, NotFound, PermissionDenied
from mcpctl.mcpd.db.uow import UnitOfWorkFactory
from mcpctl.mcpd.llm.agent_tools import Toolbox, ToolResult, open_toolbox
from mcpctl.mcpd.llm.messages import (
    AnswerBuilder,
    FinishReason,
    Message,
    NamedTool,
    Params,
    Request,
    TextDelta,
    ToolCall,
    ToolChoice,
    Usage,
)
from mcpctl.mcpd.llm.pools import PoolDispatcher, StreamFailed
from mcpctl.mcpd.llm.server_calls import ServerLinks
from mcpctl.mcpd.services.agents import AgentBlock, AgentService
from mcpctl.mcpd.services.audit import AuditLog, event_for
from mcpctl.mcpd.services.authz import Authorizer
from mcpctl.mcpd.services.threads import THREADS, NewMessage, StoredMessage, Thread, ThreadStore
from mcpctl.resources.projects import ProjectSpec

TITLE_LENGTH = 60
CHOICES: dict[str, ToolChoice] = {"auto": "auto", "none": "none", "required": "required"}


def invalid(field: str, message: str) -> InvalidInput:
    """Bad input naming ``field`` (as the REST API's problems and OpenAI's ``param`` do)."""
    return InvalidInput(
        f"{field}: {message}",
        details={"param": field, "errors": [{"path": field, "message": message}]},
    )


def title_of(text: str) -> str:
    """A thread's title: the first message's words on one line, cut at ``TITLE_LENGTH``."""
    line = " ".join(text.split())
    return line if len(line) <= TITLE_LENGTH else line[: TITLE_LENGTH - 1].rstrip() + "…"


def params_of(block: AgentBlock, override: Params) -> Params:
    """The agent's ``defaultParams`` with the call's own on top."""
    return Params.from_mapping(block.spec.defaultParams.as_mapping()).merged(override)


def with_system(block: AgentBlock, messages: Sequence[Message]) -> list[Message]:
    text = block.block.text
    return [Message.system(text), *messages] if text.strip() else list(messages)


# -- what a turn reports ---------------------------------------------------------------------


@dataclass(frozen=True)
class ChatRequest:
    """One user message to ``agent``. ``tool_choice``: auto, none, required or a tool's name,
    for the first request of the turn only (later ones let the model choose)."""

    agent: str
    message: str
    thread: str | None = None
    personality: str | None = None
    params: Params = field(default_factory=Params)
    tool_choice: str | None = None


@dataclass(frozen=True)
class ThreadOpened:
    thread: Thread
    created: bool
    personality: str | None
    stored: tuple[StoredMessage, ...]  # the user's message


@dataclass(frozen=True)
class TextChunk:
    text: str


@dataclass(frozen=True)
class ToolCalled:
    call: ToolCall


@dataclass(frozen=True)
class ToolAnswered:
    result: ToolResult


@dataclass(frozen=True)
class Done:
    """The turn's end: the final answer's text, everything stored during the turn (the user's
    message first), the Llm of the last request, the tokens of every request added up."""

    answer: str
    finish_reason: FinishReason
    stored: tuple[StoredMessage, ...]
    llm: str | None
    usage: Usage | None
    tool_rounds: int


@dataclass(frozen=True)
class Failed:
    error: AppError
    stored: tuple[StoredMessage, ...]


ChatEvent = ThreadOpened | TextChunk | ToolCalled | ToolAnswered | Done | Failed


def _add(total: Usage | None, more: Usage | None) -> Usage | None:
    if total is None or more is None:
        return more or total
    return Usage(
        total.prompt_tokens + more.prompt_tokens,
        total.completion_tokens + more.completion_tokens,
        total.total_tokens + more.total_tokens,
    )


# -- the service -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ChatLimits:
    max_tool_rounds: int = 8


class ChatService:
    def __init__(
        self,
        *,
        uows: UnitOfWorkFactory,
        agents: AgentService,
        store: ThreadStore,
        pools: PoolDispatcher,
        links: Callable[[], ServerLinks],  # a fresh set per turn
        authz: Authorizer,
        audit: AuditLog,
        limits: ChatLimits | None = None,
    ) -> None:
        self.uows = uows
        self.agents = agents
        self.store = store
        self.pools = pools
        self.links = links
        self.authz = authz
        self.audit = audit
        self.limits = limits or ChatLimits()

    async def start(self, caller: Caller, request: ChatRequest) -> ChatTurn:
        """Check the request, open the thread and store the user's message.

        Raises:
            PermissionDenied: without ``run`` on the agent; another user's thread, for a
                caller who may view threads. NotFound: no such agent, personality or thread
                (another user's thread too, for a caller who may not view threads).
            InvalidInput: an empty message, a thread of another agent, an unknown tool choice.
        """
        if not request.message.strip():
            raise invalid("message", "must not be empty")
        block = await self.resolve(caller, request.agent, request.personality)
        params = params_of(block, request.params)
        thread = await self.own_thread(caller, request.agent, request.thread)
        toolbox = await open_toolbox(
            self.links(), await self._project(block), self.authz, self.audit
        )
        try:
            choice = _tool_choice(request.tool_choice, toolbox)
            history: list[Message] = []
            if thread is None:
                thread = await self.store.create_thread(
                    request.agent, caller.user, title_of(request.message)
                )
                created = True
            else:
                history = [m.to_message() for m in await self.store.messages(thread.id)]
                created = False
            user = Message.user(request.message)
            stored = await self.store.append(thread.id, [NewMessage.of(user)])
        except BaseException:
            await toolbox.aclose()
            raise
        opened = ThreadOpened(thread, created, block.personality, tuple(stored))
        messages = with_system(block, [*history, user])
        return ChatTurn(self, caller, block, opened, messages, params, choice, toolbox)

    async def resolve(self, caller: Caller, agent: str, personality: str | None) -> AgentBlock:
        """The agent with its system block, for a caller who may run it.

        Raises:
            PermissionDenied: without ``run`` on the agent. NotFound.
        """
        self.authz.authorize(caller, "run", "agents", agent)
        return await self.agents.resolve(agent, personality)

    async def own_thread(self, caller: Caller, agent: str, thread_id: str | None) -> Thread | None:
        """The caller's thread ``thread_id`` with ``agent`` (None for none).

        Raises:
            NotFound, PermissionDenied, InvalidInput: see ``start``.
        """
        if thread_id is None:
            return None
        try:
            thread = await self.store.get_thread(thread_id)
        except NotFound as exc:
            raise NotFound(str(exc), details={"param": "thread"}) from exc
        if thread.owner != caller.user:
            if not self.authz.allows(caller, "view", THREADS, thread_id):
                raise NotFound(f"thread {thread_id!r} not found", details={"param": "thread"})
            raise PermissionDenied(
                f"thread {thread_id!r} is {thread.owner}'s: only its owner may continue it",
                details={"param": "thread"},
            )
        if thread.agent != agent:
            raise invalid(
                "thread", f"{thread_id!r} is a thread with agent {thread.agent!r}, not {agent!r}"
            )
        return thread

    async def _project(self, block: AgentBlock) -> ProjectSpec | None:
        if block.spec.project is None:
            return None
        async with self.uows.read() as uow:
            row = await uow.objects.get("Project", block.spec.project)
        return ProjectSpec.model_validate(row.spec) if row is not None else None

    def record(self, caller: Caller, agent: str, end: Done | Failed, thread: str) -> None:
        """The audit event of one turn: verb ``chat`` on the Agent."""
        details: dict[str, Any] = {"thread": thread}
        if isinstance(end, Done):
            details.update(llm=end.llm, toolRounds=end.tool_rounds)
        error = end.error if isinstance(end, Failed) else None
        self.audit.record(event_for(caller, "chat", "Agent", agent, error=error, details=details))


def _tool_choice(value: str | None, toolbox: Toolbox) -> ToolChoice | None:
    """Raises: InvalidInput naming ``toolChoice``."""
    if value is None:
        return None
    offered = [t.name for t in toolbox.offered()]
    if not offered:
        raise invalid(
            "toolChoice", "this agent offers no tools (it has no project, or its servers list none)"
        )
    if value in CHOICES:
        return CHOICES[value]
    if value not in offered:
        raise invalid(
            "toolChoice",
            f"{value!r} is neither auto, none, required nor one of the agent's tools "
            f"({', '.join(offered)})",
        )
    return NamedTool(value)


class ChatTurn:
    """One started turn; iterate ``events()`` once."""

    def __init__(
        self,
        chat: ChatService,
        caller: Caller,
        block: AgentBlock,
        opened: ThreadOpened,
        messages: list[Message],
        params: Params,
        choice: ToolChoice | None,
        toolbox: Toolbox,
    ) -> None:
        self.chat = chat
        self.caller = caller
        self.block = block
        self.opened = opened
        self.messages = messages
        self.params = params
        self.choice = choice
        self.toolbox = toolbox
        self.stored: list[StoredMessage] = list(opened.stored)
        self.usage: Usage | None = None
        self.llm: str | None = None

    @property
    def thread(self) -> Thread:
        return self.opened.thread

    async def events(self) -> AsyncGenerator[ChatEvent, None]:
        """The turn as it happens; the last event is ``Done`` or ``Failed``."""
        yield self.opened
        try:
            async for event in self._rounds():
                yield event
        except AppError as exc:  # storing failed: the thread was deleted meanwhile, say
            yield self._failed(exc)
        finally:
            await self.toolbox.aclose()

    async def _rounds(self) -> AsyncIterator[ChatEvent]:
        tools = self.toolbox.offered()
        limit = self.chat.limits.max_tool_rounds
        choice = self.choice
        for round_number in range(limit + 1):
            if round_number == limit and tools:
                choice = "none"
            request = Request("", self.messages, tools, choice if tools else None, self.params)
            builder = AnswerBuilder()
            async for event in self._ask(request, builder):
                yield event
                if isinstance(event, Failed):
                    return
            message = builder.message()
            if message.tool_calls and round_number < limit:
                async for event in self._run_tools(message):
                    yield event
                choice = None
                continue
            async for event in self._end(message, builder.finish_reason or "stop", round_number):
                yield event
            return

    async def _ask(self, request: Request, builder: AnswerBuilder) -> AsyncIterator[ChatEvent]:
        """One request to the agent's Llm: its text as it comes; ``Failed`` if it fails."""
        stream = self.chat.pools.stream(self.block.spec.llm, request)
        try:
            async with aclosing(stream) as events:
                async for event in events:
                    if isinstance(event, StreamFailed):
                        self.llm = event.llm
                        yield self._failed(event.error)
                        return
                    builder.add(event)
                    if isinstance(event, TextDelta) and event.text:
                        yield TextChunk(event.text)
        except AppError as exc:
            yield self._failed(exc)
            return
        self.llm = stream.served_by
        self.usage = _add(self.usage, builder.usage)

    async def _run_tools(self, message: Message) -> AsyncIterator[ChatEvent]:
        for call in message.tool_calls:
            yield ToolCalled(call)
        results: list[Message] = []
        for call in message.tool_calls:
            result = await self.toolbox.call(self.caller, call)
            yield ToolAnswered(result)
            results.append(Message.tool(call.id, result.text))
        await self._store([message, *results])

    async def _end(
        self, message: Message, finish: FinishReason, round_number: int
    ) -> AsyncIterator[ChatEvent]:
        limit = self.chat.limits.max_tool_rounds
        unanswered = [
            Message.tool(
                call.id, f"error: not run: the limit of {limit} tool rounds per message was reached"
            )
            for call in message.tool_calls
        ]
        for call, result in zip(message.tool_calls, unanswered, strict=True):
            yield ToolCalled(call)
            yield ToolAnswered(ToolResult(call, result.content, True))
        await self._store([message, *unanswered])
        done = Done(
            message.content,
            finish,
            tuple(self.stored),
            self.llm,
            self.usage,
            round_number,
        )
        self.chat.record(self.caller, self.block.agent, done, self.thread.id)
        yield done

    async def _store(self, messages: list[Message]) -> None:
        self.stored += await self.chat.store.append(
            self.thread.id, [NewMessage.of(m) for m in messages]
        )
        self.messages += messages

    def _failed(self, error: AppError) -> Failed:
        failed = Failed(error, tuple(self.stored))
        self.chat.record(self.caller, self.block.agent, failed, self.thread.id)
        return failed
