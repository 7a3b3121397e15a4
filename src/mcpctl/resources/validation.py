"""Pydantic validation errors as mcpctl reports them: a field path and a one-line message."""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import ValidationError

from mcpctl.errors import InvalidInput


def error_path(loc: Sequence[int | str]) -> str:
    """``("spec", "env", 0, "name")`` → ``spec.env[0].name``."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else ("." if out else "") + str(part)
    return out


def invalid_input(errors: list[dict[str, str]]) -> InvalidInput:
    """One InvalidInput for a list of ``{path, message}``: the first in the message, all in details."""
    first = errors[0] if errors else {"path": "body", "message": "invalid request"}
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return InvalidInput(f"{first['path']}: {first['message']}{more}", details={"errors": errors})


def from_validation_error(exc: ValidationError) -> InvalidInput:
    return invalid_input(
        [{"path": error_path(e["loc"]) or "body", "message": e["msg"]} for e in exc.errors()]
    )
