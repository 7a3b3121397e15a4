"""The OpenAI adapter against the scripted faulty backend: what it sends, how it reads good
answers, and which error, with which fields, each failure becomes. Every test also checks that
the backend was asked exactly once: adapters never retry."""

from __future__ import annotations

import email.utils
import json
import time

import pytest

from mcpctl.http11 import ConnectError, ConnectionLost, Origins, ReadTimeout
from mcpctl.mcpd.llm.adapters import (
    BackendFailed,
    BackendUnreachable,
    Timeouts,
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
    Garbage,
    Ok,
    Raw,
    Stall,
    rate_limited,
    refused_url,
)

pytestmark = pytest.mark.anyio

GET_TIME = Tool(
    "get_time",
    "The current time in a timezone.",
    {"type": "object", "properties": {"timezone": {"type": "string"}}, "required": ["timezone"]},
)
HELLO = Request("faulty-model", [Message.user("Hi")])
SHORT_READ = Timeouts(connect=5.0, read=0.3)


def openai(backend: FaultyBackend, http: Origins, **kwargs: object) -> Adapter:
    timeouts = kwargs.pop("timeouts", TIMEOUTS)
    assert isinstance(timeouts, Timeouts)
    api_key = kwargs.pop("api_key", None)
    assert api_key is None or isinstance(api_key, str)
    return adapter_for("openai", url=backend.url, api_key=api_key, timeouts=timeouts, client=http)


# -- what is sent ----------------------------------------------------------------------------


async def test_the_request_maps_messages_tools_choice_and_params(
    backend: FaultyBackend, http: Origins
) -> None:
    request = Request(
        "faulty-model",
        [
            Message.system("Be brief."),
            Message.user("Time in Paris?"),
            Message.assistant("", [ToolCall("call_1", "get_time", '{"timezone": "Europe/Paris"}')]),
            Message.tool("call_1", "14:05"),
        ],
        tools=[GET_TIME],
        tool_choice=NamedTool("get_time"),
        params=Params(
            temperature=0.0, top_p=0.9, max_tokens=32, stop=("END",), seed=7, extra={"top_k": 40}
        ),
    )

    await openai(backend, http, api_key="sk-test").complete(request)

    (served,) = backend.requests
    assert served.headers["authorization"] == "Bearer sk-test"
    assert served.body == {
        "top_k": 40,
        "model": "faulty-model",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Time in Paris?"},
            {
                "role": "assistant",
                "content": "",  # llama.cpp refuses null here
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {
                            "name": "get_time",
                            "arguments": '{"timezone": "Europe/Paris"}',
                        },
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": "14:05"},
        ],
        "tools": [
            {
                "type": "function",
                "function": {
                    "name": "get_time",
                    "description": "The current time in a timezone.",
                    "parameters": dict(GET_TIME.parameters),
                },
            }
        ],
        "tool_choice": {"type": "function", "function": {"name": "get_time"}},
        "temperature": 0.0,
        "top_p": 0.9,
        "max_tokens": 32,
        "stop": ["END"],
        "seed": 7,
    }


async def test_a_stream_asks_for_usage_and_extras_cannot_override_the_adapter(
    backend: FaultyBackend, http: Origins
) -> None:
    request = Request(
        "faulty-model",
        [Message.user("Hi")],
        tools=[GET_TIME],
        tool_choice="required",
        params=Params(extra={"model": "other", "stream": False, "stream_options": {}}),
    )

    await drain(openai(backend, http).stream(request))
    await openai(backend, http).complete(request)

    streamed, whole = backend.requests
    assert "authorization" not in streamed.headers
    assert streamed.body["model"] == "faulty-model"
    assert streamed.body["stream"] is True
    assert streamed.body["stream_options"] == {"include_usage": True}
    assert streamed.body["tool_choice"] == "required"
    assert "stream" not in whole.body
    assert "stream_options" not in whole.body


