"""Fixtures for the LLM layer: the real llama.cpp server (session-wide, ``tests/llm_server.py``),
one scripted faulty backend per test (``faulty_backend.py``) and shared connections to the
backends (``http11.Origins``), as mcpd holds them for all adapters."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator

import pytest

from mcpctl.http11 import Origins
from mcpctl.mcpd.llm.adapters import StreamBroken, Timeouts
from mcpctl.mcpd.llm.messages import StreamEvent
from mcpctl.mcpd.llm.pools import backend_origins
from tests.llm_server import llm_server  # noqa: F401
from tests.mcpd.llm.faulty_backend import FaultyBackend, serve_backend

# Generous for a loaded CI machine; the tests of timeouts set their own.
TIMEOUTS = Timeouts(connect=5.0, read=30.0, write=5.0)


@pytest.fixture
async def http() -> AsyncIterator[Origins]:
    async with backend_origins(connect_timeout=TIMEOUTS.connect) as origins:
        yield origins


@pytest.fixture
async def backend() -> AsyncIterator[FaultyBackend]:
    async with serve_backend(FaultyBackend("faulty")) as served:
        yield served


async def drain(events: AsyncGenerator[StreamEvent, None]) -> list[StreamEvent]:
    return [event async for event in events]


async def until_broken(
    events: AsyncGenerator[StreamEvent, None],
) -> tuple[list[StreamEvent], StreamBroken]:
    """The events seen before the stream broke, and how it broke."""
    seen: list[StreamEvent] = []
    try:
        async for event in events:
            seen.append(event)
    except StreamBroken as exc:
        return seen, exc
    raise AssertionError("the stream did not break")
