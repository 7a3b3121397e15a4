"""Per-server logs: stderr lines and lifecycle events, in a bounded ring buffer in memory and a
rotating file ``<data_dir>/logs/servers/<server>.log`` (``.log.1`` ... after rotation).

The ring buffer outlives instance restarts (it belongs to the server, not to one instance), so
the lines before a crash stay visible. Followers (``logs -f``) each get a bounded queue; a
follower too slow to keep up loses lines rather than slowing the server down.

Secret values exist only in the child's environment, but a server may print one (an error
that echoes its token). Every line is therefore scrubbed before it is stored: each resolved
secret value of the server's current launch (4 characters or longer, shorter ones would
garble ordinary text) is replaced by ``<hidden>``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Literal

log = logging.getLogger(__name__)

Stream = Literal["stderr", "event"]
HIDDEN = "<hidden>"
MIN_SCRUBBED = 4
FOLLOW_QUEUE = 10_000


@dataclass(frozen=True)
class LogLine:
    time: datetime
    stream: Stream
    text: str

    def to_json(self) -> dict[str, Any]:
        stamp = self.time.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        return {"time": stamp, "stream": self.stream, "text": self.text}


class ServerLog:
    def __init__(self, path: Path, *, max_lines: int, max_bytes: int, backups: int) -> None:
        self.path = path
        self.lines: deque[LogLine] = deque(maxlen=max_lines)
        self._max_bytes = max_bytes
        self._backups = backups
        self._file: IO[str] | None = None
        self._followers: set[asyncio.Queue[LogLine | None]] = set()
        self._secrets: tuple[str, ...] = ()

    def set_secrets(self, values: Iterable[str]) -> None:
        """The values to scrub from now on (longest first, so a value containing another is
        hidden whole). Output arrives a line at a time, so each line of a multi-line value (a
        PEM key) is scrubbed on its own too."""
        needles = set()
        for value in values:
            needles.add(value)
            needles.update(part.strip() for part in value.splitlines())
        self._secrets = tuple(
            sorted({v for v in needles if len(v) >= MIN_SCRUBBED}, key=len, reverse=True)
        )

    def scrub(self, text: str) -> str:
        for value in self._secrets:
            if value in text:
                text = text.replace(value, HIDDEN)
        return text

    def add(self, stream: Stream, text: str) -> None:
        line = LogLine(datetime.now(UTC), stream, self.scrub(text))
        self.lines.append(line)
        self._write(line)
        for queue in self._followers:
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait(line)

    def tail(self, n: int | None) -> list[LogLine]:
        lines = list(self.lines)
        return lines if n is None else lines[-n:] if n > 0 else []

    async def follow(self, tail: int | None) -> AsyncIterator[LogLine]:
        """The last ``tail`` lines, then every new one until the log is closed."""
        queue: asyncio.Queue[LogLine | None] = asyncio.Queue(FOLLOW_QUEUE)
        self._followers.add(queue)
        try:
            for line in self.tail(tail):
                yield line
            while (new := await queue.get()) is not None:
                yield new
        finally:
            self._followers.discard(queue)

    def close(self) -> None:
        for queue in self._followers:
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait(None)
        if self._file is not None:
            self._file.close()
            self._file = None

    def _write(self, line: LogLine) -> None:
        stamp = line.to_json()["time"]
        try:
            if self._file is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._file = self.path.open("a", encoding="utf-8")
            self._file.write(f"{stamp} {line.stream} {line.text}\n")
            self._file.flush()
            if self._file.tell() >= self._max_bytes:
                self._rotate()
        except OSError as exc:  # a full disk must not take the instance down
            log.warning("cannot write %s: %s", self.path, exc)

    def _rotate(self) -> None:
        assert self._file is not None
        self._file.close()
        self._file = None
        for i in range(self._backups - 1, 0, -1):
            older = self.path.with_name(f"{self.path.name}.{i}")
            if older.exists():
                older.replace(self.path.with_name(f"{self.path.name}.{i + 1}"))
        if self._backups > 0:
            self.path.replace(self.path.with_name(f"{self.path.name}.1"))
        else:
            self.path.unlink(missing_ok=True)


class LogBook:
    """The logs of every server this mcpd has run, by server name."""

    def __init__(self, directory: Path, *, max_lines: int, max_bytes: int, backups: int) -> None:
        self.directory = directory
        self._options = {"max_lines": max_lines, "max_bytes": max_bytes, "backups": backups}
        self._logs: dict[str, ServerLog] = {}

    def of(self, server: str) -> ServerLog:
        found = self._logs.get(server)
        if found is None:
            found = ServerLog(self.directory / f"{server}.log", **self._options)
            self._logs[server] = found
        return found

    def has(self, server: str) -> bool:
        return server in self._logs

    def close(self) -> None:
        for server_log in self._logs.values():
            server_log.close()