async def test_no_tool_choice_is_sent_without_tools(backend: FaultyBackend, http: Origins) -> None:
    await openai(backend, http).complete(
        Request("faulty-model", HELLO.messages, tool_choice="none")
    )

    assert "tool_choice" not in backend.requests[0].body


async def test_a_stream_sends_nothing_until_it_is_iterated(
    backend: FaultyBackend, http: Origins
) -> None:
    events = openai(backend, http).stream(HELLO)
    assert backend.requests == []

    first = await anext(events)
    await events.aclose()

    assert first == TextDelta("Hello")
    assert len(backend.requests) == 1


async def test_closing_a_stream_early_closes_the_connection_to_the_backend(
    backend: FaultyBackend, http: Origins
) -> None:
    backend.then(Stall(after=1))  # holds the rest of the answer until the client leaves
    events = openai(backend, http).stream(HELLO)

    assert await anext(events) == TextDelta("Hello")
    await events.aclose()

    await backend.wait_departure(1)


# -- good answers ----------------------------------------------------------------------------


async def test_complete_reads_text_tool_calls_finish_and_usage(
    backend: FaultyBackend, http: Origins
) -> None:
    backend.then(
        Ok(text="Let me check.", tool_calls=(FakeCall("get_time", '{"timezone": "UTC"}'),))
    )

    answer = await openai(backend, http).complete(HELLO)

    assert answer == Answer(
        Message.assistant(
            "Let me check.", [ToolCall("call_faulty_1_0", "get_time", '{"timezone": "UTC"}')]
        ),
        "tool_calls",
        Usage(11, 6, 17),
    )


async def test_a_stream_yields_text_and_tool_call_deltas_then_finish_then_usage(
    backend: FaultyBackend, http: Origins
) -> None:
    call = FakeCall("get_time", '{"timezone": "Europe/Paris"}')
    backend.then(Ok(text="One moment.", tool_calls=(call,)))

    events = await drain(openai(backend, http).stream(HELLO))

    deltas = [e for e in events if isinstance(e, ToolCallDelta)]
    assert events[:2] == [TextDelta("One"), TextDelta(" moment.")]
    assert deltas[0] == ToolCallDelta(0, deltas[0].arguments, "call_faulty_1_0", "get_time")
    assert all(d.id is None and d.name is None for d in deltas[1:])
    assert len(deltas) == 3
    assert events[-2:] == [Finish("tool_calls"), Usage(11, 5, 16)]
    assert collect(events).message.tool_calls == (
        ToolCall("call_faulty_1_0", "get_time", call.arguments),
    )


async def test_a_length_finish_is_kept(backend: FaultyBackend, http: Origins) -> None:
    backend.then(Ok(text="Cut", finish="length"), Ok(text="Cut", finish="length"))

    answer = await openai(backend, http).complete(HELLO)
    events = await drain(openai(backend, http).stream(HELLO))

    assert answer.finish_reason == "length"
    assert Finish("length") in events


