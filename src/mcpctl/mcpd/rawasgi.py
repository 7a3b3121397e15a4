"""What the raw ASGI mounts (the MCP relay, the OpenAI-compatible endpoint) read of a request
themselves, ahead of FastAPI's router: the path under the app's root, and single headers."""

from __future__ import annotations

from starlette.types import Scope


def app_path(scope: Scope) -> str | None:
    """An HTTP request's path without the app's ``root_path``; None for other scopes."""
    if scope["type"] != "http":
        return None
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path


def header(scope: Scope, key: bytes) -> str | None:
    """The first value of header ``key`` (lower case, as in the raw header list)."""
    for name, value in scope["headers"]:
        if name == key:
            return str(value.decode("latin-1"))
    return None


def bearer(value: str | None) -> str | None:
    """The token of an ``Authorization: Bearer TOKEN`` value; None for anything else."""
    if not value:
        return None
    scheme, _, token = value.partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None
