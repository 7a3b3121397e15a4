"""The OpenAI adapter against the real llama.cpp server (SmolLM2-135M, see tests/llm_server.py):
a completion, a stream, a forced tool call parsed into the internal format (whole and
streamed), and the tool's result sent back for a final answer. The model is tiny, so only the
shape of its answers is checked, never their sense."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from mcpctl.http11 import Origins
from mcpctl.mcpd.llm.adapters import BackendFailed, adapter_for
from mcpctl.mcpd.llm.adapters.base import Adapter
from mcpctl.mcpd.llm.messages import (
    Finish,
    Message,
    NamedTool,
    Params,
    Request,
    TextDelta,
    Tool,
    ToolCallDelta,
    arguments_object,
    collect,
)
from tests.llm_server import LlmServer
from tests.mcpd.llm.conftest import TIMEOUTS, drain

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

GET_TIME = Tool(
    "get_time",
    "The current time in a timezone.",
    {
        "type": "object",
        "properties": {"timezone": {"type": "string", "description": "e.g. Europe/Paris"}},
        "required": ["timezone"],
    },
)
QUESTION = Message.user("What time is it in Paris?")
SHORT = Params(temperature=0.0, max_tokens=24, seed=1)


@pytest.fixture
async def llama(llm_server: LlmServer) -> AsyncIterator[Adapter]:
    async with Origins() as client:
        yield adapter_for(
            "openai", url=llm_server.url, api_key=None, timeouts=TIMEOUTS, client=client
        )


def ask(llm_server: LlmServer, *messages: Message, **kwargs: object) -> Request:
    return Request(llm_server.model, list(messages), **kwargs)  # type: ignore[arg-type]


async def test_complete_returns_text_a_finish_reason_and_usage(
    llama: Adapter, llm_server: LlmServer
) -> None:
    answer = await llama.complete(ask(llm_server, QUESTION, params=SHORT))

    assert answer.message.role == "assistant"
    assert answer.message.content.strip()
    assert answer.message.tool_calls == ()
    assert answer.finish_reason in ("stop", "length")
    assert answer.usage is not None
    assert answer.usage.completion_tokens > 0
    assert answer.usage.total_tokens == answer.usage.prompt_tokens + answer.usage.completion_tokens


async def test_stream_yields_text_deltas_then_one_finish(
    llama: Adapter, llm_server: LlmServer
) -> None:
    events = await drain(llama.stream(ask(llm_server, QUESTION, params=SHORT)))

    *deltas, finish = events
    assert len(deltas) > 2
    assert all(isinstance(e, TextDelta) and e.text for e in deltas)
    assert isinstance(finish, Finish)
    assert finish.reason in ("stop", "length")
    assert collect(events).message.content.strip()


async def test_a_forced_tool_call_is_parsed_into_the_internal_format(
    llama: Adapter, llm_server: LlmServer
) -> None:
    request = ask(
        llm_server,
        QUESTION,
        tools=[GET_TIME],
        tool_choice=NamedTool("get_time"),
        params=Params(temperature=0.0, max_tokens=64),
    )

    answer = await llama.complete(request)

    assert answer.finish_reason == "tool_calls"
    (call,) = answer.message.tool_calls
    assert call.name == "get_time"
    assert call.id
    assert isinstance(arguments_object(call)["timezone"], str)


async def test_a_streamed_forced_tool_call_names_itself_once_then_streams_arguments(
    llama: Adapter, llm_server: LlmServer
) -> None:
    request = ask(
        llm_server,
        QUESTION,
        tools=[GET_TIME],
        tool_choice=NamedTool("get_time"),
        params=Params(temperature=0.0, max_tokens=64),
    )

    events = await drain(llama.stream(request))

    deltas = [e for e in events if isinstance(e, ToolCallDelta)]
    # llama.cpp repeats id and name on every delta; the adapter passes them on once.
    assert deltas[0].id
    assert deltas[0].name == "get_time"
    assert len(deltas) > 1
    assert all(d.index == 0 and d.id is None and d.name is None for d in deltas[1:])
    assert events[-1] == Finish("tool_calls")
    (call,) = collect(events).message.tool_calls
    assert isinstance(arguments_object(call)["timezone"], str)


async def test_a_tool_result_sent_back_yields_a_final_answer(
    llama: Adapter, llm_server: LlmServer
) -> None:
    forced = await llama.complete(
        ask(
            llm_server,
            QUESTION,
            tools=[GET_TIME],
            tool_choice=NamedTool("get_time"),
            params=Params(temperature=0.0, max_tokens=64),
        )
    )
    (call,) = forced.message.tool_calls

    final = await llama.complete(
        ask(
            llm_server,
            QUESTION,
            forced.message,
            Message.tool(call.id, "14:05"),
            tools=[GET_TIME],
            params=Params(temperature=0.0, max_tokens=32),
        )
    )

    assert final.message.tool_calls == ()
    assert final.message.content.strip()
    assert final.finish_reason in ("stop", "length")


async def test_a_wrong_base_url_is_a_final_404(llm_server: LlmServer) -> None:
    async with Origins() as client:
        adapter = adapter_for(
            "openai",
            url=llm_server.url.removesuffix("/v1"),
            api_key=None,
            timeouts=TIMEOUTS,
            client=client,
        )
        with pytest.raises(BackendFailed) as failed:
            await adapter.complete(ask(llm_server, QUESTION, params=SHORT))

    assert failed.value.status == 404
    assert not failed.value.retryable
