"""Server-sent events: the WHATWG event-stream interpretation of a response body, fed body
pieces as they arrive and yielding each event as soon as its blank line is in."""

from __future__ import annotations

from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

_UTF8_BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True, slots=True)
class Event:
    """One server-sent event; ``id`` is the one this event carried (None if it had none)."""

    event: str
    data: str
    id: str | None


class EventStream:
    """An async iterator of ``Event``s over ``next_body`` (the body bytes that arrived since the
    last call, ``None`` at the body's end).

    Lines end in CRLF, LF or CR; a blank line completes an event; events without a data line
    are not dispatched; comments and ``retry`` are skipped. An event the body ends in without
    its blank line is dropped, as the standard says, unless ``dispatch_unterminated`` (LLM
    APIs' own clients dispatch it, and some servers end their last event that way).
    """

    __slots__ = (
        "_data",
        "_event",
        "_id",
        "_next_body",
        "_partial",
        "_ready",
        "_skip_lf",
        "_started",
        "_unterminated",
    )

    def __init__(
        self,
        next_body: Callable[[], Awaitable[bytes | None]],
        *,
        dispatch_unterminated: bool = False,
    ) -> None:
        self._next_body = next_body
        self._unterminated = dispatch_unterminated
        self._ready: deque[Event] = deque()
        self._partial: list[bytes] = []
        self._skip_lf = False
        self._started = False
        self._event = ""
        self._data: list[str] = []
        self._id: str | None = None

    def __aiter__(self) -> EventStream:
        return self

    async def __anext__(self) -> Event:
        while not self._ready:
            chunk = await self._next_body()
            if chunk is None:
                if self._unterminated:
                    self._flush()
                if not self._ready:
                    raise StopAsyncIteration
                break
            self._feed(chunk)
        return self._ready.popleft()

    def _flush(self) -> None:
        """At the body's end: the last line without its line end, and the last event."""
        self._unterminated = False  # once
        if self._partial:
            line = b"".join(self._partial)
            self._partial.clear()
            self._line(line)
        self._line(b"")

    def _feed(self, chunk: bytes) -> None:
        if self._skip_lf:
            self._skip_lf = False
            if chunk[:1] == b"\n":
                chunk = chunk[1:]
        if b"\n" not in chunk and b"\r" not in chunk:
            self._partial.append(chunk)
            return
        if self._partial:
            self._partial.append(chunk)
            chunk = b"".join(self._partial)
            self._partial.clear()
        if not self._started:
            self._started = True
            chunk = chunk.removeprefix(_UTF8_BOM)
        lines = chunk.splitlines(keepends=True)
        last = lines[-1][-1:]
        if last == b"\r":
            self._skip_lf = True  # its LF, if any, is at the start of the next chunk
        elif last != b"\n":
            self._partial.append(lines.pop())
        for line in lines:
            self._line(line.rstrip(b"\r\n"))

    def _line(self, line: bytes) -> None:
        if not line:
            if self._data:
                self._ready.append(Event(self._event or "message", "\n".join(self._data), self._id))
                self._data = []
            self._event = ""
            self._id = None
            return
        if line[:1] == b":":
            return
        field, colon, value = line.decode("utf-8", "replace").partition(":")
        if colon and value[:1] == " ":
            value = value[1:]
        if field == "data":
            self._data.append(value)
        elif field == "event":
            self._event = value
        elif field == "id" and "\0" not in value:
            self._id = value
