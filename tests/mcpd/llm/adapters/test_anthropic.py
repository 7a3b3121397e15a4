"""The Anthropic adapter against the faulty backend's Anthropic dialect (no real Anthropic
server exists offline): the request mapping (system, tools, tool_use and tool_result blocks),
answers and streams (input_json_delta assembly), and errors."""

from __future__ import annotations

import json

import pytest

from mcpctl.http11 import Origins
from mcpctl.mcpd.llm.adapters import (
    BackendFailed,
    BackendUnreachable,
    RequestNotMappable,
    StreamBroken,
    adapter_for,
)
from mcpctl.mcpd.llm.adapters.base import Adapter
from mcpctl.mcpd.llm.messages import (
    Answer,
    Finish,
    Message,
    NamedTool,
    Params,
    Request,
    TextDelta,
    Tool,
    ToolCall,
    ToolCallDelta,
    Usage,
    collect,
)
from tests.mcpd.llm.conftest import TIMEOUTS, drain, until_broken
from tests.mcpd.llm.faulty_backend import (
    Drop,
    ErrorEvent,
    Fail,
    FakeCall,
    FaultyBackend,
    Ok,
    Raw,
    rate_limited,
)

pytestmark = pytest.mark.anyio

GET_TIME = Tool(
    "get_time",
    "The current time in a timezone.",
    {"type": "object", "properties": {"timezone": {"type": "string"}}, "required": ["timezone"]},
)
HELLO = Request("claude-test", [Message.user("Hi")])
CONVERSATION = [
    Message.system("Be brief."),
    Message.user("Time in Paris and Tokyo?"),
    Message.assistant(
        "Checking both.",
        [
            ToolCall("toolu_1", "get_time", '{"timezone": "Europe/Paris"}'),
            ToolCall("toolu_2", "get_time", '{"timezone": "Asia/Tokyo"}'),
        ],
    ),
    Message.tool("toolu_1", "14:05"),
    Message.tool("toolu_2", "21:05"),
    Message.system("Answer in one line."),
]


def anthropic(backend: FaultyBackend, http: Origins, api_key: str | None = None) -> Adapter:
    return adapter_for(
        "anthropic", url=backend.anthropic_url, api_key=api_key, timeouts=TIMEOUTS, client=http
    )


# -- what is sent ----------------------------------------------------------------------------


async def test_the_request_maps_system_tool_use_and_tool_results(
    backend: FaultyBackend, http: Origins
) -> None:
    request = Request(
        "claude-test",
        CONVERSATION,
        tools=[GET_TIME],
        tool_choice=NamedTool("get_time"),
        params=Params(temperature=0.5, top_p=0.9, stop=("END",), seed=7, extra={"top_k": 5}),
    )

    await anthropic(backend, http, api_key="sk-ant-test").complete(request)

    (served,) = backend.requests
    assert served.dialect == "anthropic"
    assert served.headers["x-api-key"] == "sk-ant-test"
    assert served.headers["anthropic-version"] == "2023-06-01"
    assert "authorization" not in served.headers
    assert served.body == {
        "top_k": 5,
        "model": "claude-test",
        "max_tokens": 1024,
        "system": "Be brief.\n\nAnswer in one line.",
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "Time in Paris and Tokyo?"}]},
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": "Checking both."},
                    {
                        "type": "tool_use",
                        "id": "toolu_1",
                        "name": "get_time",
                        "input": {"timezone": "Europe/Paris"},
                    },
                    {
                        "type": "tool_use",
                        "id": "toolu_2",
                        "name": "get_time",
                        "input": {"timezone": "Asia/Tokyo"},
                    },
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_1", "content": "14:05"},
                    {"type": "tool_result", "tool_use_id": "toolu_2", "content": "21:05"},
                ],
            },
        ],
        "tools": [
            {
                "name": "get_time",
                "description": "The current time in a timezone.",
                "input_schema": dict(GET_TIME.parameters),
            }
        ],
        "tool_choice": {"type": "tool", "name": "get_time"},
        "temperature": 0.5,
        "top_p": 0.9,
        "stop_sequences": ["END"],
    }


@pytest.mark.parametrize(
    ("choice", "sent"),
    [("auto", {"type": "auto"}), ("required", {"type": "any"}), ("none", {"type": "none"})],
)
async def test_tool_choice_maps_to_anthropic_names_and_max_tokens_comes_from_params(
    backend: FaultyBackend, http: Origins, choice: str, sent: dict[str, str]
) -> None:
    request = Request(
        "claude-test",
        [Message.user("Hi")],
        tools=[GET_TIME],
        tool_choice=choice,  # type: ignore[arg-type]
        params=Params(max_tokens=64),
    )

    await drain(anthropic(backend, http).stream(request))

    body = backend.requests[0].body
    assert body["tool_choice"] == sent
    assert body["max_tokens"] == 64
    assert body["stream"] is True


async def test_tool_call_arguments_that_are_not_an_object_cannot_be_sent(
    backend: FaultyBackend, http: Origins
) -> None:
    bad = Request(
        "claude-test",
        [Message.user("Hi"), Message.assistant("", [ToolCall("toolu_1", "f", '{"cut": ')])],
    )
    adapter = anthropic(backend, http)

    with pytest.raises(RequestNotMappable, match="toolu_1") as raised:
        await adapter.complete(bad)
    events = adapter.stream(bad)
    with pytest.raises(RequestNotMappable):
        await anext(events)

    assert not raised.value.retryable
    assert backend.requests == []


