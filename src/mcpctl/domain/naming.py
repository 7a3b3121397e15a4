"""Namespaced MCP names: ``{server}__{name}``, always within ``^[A-Za-z0-9_-]{1,64}$``.

Many MCP clients refuse tool names longer than 64 characters or with characters outside
``[A-Za-z0-9_-]``, so a project endpoint never shows such a name. A name that fits is used as
it is; one that does not is shortened deterministically: characters outside the set become
``_``, the server and name parts are cut to share the room, and ``-`` plus eight hex digits of
a SHA-256 of the original (server, name) pair is appended. Two different originals therefore
get different names (up to a 32-bit hash collision, which ``NameMap`` detects), and the same
original always gets the same name, across restarts and machines.

Shortening loses information, so the way back is a mapping: ``NameMap`` records every exposed
name with its (server, original name) and resolves it.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field

SEPARATOR = "__"
MAX_LENGTH = 64
HASH_LENGTH = 8
NAME_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_OUTSIDE = re.compile(r"[^A-Za-z0-9_-]")
# Room for the kept text once "-" and the hash are appended.
_ROOM = MAX_LENGTH - 1 - HASH_LENGTH


def is_valid_exposed_name(name: str) -> bool:
    return NAME_PATTERN.fullmatch(name) is not None


def _digest(server: str | None, name: str) -> str:
    source = name if server is None else f"{server}\x00{name}"
    return hashlib.sha256(source.encode("utf-8", "surrogatepass")).hexdigest()[:HASH_LENGTH]


def _shorten(server: str | None, name: str) -> str:
    kept_name = _OUTSIDE.sub("_", name)
    if server is None:
        return f"{kept_name[:_ROOM]}-{_digest(None, name)}"
    kept_server = _OUTSIDE.sub("_", server)
    room = _ROOM - len(SEPARATOR)
    if len(kept_server) + len(kept_name) > room:
        # The server part keeps what the name leaves over, and at least half the room.
        server_len = min(len(kept_server), max(room - len(kept_name), room // 2))
        kept_server = kept_server[:server_len]
        kept_name = kept_name[: room - server_len]
    return f"{kept_server}{SEPARATOR}{kept_name}-{_digest(server, name)}"


def exposed_name(server: str | None, name: str) -> str:
    """The name a client sees for ``name`` of ``server`` (``None``: no server prefix)."""
    candidate = name if server is None else f"{server}{SEPARATOR}{name}"
    if is_valid_exposed_name(candidate):
        return candidate
    return _shorten(server, name)


@dataclass(frozen=True)
class Origin:
    """Where an exposed name comes from."""

    server: str
    name: str


@dataclass
class NameMap:
    """Exposed names and where they come from; built once per list refresh.

    ``add`` answers the exposed name, or ``None`` when another origin already holds it (a
    collision: with ``prefix=False`` two servers offering the same name, otherwise a hash
    collision); the first origin added keeps the name, so add in a stable order.
    """

    prefix: bool = True
    _origins: dict[str, Origin] = field(default_factory=dict)
    collisions: list[tuple[str, Origin, Origin]] = field(default_factory=list)

    def add(self, server: str, name: str) -> str | None:
        exposed = exposed_name(server if self.prefix else None, name)
        origin = Origin(server, name)
        held = self._origins.setdefault(exposed, origin)
        if held != origin:
            self.collisions.append((exposed, held, origin))
            return None
        return exposed

    def resolve(self, exposed: str) -> Origin | None:
        return self._origins.get(exposed)

    def __len__(self) -> int:
        return len(self._origins)
