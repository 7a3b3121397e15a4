"""``wire.answer_lazily``: the answer's own work (``answer()``) is done before it is written,
as JSON or as the end of an SSE stream; nothing of ours runs between the write and the
client's side waking up."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from starlette.types import Message

from mcpctl.jsonrpc import wire

pytestmark = pytest.mark.anyio


class Wire:
    """A stand-in ASGI receive and send that log, in order, what was written and when
    ``answer()`` ran."""

    def __init__(self) -> None:
        self.log: list[str] = []

    async def receive(self) -> Message:
        await asyncio.Event().wait()  # the client never goes away
        raise AssertionError("unreachable")

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.log.append("head")
        else:
            data = message["body"].decode().split("data: ")[-1].strip()  # the JSON, SSE or not
            self.log.append(f"body {data}")

    def answer(self) -> bytes:
        self.log.append("answer()")
        return b'{"id":1}'


async def done(value: Any) -> Any:
    return value


async def test_a_json_answer_is_made_before_anything_is_written() -> None:
    io = Wire()
    work = asyncio.ensure_future(done(None))
    written = await wire.answer_lazily(io.receive, io.send, work, wire.Outbox(), io.answer)
    assert written == b'{"id":1}'
    assert io.log == ["answer()", "head", 'body {"id":1}']


async def test_an_sse_answer_is_made_after_what_went_before_and_before_it_is_written() -> None:
    io = Wire()
    outbox = wire.Outbox()
    outbox.put(b'{"method":"notifications/progress"}')
    sent: list[bytes] = []
    work = asyncio.ensure_future(done(None))
    await wire.answer_lazily(io.receive, io.send, work, outbox, io.answer, sent.append)
    assert sent == [b'{"method":"notifications/progress"}']
    assert io.log == [
        "head",
        'body {"method":"notifications/progress"}',
        "answer()",
        'body {"id":1}',
    ]
