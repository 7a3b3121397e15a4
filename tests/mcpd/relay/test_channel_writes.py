"""How a relay channel's answers reach the wire (mcpd/relay/channel.py ``_deliver``): a call
writes its own answer only when nothing waits to be written before it, and is audited before
its answer is written.

A unit test: the ASGI ``send`` is a stand-in that can be held, to make the client read
slowly on demand (the live channel tests never get there)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any, cast

import pytest
from starlette.types import Message

from mcpctl.domain.caller import Caller
from mcpctl.mcpd.relay.channel import Channel
from mcpctl.mcpd.services.audit import AuditEvent

pytestmark = pytest.mark.anyio


class HeldSend:
    """An ASGI send that records what it wrote and waits while ``open`` is clear."""

    def __init__(self) -> None:
        self.written: list[bytes] = []
        self.open = asyncio.Event()
        self.open.set()
        self.entered = asyncio.Event()  # a write has begun

    async def __call__(self, message: Message) -> None:
        self.entered.set()
        await self.open.wait()
        self.written.append(message["body"])


def channel(send: HeldSend) -> Channel:
    out = Channel(cast(Any, None), cast(Any, None), cast(Any, None), cast(Any, None))
    out._send = send
    return out


async def test_an_answer_with_nothing_before_it_is_written_at_once() -> None:
    send = HeldSend()
    ch = channel(send)
    await ch._deliver({"id": 1})
    assert send.written == [b'{"id":1}\n']
    assert ch._out.empty()


async def test_an_answer_waits_behind_what_is_queued_before_it() -> None:
    send = HeldSend()
    ch = channel(send)
    ch._answer({"method": "notifications/progress"})  # not yet written by the writer
    await ch._deliver({"id": 1})
    assert send.written == []
    assert [ch._out.get_nowait(), ch._out.get_nowait()] == [
        {"method": "notifications/progress"},
        {"id": 1},
    ]


async def test_an_answer_waits_while_another_write_is_held_up() -> None:
    send = HeldSend()
    send.open.clear()  # the client reads slowly: the first write waits
    ch = channel(send)
    first = asyncio.ensure_future(ch._deliver({"id": 1}))
    await asyncio.sleep(0)
    await ch._deliver({"id": 2})  # must not overtake, nor interleave with, the first
    assert ch._out.get_nowait() == {"id": 2}
    send.open.set()
    await first
    assert send.written == [b'{"id":1}\n']


async def test_after_the_channel_ended_answers_are_only_queued() -> None:
    send = HeldSend()
    ch = channel(send)
    ch._send = None
    await ch._deliver({"id": 1})
    assert send.written == []
    assert ch._out.get_nowait() == {"id": 1}


class AnsweringRelay:
    """A stand-in StdioRelay: every call answers at once; audit events are kept."""

    def __init__(self) -> None:
        self.audited: list[AuditEvent] = []
        self.audit = SimpleNamespace(record=self.audited.append)

    async def call(self, *_: Any, **__: Any) -> dict[str, Any]:
        return {"content": []}


async def test_a_call_is_audited_before_its_answer_is_written() -> None:
    send = HeldSend()
    send.open.clear()
    relay = AnsweringRelay()
    session = SimpleNamespace(server="echo")
    ch = Channel(cast(Any, relay), cast(Any, None), cast(Any, session), cast(Any, None))
    ch._send = send
    serving = asyncio.ensure_future(
        ch._serve(Caller(user="alice"), 7, "tools/call", {"name": "hello"})
    )
    await send.entered.wait()  # the answer's write is under way, and held
    assert [(e.actor, e.name, e.details["tool"]) for e in relay.audited] == [
        ("alice", "echo", "hello")
    ]
    assert send.written == []
    send.open.set()
    await serving
    assert send.written == [b'{"jsonrpc":"2.0","id":7,"result":{"content":[]}}\n']
    assert len(relay.audited) == 1