# -- good answers ----------------------------------------------------------------------------


async def test_complete_reads_text_tool_use_stop_reason_and_usage(
    backend: FaultyBackend, http: Origins
) -> None:
    backend.then(Ok(text="Checking.", tool_calls=(FakeCall("get_time", '{"timezone": "UTC"}'),)))

    answer = await anthropic(backend, http).complete(HELLO)

    assert answer == Answer(
        Message.assistant(
            "Checking.", [ToolCall("toolu_faulty_1_0", "get_time", '{"timezone": "UTC"}')]
        ),
        "tool_calls",
        Usage(11, 4, 15),
    )


async def test_a_stream_assembles_tool_arguments_from_input_json_deltas(
    backend: FaultyBackend, http: Origins
) -> None:
    paris = FakeCall("get_time", '{"timezone": "Europe/Paris"}')
    tokyo = FakeCall("get_time", '{"timezone": "Asia/Tokyo"}')
    backend.then(Ok(text="Two calls.", tool_calls=(paris, tokyo)))

    events = await drain(anthropic(backend, http).stream(HELLO))

    assert events[:2] == [TextDelta("Two"), TextDelta(" calls.")]
    starts = [e for e in events if isinstance(e, ToolCallDelta) and e.id is not None]
    assert starts == [
        ToolCallDelta(0, "", "toolu_faulty_1_0", "get_time"),
        ToolCallDelta(1, "", "toolu_faulty_1_1", "get_time"),
    ]
    assert events[-2:] == [Finish("tool_calls"), Usage(11, 8, 19)]
    assert collect(events).message.tool_calls == (
        ToolCall("toolu_faulty_1_0", "get_time", paris.arguments),
        ToolCall("toolu_faulty_1_1", "get_time", tokyo.arguments),
    )


async def test_a_streamed_tool_call_without_arguments_gets_an_empty_object(
    backend: FaultyBackend, http: Origins
) -> None:
    backend.then(Ok(text="", tool_calls=(FakeCall("now", ""),)))

    answer = collect(await drain(anthropic(backend, http).stream(HELLO)))

    assert answer.message.tool_calls == (ToolCall("toolu_faulty_1_0", "now", "{}"),)


@pytest.mark.parametrize(
    ("stop_reason", "finish"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("refusal", "content_filter"),
    ],
)
async def test_stop_reasons_map_to_finish_reasons(
    backend: FaultyBackend, http: Origins, stop_reason: str, finish: str
) -> None:
    backend.then(Ok(finish=stop_reason), Ok(finish=stop_reason))

    answer = await anthropic(backend, http).complete(HELLO)
    events = await drain(anthropic(backend, http).stream(HELLO))

    assert answer.finish_reason == finish
    assert Finish(finish) in events


# -- errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "retryable"), [(401, False), (400, False), (500, True), (529, True)]
)
async def test_error_statuses_keep_status_message_and_retryability(
    backend: FaultyBackend, http: Origins, status: int, retryable: bool
) -> None:
    backend.then(Fail(status, "nope"))

    with pytest.raises(BackendFailed) as failed:
        await anthropic(backend, http).complete(HELLO)

    assert (failed.value.status, failed.value.message) == (status, "nope")
    assert failed.value.retryable is retryable


async def test_a_429_carries_retry_after(backend: FaultyBackend, http: Origins) -> None:
    backend.then(rate_limited("3"))

    events = anthropic(backend, http).stream(HELLO)
    with pytest.raises(BackendFailed) as failed:
        await anext(events)

    assert (failed.value.status, failed.value.retry_after) == (429, 3.0)


async def test_an_overloaded_event_before_any_content_is_a_retryable_529(
    backend: FaultyBackend, http: Origins
) -> None:
    backend.then(ErrorEvent(after=0, status=529, message="Overloaded"))

    events = anthropic(backend, http).stream(HELLO)
    with pytest.raises(BackendFailed) as failed:
        await anext(events)

    assert (failed.value.status, failed.value.message, failed.value.retryable) == (
        529,
        "Overloaded",
        True,
    )


async def test_an_error_event_after_content_breaks_the_stream(
    backend: FaultyBackend, http: Origins
) -> None:
    backend.then(ErrorEvent(after=1, status=529, message="Overloaded"))

    seen, broken = await until_broken(anthropic(backend, http).stream(HELLO))

    assert seen == [TextDelta("Hello")]
    assert "Overloaded" in broken.message
    assert not broken.retryable


async def test_a_dropped_connection_before_and_after_content(
    backend: FaultyBackend, http: Origins
) -> None:
    backend.then(Drop(after=0), Drop(after=1))
    adapter = anthropic(backend, http)

    with pytest.raises(BackendUnreachable):
        await drain(adapter.stream(HELLO))
    with pytest.raises(StreamBroken):
        await drain(adapter.stream(HELLO))


async def test_a_stream_without_message_stop_is_incomplete(
    backend: FaultyBackend, http: Origins
) -> None:
    delta = {
        "type": "content_block_delta",
        "index": 0,
        "delta": {"type": "text_delta", "text": "Hi"},
    }
    start = {
        "type": "content_block_start",
        "index": 0,
        "content_block": {"type": "text", "text": ""},
    }
    body = b"".join(
        f"event: {e['type']}\ndata: {json.dumps(e)}\n\n".encode() for e in (start, delta)
    )
    backend.then(Raw(body))

    with pytest.raises(StreamBroken, match="message_stop"):
        await drain(anthropic(backend, http).stream(HELLO))
