"""``model: agent:NAME`` on the OpenAI-compatible endpoint (docs/llms.md, "Agents as models").

The request goes to the agent's Llm (its pool, with failover) with the agent's system block
first (its default personality, or the one header ``X-Mcpctl-Personality`` names) and the
agent's ``defaultParams`` under the request's own. The caller needs ``run`` on the agent.
The project's tools are not offered nor run here: an OpenAI client runs its own tools.

Nothing is stored unless header ``X-Mcpctl-Thread`` says where: ``new`` (a thread titled
from the request's last user message) or the id of one of the caller's threads with this
agent. The header is checked before the Llm is asked; nothing is stored (nor a thread made)
until the Llm answers: then the request's messages (in a new thread all of them, in an existing
one those after the request's last assistant message: the user's message, or the results of
the tools the last answer called; system messages never) and, once complete, the answer; the
answer carries the thread's id in ``X-Mcpctl-Thread``. A request that fails before the answer
stores nothing; an answer that breaks off is not stored (the request's messages are).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, Sequence
from contextlib import aclosing
from dataclasses import dataclass, replace

from mcpctl.domain.caller import Caller
from mcpctl.errors import AppError, NotFound
from mcpctl.mcpd.llm.chat import ChatService, invalid, params_of, title_of, with_system
from mcpctl.mcpd.llm.messages import AnswerBuilder, Message, Request
from mcpctl.mcpd.llm.openai_wire import AGENT_PREFIX
from mcpctl.mcpd.llm.pools import Completion, PoolEvent, StreamFailed
from mcpctl.mcpd.services.threads import NewMessage, Thread

log = logging.getLogger(__name__)

THREAD_HEADER = "X-Mcpctl-Thread"
PERSONALITY_HEADER = "X-Mcpctl-Personality"
NEW_THREAD = "new"


def agent_of(model: str) -> str | None:
    """The agent ``model`` names (``agent:NAME``), or None for an Llm or a pool."""
    return model[len(AGENT_PREFIX) :] if model.startswith(AGENT_PREFIX) else None


def new_messages(messages: Sequence[Message]) -> list[Message]:
    """What a request adds to its conversation: the messages after its last assistant one,
    without system messages."""
    last = max((i for i, m in enumerate(messages) if m.role == "assistant"), default=-1)
    return [m for m in messages[last + 1 :] if m.role != "system"]


@dataclass(frozen=True)
class Keeping:
    """Where an exchange is stored: an existing thread, or a new one titled ``title``; and
    the request's messages to store with it."""

    thread: Thread | None
    title: str | None
    messages: list[Message]


class AgentCall:
    """A request to an agent's Llm, and how its exchange is stored (``keeping``, if at all)."""

    def __init__(
        self,
        chat: ChatService,
        owner: str,
        agent: str,
        word: str,
        request: Request,
        keeping: Keeping | None,
    ) -> None:
        self.chat = chat
        self.owner = owner
        self.agent = agent
        self.word = word
        self.request = request
        self.keeping = keeping
        self.thread = keeping.thread if keeping is not None else None

    @property
    def headers(self) -> list[tuple[bytes, bytes]]:
        """``X-Mcpctl-Thread`` once the thread is known (for a new one: once it answers)."""
        if self.thread is None:
            return []
        return [(THREAD_HEADER.lower().encode(), self.thread.id.encode())]

    async def complete(self) -> Completion:
        """The whole answer; the exchange stored in one append, if it is kept.

        Raises:
            AppError: as ``PoolDispatcher.complete``; NotFound: the thread was deleted
                meanwhile.
        """
        done = await self.chat.pools.complete(self.word, self.request)
        await self._keep([done.answer.message])
        return done

    async def stream(self) -> AsyncGenerator[PoolEvent, None]:
        """The answer's events, as ``PoolDispatcher.stream`` gives them. With the first, the
        request's messages are stored (so the thread is known for the response's headers);
        once the answer is complete, it is stored before the stream ends."""
        builder, started = AnswerBuilder(), False
        async with aclosing(self.chat.pools.stream(self.word, self.request)) as events:
            async for event in events:
                if not started:
                    await self._keep([])
                    started = True
                yield event
                if isinstance(event, StreamFailed):
                    return
                builder.add(event)
        if builder.finish_reason is not None and self.thread is not None:
            try:
                await self.chat.store.append(self.thread.id, [NewMessage.of(builder.message())])
            except AppError as exc:  # the thread was deleted meanwhile; the caller has it
                log.warning("the answer in chat thread %s was not stored: %s", self.thread.id, exc)

    async def _keep(self, answer: list[Message]) -> None:
        """Store the request's messages (and ``answer``), in a new thread if it is one."""
        keeping = self.keeping
        if keeping is None:
            return
        thread = keeping.thread
        if thread is None:
            assert keeping.title is not None
            thread = await self.chat.store.create_thread(self.agent, self.owner, keeping.title)
        self.thread = thread
        stored = [NewMessage.of(m) for m in [*keeping.messages, *answer]]
        await self.chat.store.append(thread.id, stored)


async def agent_call(
    chat: ChatService,
    caller: Caller,
    agent: str,
    request: Request,
    *,
    personality: str | None = None,
    thread: str | None = None,
) -> AgentCall:
    """``request`` (from the OpenAI endpoint) made for ``agent``, kept in ``thread`` if given.

    Raises:
        NotFound: no such agent (``model_not_found``), personality or thread.
        PermissionDenied: without ``run`` on the agent; another user's thread.
        InvalidInput: a thread of another agent; ``new`` without a user message.
    """
    try:
        block = await chat.resolve(caller, agent, personality or None)
    except NotFound as exc:
        if exc.message == f"agent/{agent} not found":
            raise NotFound(
                f"The model 'agent:{agent}' does not exist: no agent is called {agent!r}",
                details={"param": "model", "code": "model_not_found"},
            ) from exc
        raise NotFound(exc.message, details={"param": PERSONALITY_HEADER}) from exc
    sent = replace(
        request,
        messages=with_system(block, request.messages),
        params=params_of(block, request.params),
    )
    keeping = await _keeping(chat, caller, agent, request.messages, thread)
    return AgentCall(chat, caller.user, agent, block.spec.llm, sent, keeping)


async def _keeping(
    chat: ChatService,
    caller: Caller,
    agent: str,
    messages: Sequence[Message],
    header: str | None,
) -> Keeping | None:
    """Where the header says to keep the exchange, checked now (nothing is stored yet)."""
    if not header or not header.strip():
        return None
    if header.strip().lower() == NEW_THREAD:
        users = [m for m in messages if m.role == "user" and m.content.strip()]
        if not users:
            raise invalid(
                "messages", f"{THREAD_HEADER}: new needs a user message to title the thread from"
            )
        return Keeping(
            None, title_of(users[-1].content), [m for m in messages if m.role != "system"]
        )
    try:
        found = await chat.own_thread(caller, agent, header.strip())
    except AppError as exc:
        exc.details["param"] = THREAD_HEADER
        raise
    return Keeping(found, None, new_messages(messages))