async def test_server_sent_events_are_read_by_the_rules_of_the_format(
    backend: FaultyBackend, http: Origins
) -> None:
    # CRLF line ends, a comment, a data field split over two lines, no space after "data:",
    # a usage chunk without choices, and a final event without its blank line.
    chunk = {"choices": [{"index": 0, "delta": {"content": "Hi"}, "finish_reason": None}]}
    done = {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
    usage = {"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 1}}
    body = (
        b": keep-alive\r\n\r\n"
        b"data:" + json.dumps(chunk).encode() + b"\r\n\r\n"
        b'data: {"choices": [{"index": 0,\r\ndata: "delta": {"content": " there"}}]}\r\n\r\n'
        b"data: " + json.dumps(done).encode() + b"\r\n\r\n"
        b"data: " + json.dumps(usage).encode() + b"\r\n\r\n"
        b"data: [DONE]"
    )
    backend.then(Raw(body))

    events = await drain(openai(backend, http).stream(HELLO))

    assert events == [TextDelta("Hi"), TextDelta(" there"), Finish("stop"), Usage(3, 1, 4)]


async def test_a_backend_that_answers_a_stream_with_json_is_read_as_one_answer(
    backend: FaultyBackend, http: Origins
) -> None:
    answer = {
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Whole"}}],
        "usage": {"prompt_tokens": 2, "completion_tokens": 1, "total_tokens": 3},
    }
    backend.then(Raw(json.dumps(answer).encode(), "application/json"))

    events = await drain(openai(backend, http).stream(HELLO))

    assert events == [TextDelta("Whole"), Finish("stop"), Usage(2, 1, 3)]


# -- failures before anything was sent to the caller ------------------------------------------


@pytest.mark.parametrize("streamed", [False, True], ids=["complete", "stream"])
async def test_a_500_is_a_retryable_failure(
    backend: FaultyBackend, http: Origins, streamed: bool
) -> None:
    backend.then(Fail(500, "the GPU fell over"))

    failed = await fail(openai(backend, http), streamed)

    assert isinstance(failed, BackendFailed)
    assert (failed.status, failed.message, failed.retryable) == (500, "the GPU fell over", True)
    assert failed.retry_after is None
    assert len(backend.requests) == 1


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
@pytest.mark.parametrize("streamed", [False, True], ids=["complete", "stream"])
async def test_client_errors_are_final(
    backend: FaultyBackend, http: Origins, status: int, streamed: bool
) -> None:
    backend.then(Fail(status, "no"))

    failed = await fail(openai(backend, http), streamed)

    assert isinstance(failed, BackendFailed)
    assert (failed.status, failed.message, failed.retryable) == (status, "no", False)
    assert len(backend.requests) == 1


@pytest.mark.parametrize("streamed", [False, True], ids=["complete", "stream"])
async def test_a_429_is_retryable_and_carries_retry_after(
    backend: FaultyBackend, http: Origins, streamed: bool
) -> None:
    backend.then(rate_limited("7"))

    failed = await fail(openai(backend, http), streamed)

    assert isinstance(failed, BackendFailed)
    assert (failed.status, failed.retryable, failed.retry_after) == (429, True, 7.0)
    assert len(backend.requests) == 1


async def test_retry_after_as_an_http_date_becomes_seconds(
    backend: FaultyBackend, http: Origins
) -> None:
    backend.then(rate_limited(email.utils.formatdate(time.time() + 120, usegmt=True)))

    failed = await fail(openai(backend, http), streamed=False)

    assert isinstance(failed, BackendFailed)
    assert failed.retry_after is not None
    assert 100 < failed.retry_after <= 120


@pytest.mark.parametrize("streamed", [False, True], ids=["complete", "stream"])
async def test_a_refused_connection_is_unreachable(http: Origins, streamed: bool) -> None:
    with refused_url() as url:
        adapter = adapter_for("openai", url=url, api_key=None, timeouts=TIMEOUTS, client=http)
        failed = await fail(adapter, streamed)

    assert isinstance(failed, BackendUnreachable)
    assert failed.retryable
    assert "cannot connect" in failed.message
    assert isinstance(failed.__cause__, ConnectError)


@pytest.mark.parametrize("streamed", [False, True], ids=["complete", "stream"])
async def test_a_slow_first_byte_is_a_read_timeout(
    backend: FaultyBackend, http: Origins, streamed: bool
) -> None:
    backend.then(Stall())

    started = time.monotonic()
    failed = await fail(openai(backend, http, timeouts=SHORT_READ), streamed)

    assert isinstance(failed, BackendUnreachable)
    assert "read timeout" in failed.message
    assert isinstance(failed.__cause__, ReadTimeout)
    assert time.monotonic() - started < 5
    assert len(backend.requests) == 1


async def test_a_slow_first_byte_within_the_read_timeout_is_answered(
    backend: FaultyBackend, http: Origins
) -> None:
    backend.then(Stall(seconds=0.05))

    answer = await openai(backend, http).complete(HELLO)

    assert answer.message.content == Ok().text


async def test_a_stream_cut_before_any_content_is_unreachable(
    backend: FaultyBackend, http: Origins
) -> None:
    backend.then(Drop(after=0))

    failed = await fail(openai(backend, http), streamed=True)

    assert isinstance(failed, BackendUnreachable)
    assert isinstance(failed.__cause__, ConnectionLost)


async def test_an_answer_cut_halfway_is_unreachable(backend: FaultyBackend, http: Origins) -> None:
    backend.then(Drop())

    failed = await fail(openai(backend, http), streamed=False)

    assert isinstance(failed, BackendUnreachable)


async def test_an_error_event_before_any_content_is_a_failure_with_its_status(
    backend: FaultyBackend, http: Origins
) -> None:
    backend.then(ErrorEvent(after=0, status=503, message="overloaded"))

    failed = await fail(openai(backend, http), streamed=True)

    assert isinstance(failed, BackendFailed)
    assert (failed.status, failed.message, failed.retryable) == (503, "overloaded", True)


@pytest.mark.parametrize("streamed", [False, True], ids=["complete", "stream"])
async def test_an_answer_that_is_not_the_api_is_a_502(
    backend: FaultyBackend, http: Origins, streamed: bool
) -> None:
    backend.then(Garbage())

    failed = await fail(openai(backend, http), streamed)

    assert isinstance(failed, BackendFailed)
    assert (failed.status, failed.retryable) == (502, True)


# -- failures after the caller saw text -------------------------------------------------------


async def test_a_connection_dropped_after_the_first_chunk_breaks_the_stream(
    backend: FaultyBackend, http: Origins
) -> None:
    backend.then(Drop(after=1))

    seen, broken = await until_broken(openai(backend, http).stream(HELLO))

    assert seen == [TextDelta("Hello")]
    assert not broken.retryable
    assert "broke off" in broken.message
    assert isinstance(broken.__cause__, ConnectionLost)
    assert len(backend.requests) == 1


async def test_a_stall_after_the_first_chunk_breaks_the_stream(
    backend: FaultyBackend, http: Origins
) -> None:
    backend.then(Stall(after=1))

    seen, broken = await until_broken(openai(backend, http, timeouts=SHORT_READ).stream(HELLO))

    assert seen == [TextDelta("Hello")]
    assert "read timeout" in broken.message


async def test_an_error_event_after_the_first_chunk_breaks_the_stream(
    backend: FaultyBackend, http: Origins
) -> None:
    backend.then(ErrorEvent(after=2, status=500, message="CUDA error"))

    seen, broken = await until_broken(openai(backend, http).stream(HELLO))

    assert seen == [TextDelta("Hello"), TextDelta(" from")]
    assert isinstance(broken.__cause__, BackendFailed)
    assert "CUDA error" in broken.message


async def test_a_stream_that_ends_without_finishing_breaks(
    backend: FaultyBackend, http: Origins
) -> None:
    chunk = {"choices": [{"index": 0, "delta": {"content": "Hi"}, "finish_reason": None}]}
    backend.then(Raw(b"data: " + json.dumps(chunk).encode() + b"\n\n"))

    seen, broken = await until_broken(openai(backend, http).stream(HELLO))

    assert seen == [TextDelta("Hi")]
    assert "before the answer finished" in broken.message


# -- helpers ---------------------------------------------------------------------------------


async def fail(adapter: Adapter, streamed: bool) -> Exception:
    """The exception that completing or streaming HELLO raises (streamed: at the first event)."""
    try:
        if streamed:
            events = adapter.stream(HELLO)
            try:
                await anext(events)
            finally:
                await events.aclose()
        else:
            await adapter.complete(HELLO)
    except Exception as exc:
        return exc
    raise AssertionError("the call did not fail")
